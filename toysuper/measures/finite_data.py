"""Measurements for claims: finite data, memorisation and double descent (Henighan et al. 2023;
docs/finite_data.md). A size T names the sweep cell of data.dataset_size = T; `which` is "kept"
(the seed with the lowest training loss, never chosen by its test loss) or "mean" (the mean over
the stored seeds, as the paper plots the mean over dataset seeds)."""

from __future__ import annotations

import jax
import numpy as np

from toysuper import config, finite_data, metrics, models, optima, tables, train
from toysuper.measures.registry import measure


def _kept(res):
    kept = res.models.set_index("model").loc[optima.kept_models(res)].reset_index()
    return kept.sort_values("dataset_size", ignore_index=True)


def _test_loss_by_T(res, which: str):
    """Test loss (fresh samples) against T: the kept seed's, or the mean over seeds."""
    if which == "kept":
        return _kept(res).set_index("dataset_size")["loss"]
    if which == "mean":
        return res.models.groupby("dataset_size")["loss"].mean()
    raise ValueError(f"which = {which!r}: 'kept' or 'mean'")


@measure("polygon_deviation", "largest |D_t T / 2 - 1| over every training point of the kept "
         "model of every T in [t_min, t_max]: 0 when every point has the 2/T of a regular T-gon")
def polygon_deviation(res, t_min: int, t_max: int) -> float:
    kept = _kept(res)
    ids = kept.loc[kept["dataset_size"].between(t_min, t_max), ["model", "dataset_size"]]
    if ids.empty:
        return float("nan")
    points = tables.get(res, "datapoints").merge(ids, on="model")
    return float((points["dimensionality"] * points["dataset_size"] / 2 - 1).abs().max())


@measure("polygon_angle_deviation", "largest |gap T / 2 pi - 1| over the angular gaps between "
         "neighbouring training points' hidden vectors (m = 2) of the kept model of every T in "
         "[t_min, t_max]: 0 on a regular T-gon, 1 where two points share a direction")
def polygon_angle_deviation(res, t_min: int, t_max: int) -> float:
    kept = _kept(res)
    kept = kept[kept["dataset_size"].between(t_min, t_max)]
    if kept.empty or int(kept["n_hidden"].max()) != 2:
        return float("nan")
    worst = 0.0
    for i, X in finite_data.training_sets(res, list(kept["model"])).items():
        H = np.asarray(res.params(i)[models.MODELS[kept.set_index("model").loc[i, "kind"]].embed]) @ X.T
        angles = np.sort(np.arctan2(H[1], H[0]))
        gaps = np.diff(np.r_[angles, angles[0] + 2 * np.pi])
        worst = max(worst, float(np.abs(gaps * len(angles) / (2 * np.pi) - 1).max()))
    return worst


@measure("features_represented", "features with ||W_i|| > 0.5 in the kept model of size T")
def features_represented(res, T: int) -> float:
    kept = _kept(res)
    model = kept.loc[kept["dataset_size"] == T, "model"]
    if model.empty:
        return float("nan")
    norms = res.features.loc[res.features["model"] == int(model.iloc[0]), "norm"]
    return float((norms > metrics.REPRESENTED).sum())


@measure("peak_T", "the training set size T of the largest test loss, kept seed or mean over seeds")
def peak_T(res, which: str = "kept") -> float:
    return float(_test_loss_by_T(res, which).idxmax())


@measure("peak_test_loss", "the largest test loss over T (fresh samples; the zero output scores "
         "about 1 on unit-norm samples), kept seed or mean over seeds")
def peak_test_loss(res, which: str = "kept") -> float:
    return float(_test_loss_by_T(res, which).max())


@measure("test_loss_at", "test loss at training set size T, kept seed or mean over seeds")
def test_loss_at(res, T: int, which: str = "kept") -> float:
    by_T = _test_loss_by_T(res, which)
    return float(by_T.loc[T]) if T in by_T.index else float("nan")


@measure("seed_spread_at", "largest over smallest test loss among the seeds of size T")
def seed_spread_at(res, T: int) -> float:
    loss = res.models.loc[res.models["dataset_size"] == T, "loss"]
    return float(loss.max() / loss.min()) if len(loss) else float("nan")


def constant_test_loss(res, T: int, samples: int = 16384) -> float:
    """Test loss of the best constant output (each feature at its mean) on fresh samples of the
    sweep cell T, estimated from `samples` draws of the model's own test stream."""
    row = next(s for s in config.expand(res.config) if s["data.dataset_size"] == T)
    shape = train.Shape.of(row)
    hp = jax.tree.map(lambda a: a[0], train.inputs([row], 1))
    x = np.asarray(train.draw(shape, hp.eval_key, hp, samples), np.float64)
    x = x.T if shape.columns else x
    imp = np.asarray(hp.imp, np.float64)
    return float((imp * (x - x.mean(axis=0)) ** 2).sum(axis=1).mean())


@measure("test_over_constant", "test loss at size T (kept seed or mean over seeds) over the best "
         "constant output's test loss; T = 0: at the peak (the largest test loss), as the paper "
         "reads its curve against the constant output")
def test_over_constant(res, T: int = 0, which: str = "kept") -> float:
    by_T = _test_loss_by_T(res, which)
    T = int(by_T.idxmax()) if T == 0 else T
    return float(by_T.loc[T]) / constant_test_loss(res, T) if T in by_T.index else float("nan")


@measure("second_descent", "1 - test loss of the kept model at the largest T over the best "
         "constant output's test loss (fresh samples): the share of the loss the generalising "
         "model removes")
def second_descent(res) -> float:
    T = int(res.models["dataset_size"].max())
    return 1 - test_loss_at(res, T) / constant_test_loss(res, T)
