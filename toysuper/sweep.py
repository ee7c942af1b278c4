"""Training a whole experiment: in memory (`train_sweep`), or stored and drawn (`run`).

    cfg -> config.expand -> plan.chunks -> train.train per chunk -> assemble.tables -> Results

`run` adds the results directory around that: a finished chunk is saved at once, so an
interrupted or failing sweep resumes from where it stopped, and the tables and figures are
written when every chunk is done; a lock file keeps a second run out of the directory meanwhile.
Both refuse a sweep whose figures or tables cannot be made (outputs.check) before training
anything. A model whose loss stops being finite is kept and marked `diverged` (run.on_diverge =
"keep", the default: the high end of an lr sweep is expected to diverge, the rest is the result)
or stops the run ("stop").
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from toysuper import (
    assemble,
    config,
    experiments,
    hosts,
    outputs,
    plan,
    polish,
    sae_sweep,
    settings,
    starts,
    store,
    train,
    verdicts,
)
from toysuper.errors import ConfigError, OutputsError, TrainingError
from toysuper.results import Results


def resolve(experiment, overrides=()) -> dict:
    """A resolved config from a config dict, an experiment file or an experiment's name."""
    if isinstance(experiment, dict):
        return config.resolve(experiment, overrides)
    return config.load(experiments.find(experiment), overrides)


def _prepared(cfg):
    sweep = config.expand(cfg)
    outputs.check(cfg, sweep)
    starts.check(sweep)
    return cfg, sweep, plan.chunks(sweep, cfg["run"]["chunk_size"], cfg["run"]["memory_gb"])


def train_chunks(sweep, chunks, done, progress=True, on_chunk=lambda chunk, arrays: None) -> None:
    """Train every chunk whose `done` entry is None, filling it with the chunk's arrays.

    A chunk holding a diverged model whose run.on_diverge is "stop" raises TrainingError before
    it is saved; diverged models are otherwise kept as trained (marked by `assembled`).
    """
    todo = [c for c in chunks if done[c.index] is None]
    # closed however training ends, so that a message after it starts on a line of its own
    with _progress(len(sweep), todo, enabled=progress) as bar:
        for c in todo:
            k = len(c.ids)  # the models of the chunk, its padding dropped below
            t = train.train(c.shape, train.inputs([sweep[i] for i in c.ids], c.width),
                            lambda n=c.shape.log_every * k: bar.update(n),
                            starts.chunk(sweep, c.ids, c.width, c.shape))
            params = {name: v[:k] for name, v in t.params["params"].items()}
            snaps = ({name: v[:k] for name, v in t.snapshots["params"].items()}
                     if t.snapshots else {})
            history, final = t.history[:k], t.final[:k]
            _stop_if_diverged(sweep, c.ids, diverged(params, history, final)[0])
            done[c.index] = (params, history, final, snaps)
            on_chunk(c, done[c.index])


def train_sweep(experiment, overrides=(), progress=False) -> Results:
    """Train an experiment in memory and return its Results (path None); writes nothing.

    `experiment` is a config dict (as an experiment file's TOML would parse), a path or a name.
    Derived tables are computed on first use (`toysuper.tables.get`).
    """
    cfg = resolve(experiment, overrides)
    if settings.family(cfg) == "saes":
        return sae_sweep.train_sweep(cfg)
    cfg, sweep, chunks = _prepared(cfg)
    done = {c.index: None for c in chunks}
    train_chunks(sweep, chunks, done, progress)
    tables, weights, snapshots = assembled(sweep, chunks, done)
    return Results.of(None, cfg, tables, weights, snapshots)


