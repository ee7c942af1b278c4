"""Where a model's training starts: at random, at a hand-built solution, or at another run's.

train.init_from =
  "random"        Flax's initialisers from the model's key (the reference notebook's start).
  "construction"  the top-k exact solution of toysuper/optima.py: the k features worth most
                  reproduced exactly, the others at their optimal constant. Gradient descent
                  from a random start can miss it entirely: the computation model's sparse
                  output ReLUs die before they learn (issue-13 measurements in
                  experiments/abs_computation.toml), and from this start it goes on to beat it.
  a directory     results of an earlier run. A model starts from whichever of that run's kept
                  (lowest-loss) solutions of the same shape scores lowest on this model's task
                  and evaluation sample, among the NEAREST tasks to its own (by importance and
                  density, on a log scale; its own task included when the run has it). So a
                  cell marked local_minimum (neighbours.parquet) restarts from the neighbour's
                  solution that beat it, and any other cell from its own solution, or a better one.
Warm starts get noise on their weights (train.init_noise, from the model's key) in train.init_one.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from toysuper import config, optima, settings, store, train
from toysuper.errors import ConfigError

KEY = "train.init_from"
# Candidates scored per model: its own task and the nearest others. The few nearest hold every
# neighbour of a sweep cell (two per swept axis), without scoring every solution of a large sweep.
NEAREST = 8


def check(sweep: list[dict]) -> None:
    """Refuse, before training, a sweep whose warm starts cannot be made."""
    for s in sweep:
        source = s[KEY]
        if source not in settings.INIT_SOURCES and not _candidates(source, _geometry(s)):
            shown = ", ".join(f"{k} = {s[k]!r}" for k in ("model.kind", "model.n_features",
                                                          "model.n_hidden"))
            raise ConfigError(f"{KEY} = {source!r} holds no kept model with {shown}, so it "
                              f"cannot start this sweep's models")


def chunk(sweep: list[dict], ids, width: int, shape) -> tuple[dict, np.ndarray] | None:
    """(stacked starting parameters, warm flags) of a chunk padded to `width` models, or None
    when every model starts at random."""
    rows = [sweep[i] for i in ids]
    rows += [rows[-1]] * (width - len(rows))
    if all(s[KEY] == "random" for s in rows):
        return None
    params = train.blank(shape, width)
    warm = np.array([s[KEY] != "random" for s in rows])
    scored: dict = {}  # rows whose start is scored among a directory's solutions, by directory
    for j, s in enumerate(rows):
        if s[KEY] == "construction":
            imp, p = settings.feature_vectors(s)
            start = optima.constructions(shape.kind, shape.n, shape.m, shape.law, imp,
                                         p)["top-k exact"]["params"]
            for name, v in start.items():
                params["params"][name][j] = v
        elif s[KEY] != "random":
            scored.setdefault(s[KEY], []).append(j)
    for source, js in scored.items():
        for j, start in zip(js, _best_scoring(source, shape, [rows[j] for j in js])):
            for name, v in start.items():
                params["params"][name][j] = v
    return params, warm


def _geometry(s: dict) -> tuple:
    return s["model.kind"], s["model.n_features"], s["model.n_hidden"]


@functools.lru_cache(maxsize=8)
def _kept(source: str) -> list[tuple[dict, dict]]:
    """(settings, parameters) of every kept model of a results directory."""
    res = store.load(Path(source))
    sweep = config.expand(res.config)
    return [(sweep[i], res.params(i)) for i in optima.kept_models(res)]


# a run that rewrites a directory makes what was read of it stale
store.on_rewrite(lambda path: _kept.cache_clear())


def _candidates(source: str, geometry: tuple) -> list[tuple[dict, dict]]:
    return [(s, p) for s, p in _kept(source) if _geometry(s) == geometry]


def _task(s: dict) -> np.ndarray:
    """A task's place for NEAREST: log importance and log density of every feature."""
    imp, p = settings.feature_vectors(s)
    return np.log(np.r_[np.maximum(imp, 1e-12), p])


def _best_scoring(source: str, shape, rows: list[dict]) -> list[dict]:
    """For each row, the candidate of `source` with the lowest loss on that row's task, among the
    NEAREST tasks to it."""
    found = _candidates(source, (shape.kind, shape.n, shape.m))
    places = np.stack([_task(s) for s, _ in found])
    near = [np.argsort(np.abs(places - _task(s)).sum(axis=1), kind="stable")[:NEAREST] for s in rows]
    weights = [found[c][1] for cs in near for c in cs]
    targets = [s for s, cs in zip(rows, near) for _ in cs]
    losses = optima.cross_terms(shape, weights, targets).sum(axis=1)
    out, at = [], 0
    for cs in near:
        out.append(found[cs[int(np.argmin(losses[at:at + len(cs)]))]][1])
        at += len(cs)
    return out
