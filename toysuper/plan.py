"""Planning a sweep: members grouped by compiled shape, cut into chunks, and what that will cost.

Members (models, SAEs, ...) are grouped by their family's static shape (family.shape); each
group is cut into chunks of at most `run.chunk_size` members (rounded up to whole groups on
every device, family.width_quantum) and within `run.memory_gb`, all padded to one width so that
a shape compiles once. A chunk is the unit of saving and resuming.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import jax

from toysuper import config, family, layout, progress
from toysuper.errors import ConfigError


@dataclass(frozen=True)
class Chunk:
    index: int
    shape: object   # the family's static shape (train.Shape, sae_train.SaeShape, ...)
    ids: tuple      # member ids trained in this chunk
    width: int      # padded size of the model axis


def chunks(settings: list[dict], chunk_size: int, memory_gb: float = math.inf,
           fam: family.Family | None = None) -> list[Chunk]:
    """Group members by shape (in order of first appearance) and cut groups into chunks.

    A chunk holds at most `chunk_size` members (rounded up to whole groups) and fits in
    `memory_gb` per device by `fam.memory`'s estimate. `fam`: the family that trains them
    (family.py), the default family (toy models) when None.
    """
    lab = fam or family.default()
    _check_memory(memory_gb)
    groups: dict = {}
    for i, s in enumerate(settings):
        groups.setdefault(lab.shape(s), []).append(i)
    out = []
    for shape, ids in groups.items():
        q = lab.width_quantum(shape)
        width = _round_up(min(len(ids), _round_up(chunk_size, q)), q)
        fits = _fits(shape, memory_gb, lab)
        if fits < q:
            per_model, in_flight = lab.memory(shape)
            devices = jax.devices()
            need = (in_flight + per_model * q // len(devices)) / 2**30
            share = (f" ({memory_gb / len(devices):.3g} GB for each of the {len(devices)} CPU "
                     f"devices, which share the host's memory)"
                     if devices[0].platform == "cpu" and len(devices) > 1 else "")
            raise ConfigError(
                f"run.memory_gb = {memory_gb} is too small{share} for {lab.label(shape)}: one "
                f"group of {q} {lab.noun} needs about {need:.3g} GB on each device; lower "
                f"train.batch (or, where the machine has the memory, raise run.memory_gb)")
        width = min(width, fits // q * q)
        for start in range(0, len(ids), width):
            out.append(Chunk(len(out), shape, tuple(ids[start:start + width]), width))
    return out


def machine_gb() -> float:
    """What run.memory_gb may be at most: the host's memory on CPU devices (which share it),
    else one device's (inf where the device does not say)."""
    device = jax.devices()[0]
    if device.platform == "cpu":
        return config.host_memory() / 2**30
    try:
        return (device.memory_stats() or {})["bytes_limit"] / 2**30
    except (KeyError, TypeError, AttributeError, RuntimeError):
        return math.inf


def _check_memory(memory_gb: float) -> None:
    """Refuse a run.memory_gb beyond the machine's: chunks sized to it would not fit."""
    have = machine_gb()
    if not math.isinf(memory_gb) and memory_gb > have:
        where = "this machine's memory" if jax.devices()[0].platform == "cpu" else "one device's memory"
        raise ConfigError(f"run.memory_gb = {memory_gb:g} is more than {where} ({have:.3g} GB); "
                          f"set it to at most that")


def _fits(shape, memory_gb: float, lab) -> int:
    """The most models of `shape` whose chunk fits in memory_gb per device (CPU devices share
    the host's memory, so there memory_gb is shared among them)."""
    if math.isinf(memory_gb):
        return 2**62
    devices = jax.devices()
    if devices[0].platform == "cpu":
        memory_gb /= len(devices)
    per_model, in_flight = lab.memory(shape)
    return max(0, int((memory_gb * 2**30 - in_flight) // per_model)) * len(devices)


def _round_up(k: int, q: int) -> int:
    return math.ceil(k / q) * q


def describe(cfg: dict, settings: list[dict], plan: list[Chunk], done: int, probe=True,
             fam: family.Family | None = None) -> list[str]:
    """Lines saying what training `plan` takes: models, chunks, memory, and a probed time.

    The time comes from a probe: each Shape's segment program is compiled and one segment of
    one width quantum of models is timed on this machine, then scaled by the chunk widths.
    """
    lab = fam or family.default()
    devices = jax.devices()
    lines = [f"{cfg['name']}: {len(settings)} {lab.noun} in {len(plan)} chunks on "
             f"{len(devices)} {devices[0].platform} device(s); "
             f"run.chunk_size = {cfg['run']['chunk_size']}, run.memory_gb = {cfg['run']['memory_gb']}"]
    total_s, host = 0.0, 0
    for shape in dict.fromkeys(c.shape for c in plan):
        mine = [c for c in plan if c.shape == shape]
        per_model, in_flight = lab.memory(shape)
        width = max(c.width for c in mine)
        device_gb = (in_flight + per_model * width / len(devices)) / 2**30
        models = sum(len(c.ids) for c in mine)
        host += lab.host_bytes(shape, models)
        lines.append(f"  {lab.label(shape)} steps={shape.steps}: {models} {lab.noun}, "
                     f"{len(mine)} chunk(s) of up to "
                     f"{width} (groups of {lab.group_size(shape)} per device), "
                     f"~{device_gb * 1024:.0f} MB per device")
        if probe:
            seconds, compile_s = _probe(settings, mine[0], shape, lab)
            quanta = sum(c.width for c in mine) / lab.width_quantum(shape)
            # evaluation: eval_batch examples in blocks of train.batch, forward only (about a
            # third of a training step's work)
            evaluated = math.ceil(getattr(shape, "eval_batch", 0) / shape.batch) / shape.log_every / 3
            total_s += compile_s + quanta * seconds * (shape.steps / shape.log_every + evaluated)
            lines.append(f"    probe: {lab.width_quantum(shape)} {lab.noun} x {shape.log_every} "
                         f"steps in {seconds:.3f} s (compiled in {compile_s:.1f} s)"
                         + (f"; evaluation on {shape.eval_batch:,} examples each"
                            if getattr(shape, "eval_batch", 0) else ""))
    lines.append(f"  host memory peak, mostly result tables: ~{host / 2**20:.0f} MB")
    if probe:
        left = total_s * (1 - done / len(plan))
        lines.append(f"  estimated time: {_duration(left)} to train"
                     + (f" ({_duration(total_s)} for the whole sweep)" if done else ""))
    return lines


def _probe(settings, chunk: Chunk, shape, lab) -> tuple[float, float]:
    """(seconds per segment of one width quantum, seconds to compile) for `shape`."""
    q = lab.width_quantum(shape)
    hp = layout.place(lab.inputs([settings[i] for i in chunk.ids[:q]], q))
    segment, state = lab.probe(shape, hp)
    # the first segment compiles (seconds to minutes), the second is timed
    with progress.bar(2, f"probe of {lab.label(shape)}", unit=" segments") as bar:
        t0 = time.perf_counter()
        state, loss = segment(state, hp, 0)
        jax.block_until_ready(loss)
        first = time.perf_counter() - t0
        bar.update()
        t0 = time.perf_counter()
        state, loss = segment(state, hp, 1)
        jax.block_until_ready(loss)
        seconds = time.perf_counter() - t0
        bar.update()
    return seconds, max(0.0, first - seconds)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
