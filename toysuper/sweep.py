"""Run an experiment: expand the sweep, train it chunk by chunk, store tables, draw figures.

Models are grouped by their static `train.Shape`; each group is cut into chunks of at most
`run.chunk_size` models, all padded to one width so that a Shape compiles once. A finished chunk
is saved at once, so an interrupted or failing sweep resumes from where it stopped.
Widths are whole multiples of `train.width_quantum` (groups of models on every device).
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
    """The most models of `shape` whose chunk fits in memory_gb per device."""
    if math.isinf(memory_gb):
        return 2**62
    per_model, in_flight = train.memory(shape)
    return max(0, int((memory_gb * 2**30 - in_flight) // per_model)) * len(jax.devices())


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


def run(experiment, overrides=(), out=None, force=False, progress=True) -> store.Results:
    """Train (or resume) an experiment and return its results; see the module docstring."""
    if isinstance(experiment, dict):
        cfg = config.resolve(experiment, overrides)
    else:
        cfg = config.load(find_experiment(experiment), overrides)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    store.prepare(out, cfg, force)
    settings = config.expand(cfg)
    chunks = plan(settings, cfg["run"]["chunk_size"], cfg["run"]["memory_gb"])
    t0 = time.time()

    done = {c.index: store.load_part(out, c.index, np.array(c.ids)) for c in chunks}
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
        store.save_part(out, c.index, np.array(c.ids), params, history, final, snaps)
        done[c.index] = (params, history, final, snaps)
    bar.close()

    tables, weights, snapshots = assemble(settings, chunks, done)
    store.write_results(out, tables, weights, snapshots, {
        "models": len(settings), "chunks": len(chunks), "trained_chunks": len(todo),
        "seconds": round(time.time() - t0, 2)})
    res = store.load(out)  # figures read what was stored, exactly as `toysuper plot` will
    from toysuper import figures, tables  # matplotlib only once there is something to draw
    tables.derive(res)
    figures.draw(res)
    return res


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
    done = sum(store.load_part(out, c.index, np.array(c.ids)) is not None for c in chunks) \
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
        # tables (settings, per-feature rows, loss history) and weights, kept until written
        host += models * (400 + 80 * shape.n + 24 * (shape.steps // shape.log_every)
                          + 4 * P * (1 + shape.snapshots))
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
    lines.append(f"  host memory for results: ~{host / 2**20:.0f} MB")
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
    """Tidy tables (models, features, history) and stacked, padded weights from finished chunks."""
    by_model, snaps = {}, {}
    for c in chunks:
        params, history, final, snapshots = done[c.index]
        for j, i in enumerate(c.ids):
            by_model[i] = ({k: v[j] for k, v in params.items()}, history[j], final[j], c.shape)
            snaps[i] = {k: v[j] for k, v in snapshots.items()}

    model_rows, feature_rows, history_rows = [], [], []
    for i, s in enumerate(settings):
        params, hist, final, shape = by_model[i]
        W = np.asarray(models.embedding(s["model.kind"], params), np.float64)
        imp, p = config.feature_vectors(s)
        row = {"model": i}
        row.update({column(k): v for k, v in s.items() if not k.startswith("run.")})
        row.update(loss=float(final), train_loss=float(hist[-1]),
                   dims_per_feature=metrics.dims_per_feature(W))
        model_rows.append(row)
        feature_rows.append(pd.DataFrame({
            "model": i, "feature": np.arange(shape.n), "importance": imp, "density": p,
            "norm": metrics.norms(W), "superposition": metrics.superposition(W),
            "dimensionality": metrics.dimensionality(W), "bias": np.asarray(params["b"], float),
            "structure": structures.label(W)}))
        history_rows.append(pd.DataFrame({
            "model": i, "step": shape.log_every * np.arange(1, len(hist) + 1), "loss": hist}))

    tables = {"models": _tidy(pd.DataFrame(model_rows)),
              "features": pd.concat(feature_rows, ignore_index=True),
              "history": pd.concat(history_rows, ignore_index=True)}
    weights = _stack_padded([by_model[i][0] for i in range(len(settings))])
    # snapshots: [models, count, ...] per parameter, with each model's snapshot steps
    snapshots = {}
    if any(snaps.values()):
        snapshots = _stack_padded([snaps[i] for i in range(len(settings))])
        snapshots["step"] = _stack_padded([
            {"step": train.snapshot_steps(s.steps, s.log_every, s.snapshots)}
            for s in (by_model[i][3] for i in range(len(settings)))])["step"]
    return tables, weights, snapshots


def _tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Columns of lists or tables (a vector of importances, {decay = 0.7}) become JSON text."""
    for col in df.columns:
        if df[col].map(lambda v: isinstance(v, (list, dict))).any():
            df[col] = df[col].map(lambda v: v if isinstance(v, str) else json.dumps(v))
    return df


def _stack_padded(per_model: list[dict]) -> dict:
    """Stack each parameter over models; a model without it (another kind) gets an empty one."""
    out = {}
    names = list(dict.fromkeys(name for p in per_model for name in p))
    for name in names:
        ref = next(np.asarray(p[name]) for p in per_model if name in p)
        arrays = [np.asarray(p[name]) if name in p else np.zeros((0,) * ref.ndim, ref.dtype)
                  for p in per_model]
        shape = np.max([a.shape for a in arrays], axis=0)
        stacked = np.zeros((len(arrays), *shape), arrays[0].dtype)
        for i, a in enumerate(arrays):
            stacked[(i, *[slice(0, k) for k in a.shape])] = a
        out[name] = stacked
        out[name + store.SHAPE] = np.array([a.shape for a in arrays])
    return out
