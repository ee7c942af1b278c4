"""The run lifecycle, written once for every family (toysuper/family.py): in memory or stored.

    cfg -> config.expand -> family.prepare -> plan.chunks -> family.train per chunk
        -> family.assemble -> family.results

`run` adds the results directory around that: a finished chunk is saved at once, so an
interrupted or failing sweep resumes from where it stopped, and the tables and figures are
written when every chunk is done; a lock file keeps a second run out of the directory meanwhile.
Both refuse a sweep whose figures or tables cannot be made (outputs.check) before training
anything. A member whose loss stops being finite is kept and marked `diverged` (run.on_diverge =
"keep", the default: the high end of an lr sweep is expected to diverge, the rest is the result)
or stops the run ("stop").

Nothing here knows a family: each brings its shapes, programs, tables and Results.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from toysuper import config, experiments, family, hosts, outputs, plan, settings, store
from toysuper.errors import ConfigError, OutputsError, TrainingError


def resolve(experiment, overrides=()) -> dict:
    """A resolved config from a config dict, an experiment file or an experiment's name."""
    if isinstance(experiment, dict):
        return config.resolve(experiment, overrides)
    return config.load(experiments.find(experiment), overrides)


def prepared(cfg: dict):
    """(family, every member's flat settings, chunks) of a resolved config, checked."""
    fam = family.of(cfg)
    sweep = fam.prepare(cfg, config.expand(cfg))
    outputs.check(cfg, sweep)
    fam.check(sweep)
    return fam, sweep, plan.chunks(sweep, cfg["run"]["chunk_size"], cfg["run"]["memory_gb"], fam)


def train_chunks(fam, sweep, chunks, done, progress=True,
                 on_chunk=lambda chunk, arrays: None) -> None:
    """Train every chunk whose `done` entry is None, filling it with the chunk's Arrays (its
    padding dropped).

    A chunk holding a diverged member whose run.on_diverge is "stop" raises TrainingError
    before it is saved; diverged members are otherwise kept as trained (marked by assembly).
    """
    todo = [c for c in chunks if done[c.index] is None]
    # closed however training ends, so that a message after it starts on a line of its own
    with _progress(fam, len(sweep), todo, enabled=progress) as bar:
        for c in todo:
            k = len(c.ids)  # the members of the chunk, its padding dropped below
            t = fam.train(c.shape, fam.inputs([sweep[i] for i in c.ids], c.width),
                          lambda n=c.shape.log_every * k: bar.update(n),
                          fam.start(sweep, c.ids, c.width, c.shape))
            arrays = family.Arrays({name: v[:k] for name, v in t.params.items()},
                                   t.history[:k], t.final[:k],
                                   {name: v[:k] for name, v in t.extra.items()})
            _stop_if_diverged(fam, sweep, c.ids, diverged(*arrays[:3])[0])
            done[c.index] = arrays
            on_chunk(c, arrays)


def train_sweep(experiment, overrides=(), progress=False):
    """Train an experiment in memory and return its Results (path None); writes nothing.

    `experiment` is a config dict (as an experiment file's TOML would parse), a path or a name.
    Derived tables are computed on first use (`toysuper.tables.get`).
    """
    cfg = resolve(experiment, overrides)
    fam, sweep, chunks = prepared(cfg)
    done = {c.index: None for c in chunks}
    train_chunks(fam, sweep, chunks, done, progress)
    tables, weights, snapshots = fam.assemble(cfg, sweep, chunks, done)
    return fam.loaded(fam.results.of(None, cfg, tables, weights, snapshots))


def run(experiment, overrides=(), out=None, force=False, progress=True):
    """Train (or resume) an experiment, store its results, derive its tables, draw its figures.

    Across hosts (after jax.distributed.initialize) every process runs this with the same
    arguments: all train every chunk together, process 0 alone writes, and the others return
    None. Resuming then needs `out` on a filesystem every host sees.
    """
    cfg = resolve(experiment, overrides)
    fam, sweep, chunks = prepared(cfg)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    for key, source in fam.reads(sweep):
        if Path(source).resolve() == out.resolve():
            raise ConfigError(f"{key} = {source!r} is this run's own results directory; "
                              f"start from a copy, or write to another one with --out")
    if (res := store.finished_run(out, cfg, force)) is not None:
        return fam.after(out, cfg, _finished(out, res), progress)  # resumes a polish
    t0 = time.time()
    lock = store.Lock(out)  # taken by process 0 alone, in finished_chunks, before it reads `out`
    try:
        done = hosts.finished_chunks(out, cfg, force, chunks, lock, fam)
        trained = sum(v is None for v in done.values())
        clock = [time.time()]  # when the chunk being trained started

        def save(c, arrays):
            start, clock[0] = clock[0], time.time()
            if hosts.writer():
                store.save_part(out, c.index, np.array(c.ids), *arrays, seconds=clock[0] - start)

        train_chunks(fam, sweep, chunks, done, progress, save)
        if not hosts.writer():
            hosts.written()
            return None
        tables, weights, snapshots = fam.assemble(cfg, sweep, chunks, done)
        main = tables[fam.tables[0]]
        store.write_results(out, tables, weights, snapshots, {
            fam.tables[0]: len(sweep), "chunks": len(chunks), "trained_chunks": trained,
            "diverged": int(main["diverged"].sum()), **store.timing(out, t0)})
        res = store.load(out)  # figures read what was stored, exactly as `toysuper plot` will
        if members(res)["diverged"].all():  # nothing finite to draw: the tables, and say so
            outputs.make(res, figure_list=[], progress=progress)
            hosts.written()
            raise OutputsError(all_diverged(res, fam.noun))
        try:
            outputs.make(res, progress=progress)
        except Exception as e:
            if not members(res)["diverged"].any():
                raise
            hosts.written()
            raise OutputsError(
                f"the results are stored in '{out}', but its derived tables and figures could "
                f"not be made with diverged {fam.noun} among them ({type(e).__name__}: "
                f"{str(e).strip()[:300]}); {diverged_report(res)}") from e
        hosts.written()
    finally:
        lock.release()
    return fam.after(out, cfg, res, progress)  # run.polish rounds, if any


