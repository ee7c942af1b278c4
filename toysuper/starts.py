"""Where a model's training starts: at random, at a hand-built solution, or at another run's.

train.init_from =
  "random"        Flax's initialisers from the model's key (the reference notebook's start).
  "construction"  the top-k exact solution of toysuper/optima.py: the k features worth most
                  reproduced exactly, the others at their optimal constant. Gradient descent
                  from a random start can miss it entirely: the computation model's sparse
                  output ReLUs die before they learn (issue-13 measurements in
                  experiments/abs_computation.toml), and from this start it goes on to beat it.
  a directory     results of an earlier run. A model starts from that run's kept (lowest-loss)
                  solution of the same task (same [model] and [data] settings) when there is one;
                  otherwise from whichever of its kept solutions of the same shape scores lowest
                  on this model's task and evaluation sample. Seeding a sweep from a neighbouring
                  cell's better solution is how a cell marked local_minimum (neighbours.parquet)
                  is retrained.
Warm starts get noise on their weights (train.init_noise, from the model's key) in train.init_one.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from toysuper import config, keys, optima, settings, store, train
from toysuper.errors import ConfigError

KEY = "train.init_from"


def check(sweep: list[dict]) -> None:
    """Refuse, before training, a sweep whose warm starts cannot be made."""
    for s in sweep:
        source = s[KEY]
        if source not in ("random", "construction") and not _candidates(source, _geometry(s)):
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
    scored: dict = {}  # rows that need their directory's candidates scored, by directory
    for j, s in enumerate(rows):
        if s[KEY] == "construction":
            imp, p = settings.feature_vectors(s)
            start = optima.constructions(shape.kind, shape.n, shape.m, shape.law, imp,
                                         p)["top-k exact"]["params"]
        elif s[KEY] != "random":
            start = _same_task(s[KEY], s)
            if start is None:
                scored.setdefault(s[KEY], []).append(j)
                continue
        else:
            continue
        for name, v in start.items():
            params["params"][name][j] = v
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


def _candidates(source: str, geometry: tuple) -> list[tuple[dict, dict]]:
    return [(s, p) for s, p in _kept(source) if _geometry(s) == geometry]


def _same_task(source: str, s: dict) -> dict | None:
    salt = keys.salt(s)
    for other, params in _candidates(source, _geometry(s)):
        if keys.salt(other) == salt:
            return params
    return None


def _best_scoring(source: str, shape, rows: list[dict]) -> list[dict]:
    """For each row, the candidate of `source` with the lowest loss on that row's task."""
    found = _candidates(source, (shape.kind, shape.n, shape.m))
    weights = [p for _ in rows for _, p in found]
    targets = [s for s in rows for _ in found]
    losses = optima.cross_terms(shape, weights, targets).sum(axis=1).reshape(len(rows), len(found))
    return [found[int(np.argmin(row))][1] for row in losses]
