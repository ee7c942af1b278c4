"""Finite data (data.dataset_size = T): the training points as the model sees them.

A model trained on T fixed samples can memorise them: its hidden vectors h_t = W x_t of the
training points then take the geometry features take in the infinite-data regime (Henighan et
al. 2023). The data-point dimensionality is the feature dimensionality's formula applied to the
hidden vectors, D_t = ||h_t||^2 / sum_s (h^_t . h_s)^2, and like it sums to at most m.

The training set is never stored: it is drawn again from the model's key (train.dataset), the
same numbers it was trained on.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pandas as pd

from toysuper import config, metrics, models, needs, train

NEEDS = (needs.every("data.dataset_size", lambda v: isinstance(v, int) and v > 0,
                     "a finite training set (data.dataset_size > 0) for every model"),)


@functools.lru_cache(maxsize=None)
def _datasets(shape):
    return jax.jit(jax.vmap(functools.partial(train.dataset, shape)))


def training_sets(res, ids) -> dict:
    """{model id: its T x n training set (rows)} for models `ids` of `res`."""
    sweep = config.expand(res.config)
    by_shape: dict = {}
    for i in ids:
        by_shape.setdefault(train.Shape.of(sweep[i]), []).append(i)
    out = {}
    for shape, some in by_shape.items():
        X = np.asarray(_datasets(shape)(train.inputs([sweep[i] for i in some], len(some))))
        for i, x in zip(some, X):
            out[i] = x.T if shape.columns else x
    return out


def datapoints(res) -> pd.DataFrame:
    """datapoints.parquet: per (model, training point), its hidden vector's norm and dimensionality."""
    frames = []
    kinds = res.models.set_index("model")["kind"]
    ids = list(res.models["model"])
    for lo in range(0, len(ids), 64):  # bounded memory: T x n per model
        for i, X in training_sets(res, ids[lo:lo + 64]).items():
            W = res.params(i)[models.MODELS[kinds[i]].embed]
            H = W @ X.T  # m x T: the hidden vectors as columns, like features in W
            frames.append(pd.DataFrame({
                "model": i, "point": np.arange(len(X)), "active": (X != 0).sum(axis=1),
                "hidden_norm": metrics.norms(H), "dimensionality": metrics.dimensionality(H)}))
    return pd.concat(frames, ignore_index=True)