def run(experiment, overrides=(), out=None, force=False, progress=True) -> Results | None:
    """Train (or resume) an experiment, store its results, derive its tables, draw its figures.

    Across hosts (after jax.distributed.initialize) every process runs this with the same
    arguments: all train every chunk together, process 0 alone writes, and the others return
    None. Resuming then needs `out` on a filesystem every host sees.
    """
    cfg = resolve(experiment, overrides)
    if settings.family(cfg) == "saes":
        return sae_sweep.run(cfg, out, force, progress)
    cfg, sweep, chunks = _prepared(cfg)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    for source in {s["train.init_from"] for s in sweep} - set(settings.INIT_SOURCES):
        if Path(source).resolve() == out.resolve():
            raise ConfigError(f"train.init_from = {source!r} is this run's own results directory; "
                              f"start from a copy, or write to another one with --out")
    if (res := store.finished_run(out, cfg, force)) is not None:
        return polish.after(out, cfg, _finished(out, res), progress)  # resumes a polish
    t0 = time.time()
    lock = store.Lock(out)  # taken by process 0 alone, in finished_chunks, before it reads `out`
    try:
        done = hosts.finished_chunks(out, cfg, force, chunks, lock)
        trained = sum(v is None for v in done.values())
        clock = [time.time()]  # when the chunk being trained started

        def save(c, arrays):
            start, clock[0] = clock[0], time.time()
            if hosts.writer():
                store.save_part(out, c.index, np.array(c.ids), *arrays, seconds=clock[0] - start)

        train_chunks(sweep, chunks, done, progress, save)
        if not hosts.writer():
            hosts.written()
            return None
        tables, weights, snapshots = assembled(sweep, chunks, done)
        store.write_results(out, tables, weights, snapshots, {
            "models": len(sweep), "chunks": len(chunks), "trained_chunks": trained,
            "diverged": int(tables["models"]["diverged"].sum()), **store.timing(out, t0)})
        res = store.load(out)  # figures read what was stored, exactly as `toysuper plot` will
        if res.models["diverged"].all():  # nothing finite to draw: the tables, and say so
            outputs.make(res, figure_list=[])
            hosts.written()
            raise OutputsError(verdicts.all_diverged(res, "models"))
        try:
            outputs.make(res)
        except Exception as e:
            if not res.models["diverged"].any():
                raise
            hosts.written()
            raise OutputsError(
                f"the results are stored in '{out}', but its derived tables and figures could "
                f"not be made with diverged models among them ({type(e).__name__}: "
                f"{str(e).strip()[:300]}); {diverged_report(res)}") from e
        hosts.written()
    finally:
        lock.release()
    return polish.after(out, cfg, res, progress)  # run.polish rounds, if any


def _finished(out: Path, res):
    """A finished run's results as stored (an older schema read upgraded), nothing rewritten."""
    if not hosts.writer():
        return None
    store.notice(f"'{out}' holds this experiment's finished results: nothing is trained or "
                 f"rewritten (`toysuper plot {out}` redraws its figures, --force retrains)")
    return res


def describe_plan(experiment, overrides=(), out=None, probe=True) -> str:
    """What `run` would do, without training: models, chunks, memory and an estimated time."""
    cfg = resolve(experiment, overrides)
    if settings.family(cfg) == "saes":
        return sae_sweep.describe_plan(cfg, out, probe)
    cfg, sweep, chunks = _prepared(cfg)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    differ = store.differences(out, cfg)
    done = sum(store.finished(out, c.index, np.array(c.ids), c.shape) for c in chunks) \
        if (out / "config.toml").exists() and not differ else 0
    lines = plan.describe(cfg, sweep, chunks, done, probe)
    if differ:
        lines.insert(1, f"  {out} holds results of another configuration (differs in: "
                        f"{', '.join(differ)}): run refuses them unless --force, which replaces them")
    elif (out / "summary.json").exists():
        lines.insert(1, f"  {out} holds this experiment's finished results: run trains and "
                        f"rewrites nothing (--force retrains)")
    elif done:
        lines.insert(1, f"  {out}: {done} of {len(chunks)} chunks already finished (they are kept)")
    return "\n".join(lines)


def diverged(params: dict, history, final, log_every: int = 1):
    """(bool[k]: which of a chunk's k models diverged, int[k]: the step by which each did, 0 if not).

    A model diverged when its training loss, final loss or any parameter is not finite. Its
    step is the end of the first logged interval (log_every steps) whose mean training loss is
    not finite, else the last step (the final update or evaluation overflowed).
    """
    history, final = np.asarray(history), np.asarray(final)
    finite = np.isfinite(history)
    bad = ~finite.all(axis=1) | ~np.isfinite(final)
    for v in params.values():
        bad |= ~np.isfinite(np.asarray(v)).reshape(len(final), -1).all(axis=1)
    first = np.where(finite.all(axis=1), history.shape[1], np.argmin(finite, axis=1) + 1)
    return bad, np.where(bad, first * log_every, 0)