def _finished(out: Path, res):
    """A finished run's results as stored (an older schema read upgraded), nothing rewritten."""
    if not hosts.writer():
        return None
    store.notice(f"'{out}' holds this experiment's finished results: nothing is trained or "
                 f"rewritten (`toysuper plot {out}` redraws its figures, --force retrains)")
    return res


def describe_plan(experiment, overrides=(), out=None, probe=True) -> str:
    """What `run` would do, without training: members, chunks, memory and an estimated time."""
    cfg = resolve(experiment, overrides)
    fam, sweep, chunks = prepared(cfg)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    differ = store.differences(out, cfg)
    done = sum(store.finished(out, c.index, np.array(c.ids), fam.part_shapes(c.shape, len(c.ids)))
               for c in chunks) if (out / "config.toml").exists() and not differ else 0
    lines = plan.describe(cfg, sweep, chunks, done, probe, fam)
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
    """(bool[k]: which of a chunk's k members diverged, int[k]: the step by which each did, 0
    if not).

    A member diverged when its training numbers, final loss or any parameter is not finite.
    Its step is the end of the first logged interval (log_every steps) whose training numbers
    are not finite, else the last step (the final update or evaluation overflowed).
    """
    history, final = np.asarray(history), np.asarray(final)
    finite = np.isfinite(history).reshape(*history.shape[:2], -1).all(axis=2)
    bad = ~finite.all(axis=1) | ~np.isfinite(final)
    for v in params.values():
        bad |= ~np.isfinite(np.asarray(v)).reshape(len(final), -1).all(axis=1)
    first = np.where(finite.all(axis=1), history.shape[1], np.argmin(finite, axis=1) + 1)
    return bad, np.where(bad, first * log_every, 0)


members = family.members  # the main table of a results object, a row per member


def diverged_report(res, most: int = 10) -> str:
    """One line naming the diverged members of `res` by their swept settings, or ""."""
    fam = family.of(res.config)
    rows = members(res)
    bad = rows[rows["diverged"].astype(bool)] if "diverged" in rows else rows.iloc[:0]
    if bad.empty:
        return ""
    swept = [c for c in rows.columns
             if c in {"case", *(settings.column(k) for k in res.config.get("sweep", {}))}]
    named = [f"{fam.member} {getattr(r, fam.member)} ("
             + ", ".join(f"{c}={_shown(getattr(r, c))}" for c in swept)
             + (f"; by step {r.diverged_step})" if "diverged_step" in rows else ")")
             for r in bad.head(most).itertuples()]
    more = f" and {len(bad) - most} more" if len(bad) > most else ""
    return (f"{len(bad)} of {len(rows)} {fam.noun} diverged (non-finite loss), kept with "
            f"loss NaN and diverged = True in {fam.tables[0]}.parquet: {'; '.join(named)}{more}")


def all_diverged(res, unit: str) -> str:
    """The one line a run ends with when every model (or SAE) of it diverged."""
    every = config.expand(res.config)
    lrs = sorted({float(s["train.lr"]) for s in every if "train.lr" in s})
    return (f"every one of the {len(every)} {unit} diverged (non-finite loss; train.lr "
            f"{', '.join(f'{v:g}' for v in lrs)}); they are stored in '{res.path}' with their "
            f"derived tables, but no figure is drawn (nothing finite to draw); lower train.lr "
            f"and run again with --force")


def _shown(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _stop_if_diverged(fam, sweep, ids, bad):
    stop = [i for i, b in zip(ids, bad) if b and sweep[i]["run.on_diverge"] == "stop"]
    if stop:
        s = sweep[stop[0]]
        shown = ", ".join(f"{k}={v}" for k, v in s.items() if not k.startswith("run."))
        raise TrainingError(f"{fam.member} {stop[0]} diverged (non-finite loss) with {shown}; "
                            f"{int(np.sum(bad))} of this chunk's {fam.noun} diverged. Finished "
                            f"chunks are kept; lower train.lr and run again with --force, or set "
                            f"run.on_diverge = 'keep' to record diverged {fam.noun} and go on")


def _progress(fam, n, todo, enabled):
    """A bar over member-steps (each member's steps, summed): chunks of different lengths and
    sizes count for what they train."""
    total = sum(c.shape.steps * len(c.ids) for c in todo)
    noun = fam.noun.rstrip("s")
    return tqdm(total=total, unit=f" {noun}-steps", unit_scale=True,
                desc=f"training {n} {fam.noun}", disable=not enabled or total == 0,
                file=sys.stderr, dynamic_ncols=True)


__all__ = ["ConfigError", "OutputsError", "TrainingError", "describe_plan", "diverged_report",
           "resolve", "run", "train_sweep"]
