"""Run an experiment: expand the sweep, train it chunk by chunk, store tables, draw figures.

Models are grouped by their static `train.Shape`; each group is cut into chunks of at most
`run.chunk_size` models (rounded up to whole groups on every device, `train.width_quantum`) and
within `run.memory_gb`, all padded to one width so that a Shape compiles once. A finished chunk
is saved at once, so an interrupted or failing sweep resumes from where it stopped.
"""

from __future__ import annotations

import json
import math
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from toysuper import config, data, metrics, models, store, structures, train
from toysuper.config import ConfigError

class TrainingError(RuntimeError):
    """A model's loss became non-finite; names the model and its settings."""


@dataclass(frozen=True)
class Chunk:
    index: int
    shape: train.Shape
    ids: tuple      # model ids trained in this chunk
    width: int      # padded size of the model axis


def plan(settings: list[dict], chunk_size: int, memory_gb: float = math.inf) -> list[Chunk]:
    """Group models by Shape (in order of first appearance) and cut groups into chunks.

    A chunk holds at most `chunk_size` models (rounded up to whole groups) and fits in
    `memory_gb` per device by `train.memory`'s estimate.
    """
    groups: dict[train.Shape, list[int]] = {}
    for i, s in enumerate(settings):
        groups.setdefault(train.Shape.of(s), []).append(i)
    chunks = []
    for shape, ids in groups.items():
        q = train.width_quantum(shape)
        width = _round_up(min(len(ids), _round_up(chunk_size, q)), q)
        fits = _fits(shape, memory_gb)
        if fits < q:
            per_model, in_flight = train.memory(shape)
            need = (in_flight + per_model * q // len(jax.devices())) / 2**30
            raise ConfigError(
                f"run.memory_gb = {memory_gb} is too small for {shape.kind} models of "
                f"n_features = {shape.n}, train.batch = {shape.batch}: one group of {q} models "
                f"needs about {need:.2f} GB; raise run.memory_gb or lower train.batch")
        width = min(width, fits // q * q)
        for start in range(0, len(ids), width):
            chunks.append(Chunk(len(chunks), shape, tuple(ids[start:start + width]), width))
    return chunks


def _fits(shape: train.Shape, memory_gb: float) -> int:
    """The most models of `shape` whose chunk fits in memory_gb per device (CPU devices share
    the host's memory, so there memory_gb is shared among them)."""
    if math.isinf(memory_gb):
        return 2**62
    devices = jax.devices()
    if devices[0].platform == "cpu":
        memory_gb /= len(devices)
    per_model, in_flight = train.memory(shape)
    return max(0, int((memory_gb * 2**30 - in_flight) // per_model)) * len(devices)


def _round_up(k: int, q: int) -> int:
    return math.ceil(k / q) * q


# Settings added after results were published enter the hash only when set, so that a model
# trained before they existed keeps its key.
_SALT_UNLESS = {"data.correlated": [], "data.anticorrelated": []}


def key_salt(s: dict) -> int:
    """A stable 32-bit hash of a model's [model] and [data] settings."""
    own = {k: v for k, v in s.items() if k.startswith(("model.", "data."))
           and not (k in _SALT_UNLESS and v == _SALT_UNLESS[k])}
    return zlib.crc32(json.dumps(own, sort_keys=True).encode())


def hyper(settings: list[dict], ids, width: int) -> train.Hyper:
    """Stack the per-model inputs of `ids`, repeating the last model up to `width`."""
    ids = list(ids) + [ids[-1]] * (width - len(ids))
    rows = [settings[i] for i in ids]
    vecs = [config.feature_vectors(s) for s in rows]
    layouts = [data.layout(len(p), p, s["data.correlated"], s["data.anticorrelated"])
               for s, (_, p) in zip(rows, vecs)]
    salts = [key_salt(s) for s in rows]
    return train.Hyper(
        key=train.model_keys([s["train.seed"] for s in rows], salts),
        eval_key=train.eval_keys(salts),
        imp=np.stack([v[0] for v in vecs]).astype(np.float32),
        p=np.stack([v[1] for v in vecs]).astype(np.float32),
        group=np.stack([g for g, _ in layouts]),
        low=np.stack([lo for _, lo in layouts]).astype(np.float32),
        lr=np.array([s["train.lr"] for s in rows], np.float32),
        wd=np.array([s["train.weight_decay"] for s in rows], np.float32),
    )


def run(experiment, overrides=(), out=None, force=False, progress=True) -> store.Results | None:
    """Train (or resume) an experiment and return its results; see the module docstring.

    Across hosts (after jax.distributed.initialize) every process runs this with the same
    arguments: all train every chunk together, process 0 alone writes, and the others return
    None. Resuming then needs `out` on a filesystem every host sees.
    """
    if isinstance(experiment, dict):
        cfg = config.resolve(experiment, overrides)
    else:
        cfg = config.load(find_experiment(experiment), overrides)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    writer = jax.process_index() == 0
    settings = config.expand(cfg)
    chunks = plan(settings, cfg["run"]["chunk_size"], cfg["run"]["memory_gb"])
    t0 = time.time()
    done = _prepare(out, cfg, force, chunks, writer)
    todo = [c for c in chunks if done[c.index] is None]
    bar = _progress(len(settings), todo, enabled=progress)
    for c in todo:
        hp = hyper(settings, c.ids, c.width)
        t = train.train(c.shape, hp, lambda: bar.update(c.shape.log_every))
        k = len(c.ids)  # drop the padding
        params = {name: v[:k] for name, v in _flat_params(t.params).items()}
        snaps = {name: v[:k] for name, v in _flat_params(t.snapshots).items()} if t.snapshots else {}
        history, final = t.history[:k], t.final[:k]
        _check_finite(settings, c.ids, history, final)
        if writer:
            store.save_part(out, c.index, np.array(c.ids), params, history, final, snaps)
        done[c.index] = (params, history, final, snaps)
    bar.close()
    if not writer:
        return None

    tables, weights, snapshots = assemble(settings, chunks, done)
    store.write_results(out, tables, weights, snapshots, {
        "models": len(settings), "chunks": len(chunks), "trained_chunks": len(todo),
        "seconds": round(time.time() - t0, 2)})
    res = store.load(out)  # figures read what was stored, exactly as `toysuper plot` will
    from toysuper import figures, tables  # matplotlib only once there is something to draw
    tables.derive(res)
    figures.draw(res)
    return res


def _prepare(out, cfg, force, chunks, writer) -> dict:
    """Process 0 readies `out` and finds the finished chunks; every process learns which.

    With several processes (hosts) all must train the same chunks, or their collectives wait
    forever: process 0 decides, and a refusal (another configuration in `out`) stops all.
    """
    error, done = None, {}
    if writer:
        try:
            store.prepare(out, cfg, force)
            done = {c.index: store.load_part(out, c.index, np.array(c.ids)) for c in chunks}
        except ConfigError as e:
            error = e
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        mask = (np.full(len(chunks), -1, np.int32) if error else
                np.array([done[c.index] is not None for c in chunks], np.int32))
        mask = np.asarray(multihost_utils.broadcast_one_to_all(mask))  # also a barrier
        if (mask < 0).any():
            raise error or ConfigError(f"process 0 refused '{out}' (see its message)")
        if not writer:  # others hold no finished chunks; they only need to skip them
            done = {c.index: (() if mask[i] else None) for i, c in enumerate(chunks)}
    if error:
        raise error
    return done


def describe_plan(experiment, overrides=(), out=None, probe=True) -> str:
    """What `run` would do, without training: models, chunks, memory and an estimated time.

    The time comes from a probe: each Shape's segment program is compiled and one segment of
    one width quantum of models is timed on this machine, then scaled by the chunk widths.
    """
    cfg = config.load(find_experiment(experiment), overrides)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    settings = config.expand(cfg)
    chunks = plan(settings, cfg["run"]["chunk_size"], cfg["run"]["memory_gb"])
    devices = jax.devices()
    differ = store.differences(out, cfg)
    done = sum(store.finished(out, c.index, np.array(c.ids)) for c in chunks) \
        if (out / "config.toml").exists() and not differ else 0
    lines = [f"{cfg['name']}: {len(settings)} models in {len(chunks)} chunks on "
             f"{len(devices)} {devices[0].platform} device(s); "
             f"run.chunk_size = {cfg['run']['chunk_size']}, run.memory_gb = {cfg['run']['memory_gb']}"]
    if differ:
        lines.append(f"  {out} holds results of another configuration (differs in: "
                     f"{', '.join(differ)}): run refuses them unless --force, which replaces them")
    elif done:
        lines.append(f"  {out}: {done} of {len(chunks)} chunks already finished (they are kept)")
    total_s, host = 0.0, 0
    for shape in dict.fromkeys(c.shape for c in chunks):
        mine = [c for c in chunks if c.shape == shape]
        per_model, in_flight = train.memory(shape)
        width = max(c.width for c in mine)
        device_gb = (in_flight + per_model * width / len(devices)) / 2**30
        models = sum(len(c.ids) for c in mine)
        P = train.n_params(shape)
        # the expanded settings (Python dicts), table rows (features, loss history) and
        # weights, twice over while tables are concatenated; calibrated on a million n=2
        # models (estimate 3.9 GB, measured peak 4.3 GB)
        host += 2 * models * (1500 + 150 * shape.n + 60 * (shape.steps // shape.log_every)
                              + 8 * P * (1 + shape.snapshots))
        lines.append(f"  {shape.kind} n={shape.n} m={shape.m} batch={shape.batch} "
                     f"steps={shape.steps}: {models} models, {len(mine)} chunk(s) of up to "
                     f"{width} (groups of {train.group_size(shape)} per device), "
                     f"~{device_gb * 1024:.0f} MB per device")
        if probe:
            seconds, compile_s = _probe(settings, mine[0], shape)
            quanta = sum(c.width for c in mine) / train.width_quantum(shape)
            total_s += compile_s + quanta * seconds * shape.steps / shape.log_every
            lines.append(f"    probe: {train.width_quantum(shape)} models x {shape.log_every} "
                         f"steps in {seconds:.3f} s (compiled in {compile_s:.1f} s)")
    lines.append(f"  host memory peak, mostly result tables: ~{host / 2**20:.0f} MB")
    if probe:
        left = total_s * (1 - done / len(chunks))
        lines.append(f"  estimated time: {_duration(left)} to train"
                     + (f" ({_duration(total_s)} for the whole sweep)" if done else ""))
    return "\n".join(lines)


def _probe(settings, chunk: Chunk, shape) -> tuple[float, float]:
    """(seconds per segment of one width quantum, seconds to compile) for `shape`."""
    q = train.width_quantum(shape)
    hp = train.place(hyper(settings, chunk.ids[:q], q))
    prog = train.programs(shape)
    t0 = time.perf_counter()
    state, loss = prog.segment(prog.init(hp), hp, 0)
    jax.block_until_ready(loss)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, loss = prog.segment(state, hp, 1)
    jax.block_until_ready(loss)
    seconds = time.perf_counter() - t0
    return seconds, max(0.0, first - seconds)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def find_experiment(name) -> Path:
    """A path as given, or a bare name looked up in ./experiments and the package's experiments."""
    path = Path(name)
    if path.exists() or path.suffix:
        return path
    for folder in experiment_dirs():
        if (folder / f"{name}.toml").exists():
            return folder / f"{name}.toml"
    known = sorted({f.stem for d in experiment_dirs() for f in d.glob("*.toml")})
    raise ConfigError(f"experiment '{name}' is neither a file nor one of: {', '.join(known) or 'none'}")


def experiment_dirs() -> list[Path]:
    here = Path("experiments")
    repo = Path(__file__).resolve().parent.parent / "experiments"
    return [d for d in dict.fromkeys([here.resolve(), repo]) if d.is_dir()]


def _flat_params(params) -> dict:
    """{'W': W_KxMxN, 'b': b_KxN} from Flax's nested {'params': {...}}."""
    return dict(params["params"])


def _check_finite(settings, ids, history, final):
    bad = [i for i, (h, f) in zip(ids, zip(history, final)) if not (np.isfinite(h).all() and np.isfinite(f))]
    if bad:
        s = settings[bad[0]]
        shown = ", ".join(f"{k}={v}" for k, v in s.items() if not k.startswith("run."))
        raise TrainingError(f"model {bad[0]} diverged (non-finite loss) with {shown}; "
                            f"{len(bad)} model(s) of this chunk diverged. Finished chunks are kept; "
                            f"lower train.lr and run again with --force")


def _progress(n_models, todo, enabled):
    from tqdm.auto import tqdm
    total = sum(c.shape.steps for c in todo)
    return tqdm(total=total, unit="step", desc=f"training {n_models} models",
                disable=not enabled or total == 0, file=sys.stderr, dynamic_ncols=True)


def column(key: str) -> str:
    """Table column of a setting: its name without the section ('data.density' -> 'density')."""
    return key.split(".", 1)[1]


def assemble(settings, chunks, done):
    """Tidy tables (models, features, history) and stacked, padded weights from finished chunks.

    Works a chunk at a time on stacked arrays, so a million-model sweep assembles in seconds
    per table rather than a Python loop per model.
    """
    stats = {k: np.zeros(len(settings)) for k in ("loss", "train_loss", "dims_per_feature")}
    feature_frames, history_frames, weights, snapshots = [], [], [], []
    for c in chunks:
        params, history, final, snaps = done[c.index]
        ids, shape = np.array(c.ids), c.shape
        k, n, segments = len(ids), shape.n, history.shape[1]
        W = np.asarray(params[models.MODELS[shape.kind].embed], np.float64)  # [k, m, n]
        feats = {"norm": [], "superposition": [], "dimensionality": []}
        for lo in range(0, k, 256):  # the n x n overlaps of 256 models at a time
            for name, f in (("norm", metrics.norms), ("superposition", metrics.superposition),
                            ("dimensionality", metrics.dimensionality)):
                feats[name].append(f(W[lo:lo + 256]))
        imp, p = (np.stack(v) for v in zip(*(config.feature_vectors(settings[i]) for i in ids)))
        stats["loss"][ids], stats["train_loss"][ids] = final, history[:, -1]
        stats["dims_per_feature"][ids] = metrics.dims_per_feature(W)
        feature_frames.append(pd.DataFrame({
            "model": np.repeat(ids, n), "feature": np.tile(np.arange(n), k),
            "importance": imp.ravel(), "density": p.ravel(),
            **{name: np.concatenate(v).ravel() for name, v in feats.items()},
            "bias": np.asarray(params["b"], float).ravel(),
            "structure": structures.labels(W).ravel()}))
        history_frames.append(pd.DataFrame({
            "model": np.repeat(ids, segments),
            "step": np.tile(shape.log_every * np.arange(1, segments + 1), k),
            "loss": history.ravel()}))
        weights.append((ids, params))
        steps = np.tile(train.snapshot_steps(shape.steps, shape.log_every, shape.snapshots), (k, 1))
        snapshots.append((ids, {**snaps, "step": steps}))

    rows = [{"model": i, **{column(k): v for k, v in s.items() if not k.startswith("run.")}}
            for i, s in enumerate(settings)]
    model_table = pd.DataFrame.from_records(rows).assign(**stats)
    tables = {"models": _tidy(model_table),
              "features": _by_model(feature_frames), "history": _by_model(history_frames)}
    has_snapshots = any(len(p) > 1 for _, p in snapshots)
    return (tables, _stack_padded(len(settings), weights),
            _stack_padded(len(settings), snapshots) if has_snapshots else {})


def _by_model(frames) -> pd.DataFrame:
    """Chunks' rows in model order (chunks follow shapes, not model ids)."""
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values("model", kind="stable", ignore_index=True)


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Columns of lists or tables (a vector of importances, {decay = 0.7}) become JSON text."""
    for col in df.columns:
        if df[col].map(lambda v: isinstance(v, (list, dict))).any():
            df[col] = df[col].map(lambda v: v if isinstance(v, str) else json.dumps(v))
    return df


def _stack_padded(n_models: int, pieces) -> dict:
    """Stack each parameter by model id from (ids, {name: [k, ...]}) pieces, zero-padded to the
    largest shape; NAME.shape holds each model's own, and a model without it (another kind)
    gets an empty one."""
    out = {}
    names = list(dict.fromkeys(name for _, p in pieces for name in p))
    for name in names:
        arrays = [(ids, np.asarray(p[name])) for ids, p in pieces if name in p]
        ndim = arrays[0][1].ndim - 1
        shape = np.max([a.shape[1:] for _, a in arrays], axis=0)
        stacked = np.zeros((n_models, *shape), arrays[0][1].dtype)
        shapes = np.zeros((n_models, ndim), int)
        for ids, a in arrays:
            stacked[(ids, *[slice(0, d) for d in a.shape[1:]])] = a
            shapes[ids] = a.shape[1:]
        out[name] = stacked
        out[name + store.SHAPE] = shapes
    return out