def assembled(sweep, chunks, done) -> tuple[dict, dict, dict]:
    """assemble.tables, with each diverged model marked in the models table (`diverged`,
    `diverged_step`) and its non-finite numbers stored as NaN.

    A diverged model's weights are NaN as a whole: half-overflowed weights would give its
    derived numbers (norms, D*, structures) spurious finite values. Its snapshots from before
    the divergence are finite and kept.
    """
    flags = np.zeros(len(sweep), bool)
    steps = pd.array([pd.NA] * len(sweep), "Int64")
    marked = {}
    for c in chunks:
        params, history, final, snaps = done[c.index]
        bad, at = diverged(params, history, final, c.shape.log_every)
        ids = np.array(c.ids)
        flags[ids[bad]] = True
        steps[ids[bad]] = at[bad]
        params = {k: _nan_rows(v, bad) for k, v in params.items()}
        history = np.where(np.isfinite(history), history, np.nan).astype(history.dtype)
        final = _nan_rows(final, bad)
        if snaps:  # a snapshot with any non-finite parameter is NaN in every parameter
            shot_bad = np.zeros(next(iter(snaps.values())).shape[:2], bool)
            for v in snaps.values():
                shot_bad |= ~np.isfinite(v).reshape(*shot_bad.shape, -1).all(axis=2)
            snaps = {k: _nan_rows(v, shot_bad) for k, v in snaps.items()}
        marked[c.index] = params, history, final, snaps
    tables, weights, snapshots = assemble.tables(sweep, chunks, marked)
    models = tables["models"].assign(diverged=flags, diverged_step=steps)
    models.loc[flags, "train_loss"] = np.nan
    tables["models"] = models
    # NaN weights give NaN norms, but a dimensionality of 0 (metrics: "not learned")
    features = tables["features"]
    features.loc[flags[features["model"].to_numpy()], list(FEATURE_NUMBERS)] = np.nan
    return tables, weights, snapshots


# features-table columns computed from a model's weights
FEATURE_NUMBERS = ("norm", "superposition", "dimensionality", "bias")


def _nan_rows(a, rows):
    a = np.array(a, copy=True)
    a[rows] = np.nan
    return a


def diverged_report(res, most: int = 10) -> str:
    """One line naming the diverged models of `res` by their swept settings, or ""."""
    models = res.models[res.models["diverged"]]
    if models.empty:
        return ""
    swept = [c for c in res.models.columns
             if c in {"case", *(settings.column(k) for k in res.config.get("sweep", {}))}]
    named = [f"model {r.model} (" + ", ".join(f"{c}={_shown(getattr(r, c))}" for c in swept)
             + f"; by step {r.diverged_step})" for r in models.head(most).itertuples()]
    more = f" and {len(models) - most} more" if len(models) > most else ""
    return (f"{len(models)} of {len(res.models)} models diverged (non-finite loss), kept with "
            f"loss NaN and diverged = True in models.parquet: {'; '.join(named)}{more}")


def _shown(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _stop_if_diverged(sweep, ids, bad):
    stop = [i for i, b in zip(ids, bad) if b and sweep[i]["run.on_diverge"] == "stop"]
    if stop:
        s = sweep[stop[0]]
        shown = ", ".join(f"{k}={v}" for k, v in s.items() if not k.startswith("run."))
        raise TrainingError(f"model {stop[0]} diverged (non-finite loss) with {shown}; "
                            f"{int(np.sum(bad))} model(s) of this chunk diverged. Finished chunks "
                            f"are kept; lower train.lr and run again with --force, or set "
                            f"run.on_diverge = 'keep' to record diverged models and go on")


def _progress(n_models, todo, enabled):
    """A bar over model-steps (each model's steps, summed): chunks of different lengths and
    sizes count for what they train."""
    total = sum(c.shape.steps * len(c.ids) for c in todo)
    return tqdm(total=total, unit=" model-steps", unit_scale=True, desc=f"training {n_models} models",
                disable=not enabled or total == 0, file=sys.stderr, dynamic_ncols=True)


__all__ = ["ConfigError", "OutputsError", "TrainingError", "describe_plan", "diverged_report",
           "resolve", "run", "train_sweep"]
