"""Toy models of superposition as a family of the engine: the default family.

    flat settings -> train.Shape / train.inputs -> train.train per chunk -> assemble.tables
        (models, features, history), diverged models marked -> Results

Its own rules on settings (validate), warm starts (train.init_from, starts.py), the tables every
run makes (optima, neighbours: each model against its trivial baselines and neighbours' solutions)
and the rounds after a run (run.polish, polish.py) are all here or named here.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from toysuper import (
    assemble,
    config,
    engine,
    models,
    optima,
    polish,
    settings,
    starts,
    tables,
    train,
    verdicts,
)
from toysuper.errors import ConfigError
from toysuper.family import Arrays, Family, register
from toysuper.results import Results


def _train(shape, hp, on_segment, start) -> Arrays:
    t = train.train(shape, hp, on_segment, start)
    return Arrays(t.params["params"], t.history, t.final,
                  t.snapshots["params"] if t.snapshots else {})


def _probe(shape, hp):
    return train.programs(shape).segment, train.initial(shape, hp)


def part_shapes(shape, k: int) -> dict:
    """The shape of every array a finished chunk of k models stores."""
    # blank(shape, 0): the shapes without allocating a chunk's worth of zeros
    want = {name: (k, *a.shape[1:]) for name, a in train.blank(shape, 0)["params"].items()}
    return {"history": (k, shape.steps // shape.log_every), "final": (k,),
            **{f"param/{n}": s for n, s in want.items()},
            **{f"snap/{n}": (k, shape.snapshots, *s[1:]) for n, s in want.items()
               if shape.snapshots}}


def _label(shape) -> str:
    return f"{shape.kind} n={shape.n} m={shape.m} batch={shape.step_batch}"


def _reads(sweep) -> list[tuple[str, str]]:
    """(setting, results folder) the models start from (train.init_from)."""
    return [(starts.KEY, f) for f in sorted({s[starts.KEY] for s in sweep} - set(settings.INIT_SOURCES))]


# features-table columns computed from a model's weights
FEATURE_NUMBERS = ("norm", "superposition", "dimensionality", "bias")


def assembled(cfg, sweep, chunks, done) -> tuple[dict, dict, dict]:
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
        bad, at = engine.diverged(params, history, final, c.shape.log_every)
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
    made, weights, snapshots = assemble.tables(sweep, chunks, marked)
    models_table = made["models"].assign(diverged=flags, diverged_step=steps)
    models_table.loc[flags, "train_loss"] = np.nan
    made["models"] = models_table
    # NaN weights give NaN norms, but a dimensionality of 0 (metrics: "not learned")
    features = made["features"]
    features.loc[flags[features["model"].to_numpy()], list(FEATURE_NUMBERS)] = np.nan
    return made, weights, snapshots


def _nan_rows(a, rows):
    a = np.array(a, copy=True)
    a[rows] = np.nan
    return a


def summary(res) -> str:
    """Whether every model beats its trivial baselines and each cell its neighbours (optima.py)."""
    return optima.summary(tables.get(res, "optima"), tables.get(res, "neighbours"))


def page(res, summary: dict, traps: str):
    """The report's facts on a toy-model sweep, its kept models and its interactive views."""
    from toysuper import report  # noqa: PLC0415  (the report draws: training needs no plotly)

    kept = optima.kept_models(res)
    views = []
    if "phase" in res.derived:
        views.append(report.phase_view(res.derived["phase"]))
    if report.planar(res, kept):
        views.append(report.plane_view(res, kept))
    n = len(res.models)
    facts = [("models", f"{n:,}", False), ("kept (one per sweep cell)", f"{len(kept):,}", False),
             ("runtime", report.runtime(summary), False)]
    if "optima" in res.derived and "neighbours" in res.derived:
        c = verdicts.toys(res.derived["optima"], res.derived["neighbours"])
        facts.append(("trapped", f"{c.trapped:,} of {n:,} models ({c.kept_trapped} kept"
                      f"{', diverged ones included' if c.diverged else ''})", c.kept_trapped > 0))
        facts.append(("local minima", f"{c.local:,} of {c.kept:,} cells", c.local > 0))
        facts.append(("clean", f"{c.clean:,} of {n:,} models", False))
    else:
        facts.append(("trapped", "not measured (no optima.parquet or neighbours.parquet)", False))
    diverged = int(res.models["diverged"].sum())
    facts.append(("diverged", f"{diverged:,}", diverged > 0))
    facts.append(("traps declared", "yes" if traps else "no", False))
    return report.Page(facts, kept, views)


def validate(cfg: dict) -> None:
    """Rules across a toy-model experiment's settings (config.validate has the common ones)."""
    fixed_or_axis = config.fixed_or_axis
    for s, le, k in itertools.product(fixed_or_axis(cfg, "train.steps"),
                                      fixed_or_axis(cfg, "train.log_every"),
                                      fixed_or_axis(cfg, "train.snapshots")):
        if not s % le and k > s // le:
            raise ConfigError(f"train.snapshots = {k}: snapshots are taken every "
                              f"train.log_every = {le} steps, so at most {s // le} fit in "
                              f"train.steps = {s}")
    for kind, law in itertools.product(fixed_or_axis(cfg, "model.kind"), fixed_or_axis(cfg, "data.law")):
        spec = models.MODELS[kind]
        if spec.law and law != spec.law:
            raise ConfigError(f"model.kind = {kind!r} {spec.law_reason}; set data.law = "
                              f"{spec.law!r}, not {law!r}")
    for kind, wd in itertools.product(fixed_or_axis(cfg, "model.kind"),
                                      fixed_or_axis(cfg, "train.weight_decay")):
        if wd < 0 and not models.MODELS[kind].tied:
            raise ConfigError(f"train.weight_decay = {wd}: a negative decay (weight growth) pulls "
                              f"each feature's embedding column to unit norm, which only the tied "
                              f"models have; model.kind = {kind!r} is not one of them")
    config.check_sets(cfg)
    if "strata" in fixed_or_axis(cfg, "train.eval"):
        for n, b, e in itertools.product(*(fixed_or_axis(cfg, k) for k in
                                           ("model.n_features", "train.batch", "train.eval_batch"))):
            if e % (b * 2**n):
                raise ConfigError(
                    f"train.eval = 'strata' draws train.batch points for each of the 2^n patterns "
                    f"of active features, so train.eval_batch = {e} must be a multiple of "
                    f"train.batch x 2^model.n_features = {b} x 2^{n} = {b * 2**n}")



def footnote(res) -> tuple[str, bool]:
    """The figures' footnote on whether every model shown beats its trivial solution."""
    from toysuper.figures import style  # noqa: PLC0415  (drawing only)

    return style.toy_footnote_text(res)


FAMILY = register(Family(
    name="toys", noun="models", member="model", section=None, default=True,
    described="a toy-model experiment",
    settings=settings.TABLE, tables=("models", "features", "history"), results=Results,
    shape=train.Shape.of, inputs=train.inputs, train=_train,
    group_size=train.group_size, width_quantum=train.width_quantum, memory=train.memory,
    host_bytes=train.host_bytes, label=_label, part_shapes=part_shapes, assemble=assembled,
    summary=summary, probe=_probe, always=("optima", "neighbours"),
    check=starts.check, reads=_reads, start=starts.chunk, validate=validate, after=polish.after,
    page=page, footnote=footnote,
))
