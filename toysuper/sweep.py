"""Training a whole experiment: in memory (`train_sweep`), or stored and drawn (`run`).

    cfg -> config.expand -> plan.chunks -> train.train per chunk -> assemble.tables -> Results

`run` adds the results directory around that: a finished chunk is saved at once, so an
interrupted or failing sweep resumes from where it stopped, and the tables and figures are
written when every chunk is done. Both refuse a sweep whose figures or tables cannot be made
(outputs.check) before training anything.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from toysuper import assemble, config, experiments, hosts, outputs, plan, starts, store, train
from toysuper.errors import ConfigError, TrainingError
from toysuper.results import Results


def resolve(experiment, overrides=()) -> dict:
    """A resolved config from a config dict, an experiment file or an experiment's name."""
    if isinstance(experiment, dict):
        return config.resolve(experiment, overrides)
    return config.load(experiments.find(experiment), overrides)


def _prepared(experiment, overrides):
    cfg = resolve(experiment, overrides)
    sweep = config.expand(cfg)
    outputs.check(cfg, sweep)
    starts.check(sweep)
    return cfg, sweep, plan.chunks(sweep, cfg["run"]["chunk_size"], cfg["run"]["memory_gb"])


def train_chunks(sweep, chunks, done, progress=True, on_chunk=lambda chunk, arrays: None) -> None:
    """Train every chunk whose `done` entry is None, filling it with the chunk's arrays."""
    todo = [c for c in chunks if done[c.index] is None]
    bar = _progress(len(sweep), todo, enabled=progress)
    for c in todo:
        t = train.train(c.shape, train.inputs([sweep[i] for i in c.ids], c.width),
                        lambda steps=c.shape.log_every: bar.update(steps),
                        starts.chunk(sweep, c.ids, c.width, c.shape))
        k = len(c.ids)  # drop the padding
        params = {name: v[:k] for name, v in t.params["params"].items()}
        snaps = {name: v[:k] for name, v in t.snapshots["params"].items()} if t.snapshots else {}
        history, final = t.history[:k], t.final[:k]
        _check_finite(sweep, c.ids, history, final)
        done[c.index] = (params, history, final, snaps)
        on_chunk(c, done[c.index])
    bar.close()


def train_sweep(experiment, overrides=(), progress=False) -> Results:
    """Train an experiment in memory and return its Results (path None); writes nothing.

    `experiment` is a config dict (as an experiment file's TOML would parse), a path or a name.
    Derived tables are computed on first use (`toysuper.tables.get`).
    """
    cfg, sweep, chunks = _prepared(experiment, overrides)
    done = {c.index: None for c in chunks}
    train_chunks(sweep, chunks, done, progress)
    tables, weights, snapshots = assemble.tables(sweep, chunks, done)
    return Results.of(None, cfg, tables, weights, snapshots)


def run(experiment, overrides=(), out=None, force=False, progress=True) -> Results | None:
    """Train (or resume) an experiment, store its results, derive its tables, draw its figures.

    Across hosts (after jax.distributed.initialize) every process runs this with the same
    arguments: all train every chunk together, process 0 alone writes, and the others return
    None. Resuming then needs `out` on a filesystem every host sees.
    """
    cfg, sweep, chunks = _prepared(experiment, overrides)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    for source in {s["train.init_from"] for s in sweep} - {"random", "construction"}:
        if Path(source).resolve() == out.resolve():
            raise ConfigError(f"train.init_from = {source!r} is this run's own results directory; "
                              f"start from a copy, or write to another one with --out")
    t0 = time.time()
    done = hosts.finished_chunks(out, cfg, force, chunks)
    trained = sum(v is None for v in done.values())

    def save(c, arrays):
        if hosts.writer():
            store.save_part(out, c.index, np.array(c.ids), *arrays)

    train_chunks(sweep, chunks, done, progress, save)
    if not hosts.writer():
        return None
    tables, weights, snapshots = assemble.tables(sweep, chunks, done)
    store.write_results(out, tables, weights, snapshots, {
        "models": len(sweep), "chunks": len(chunks), "trained_chunks": trained,
        "seconds": round(time.time() - t0, 2)})
    res = store.load(out)  # figures read what was stored, exactly as `toysuper plot` will
    outputs.make(res)
    return res


def describe_plan(experiment, overrides=(), out=None, probe=True) -> str:
    """What `run` would do, without training: models, chunks, memory and an estimated time."""
    cfg, sweep, chunks = _prepared(experiment, overrides)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    differ = store.differences(out, cfg)
    done = sum(store.finished(out, c.index, np.array(c.ids)) for c in chunks) \
        if (out / "config.toml").exists() and not differ else 0
    lines = plan.describe(cfg, sweep, chunks, done, probe)
    if differ:
        lines.insert(1, f"  {out} holds results of another configuration (differs in: "
                        f"{', '.join(differ)}): run refuses them unless --force, which replaces them")
    elif done:
        lines.insert(1, f"  {out}: {done} of {len(chunks)} chunks already finished (they are kept)")
    return "\n".join(lines)


def _check_finite(sweep, ids, history, final):
    bad = [i for i, (h, f) in zip(ids, zip(history, final)) if not (np.isfinite(h).all() and np.isfinite(f))]
    if bad:
        s = sweep[bad[0]]
        shown = ", ".join(f"{k}={v}" for k, v in s.items() if not k.startswith("run."))
        raise TrainingError(f"model {bad[0]} diverged (non-finite loss) with {shown}; "
                            f"{len(bad)} model(s) of this chunk diverged. Finished chunks are kept; "
                            f"lower train.lr and run again with --force")


def _progress(n_models, todo, enabled):
    total = sum(c.shape.steps for c in todo)
    return tqdm(total=total, unit="step", desc=f"training {n_models} models",
                disable=not enabled or total == 0, file=sys.stderr, dynamic_ncols=True)


__all__ = ["ConfigError", "TrainingError", "describe_plan", "resolve", "run", "train_sweep"]
