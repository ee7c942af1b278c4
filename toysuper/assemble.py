"""Tidy tables from trained chunks: stacked arrays in, pandas tables and stacked weights out.

Pure: nothing here trains, reads or writes files. Works a chunk at a time on stacked arrays, so a
million-model sweep assembles in seconds per table rather than a Python loop per model.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from toysuper import metrics, models, settings, train
from toysuper.results import SHAPE


def tables(sweep: list[dict], chunks, done) -> tuple[dict, dict, dict]:
    """(tables {models, features, history}, weights, snapshots) from every chunk's arrays.

    `done[chunk.index]` is (params, history, final, snapshots) of that chunk's models.
    """
    stats = {k: np.zeros(len(sweep)) for k in ("loss", "train_loss", "dims_per_feature")}
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
        imp, p = (np.stack(v) for v in zip(*(settings.feature_vectors(sweep[i]) for i in ids)))
        stats["loss"][ids], stats["train_loss"][ids] = final, history[:, -1]
        stats["dims_per_feature"][ids] = metrics.dims_per_feature(W)
        feature_frames.append(pd.DataFrame({
            "model": np.repeat(ids, n), "feature": np.tile(np.arange(n), k),
            "importance": imp.ravel(), "density": p.ravel(),
            **{name: np.concatenate(v).ravel() for name, v in feats.items()},
            "bias": np.asarray(params["b"], float).ravel()}))
        history_frames.append(pd.DataFrame({
            "model": np.repeat(ids, segments),
            "step": np.tile(shape.log_every * np.arange(1, segments + 1), k),
            "loss": history.ravel()}))
        weights.append((ids, params))
        steps = np.tile(train.snapshot_steps(shape.steps, shape.log_every, shape.snapshots), (k, 1))
        snapshots.append((ids, {**snaps, "step": steps}))

    rows = [{"model": i, **{settings.column(k): v for k, v in s.items() if not k.startswith("run.")}}
            for i, s in enumerate(sweep)]
    model_table = pd.DataFrame.from_records(rows).assign(**stats)
    out = {"models": tidy(model_table),
           "features": _by_model(feature_frames), "history": _by_model(history_frames)}
    has_snapshots = any(len(p) > 1 for _, p in snapshots)
    return (out, stack_padded(len(sweep), weights),
            stack_padded(len(sweep), snapshots) if has_snapshots else {})


def _by_model(frames) -> pd.DataFrame:
    """Chunks' rows in model order (chunks follow shapes, not model ids)."""
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values("model", kind="stable", ignore_index=True)


def tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Columns of lists or tables (a vector of importances, {decay = 0.7}) become JSON text."""
    for col in df.columns:
        if df[col].map(lambda v: isinstance(v, (list, dict))).any():
            df[col] = df[col].map(lambda v: v if isinstance(v, str) else json.dumps(v))
    return df


def stack_padded(n_models: int, pieces) -> dict:
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
        out[name + SHAPE] = shapes
    return out
