"""Double-descent measurements for claims (toysuper/measures/finite_data.py) on constructed
sweeps: a known peak, known seeds, a regular polygon of training points built by hand."""

import numpy as np
import pandas as pd
import pytest

from toysuper import config, finite_data
from toysuper.measures import MEASURES
from toysuper.measures import finite_data as fd
from toysuper.results import Results

SIZES = [3, 5, 8]


def _sweep():
    """Two seeds per T; seed 0 trains lower everywhere but T = 8 (kept: seed 1 there)."""
    cfg = config.resolve({"name": "t", "model": {"n_features": 5, "n_hidden": 2},
                          "data": {"dataset_size": 3, "density": 0.5},
                          "sweep": {"data.dataset_size": SIZES, "train.seed": [0, 1]}})
    test = {(3, 0): 1.0, (3, 1): 1.2, (5, 0): 3.0, (5, 1): 9.0, (8, 0): 0.5, (8, 1): 0.9}
    rows = [{"model": i, "kind": "relu", "n_hidden": 2, "dataset_size": s["data.dataset_size"],
             "seed": s["train.seed"], "loss": test[(s["data.dataset_size"], s["train.seed"])],
             "train_loss": 0.1 if (s["train.seed"] == 0) != (s["data.dataset_size"] == 8)
             else 0.2}
            for i, s in enumerate(config.expand(cfg))]
    feats = pd.DataFrame([{"model": r["model"], "feature": i, "norm": 1.0 if i < r["seed"] + 3
                           else 0.1} for r in rows for i in range(5)])
    return Results(None, cfg, pd.DataFrame(rows), feats, pd.DataFrame(), {})


def test_peak_location_height_and_seed_spread_for_the_kept_seed_and_the_mean():
    res = _sweep()
    get = {k: MEASURES[k].fn for k in ("peak_T", "peak_test_loss", "test_loss_at",
                                       "seed_spread_at", "features_represented")}
    assert get["peak_T"](res) == 5 and get["peak_test_loss"](res) == 3.0  # kept: seed 0
    assert get["peak_T"](res, which="mean") == 5 and get["peak_test_loss"](res, which="mean") == 6.0
    assert get["test_loss_at"](res, T=8) == 0.9  # kept at T = 8: seed 1
    assert get["test_loss_at"](res, T=3, which="mean") == pytest.approx(1.1)
    assert get["seed_spread_at"](res, T=5) == pytest.approx(3.0)
    assert get["features_represented"](res, T=8) == 4 and get["features_represented"](res, T=3) == 3
    with pytest.raises(ValueError, match="which"):
        get["peak_T"](res, which="best")


def test_polygon_measures_are_zero_on_a_regular_polygon_and_read_a_squeezed_gap(monkeypatch):
    res = _sweep()
    angles = 2 * np.pi * np.arange(5) / 5
    W = np.stack([np.cos(angles), np.sin(angles)])
    res.params = lambda i: {"W": W, "b": np.zeros(5)}
    # the training set: each point one feature, so point t's hidden vector is W's column t
    monkeypatch.setattr(finite_data, "training_sets", lambda r, ids: {i: np.eye(5) for i in ids})
    res.derived["datapoints"] = finite_data.datapoints(res)
    assert fd.polygon_deviation(res, t_min=5, t_max=5) == pytest.approx(0, abs=1e-9)
    assert fd.polygon_angle_deviation(res, t_min=5, t_max=5) == pytest.approx(0, abs=1e-9)
    # move point 1 halfway towards point 0: gaps of 0.5 and 1.5 of 2 pi / 5
    angles[1] = np.pi / 5
    W[:] = np.stack([np.cos(angles), np.sin(angles)])
    assert fd.polygon_angle_deviation(res, t_min=5, t_max=5) == pytest.approx(0.5)
    res.derived["datapoints"] = finite_data.datapoints(res)
    assert fd.polygon_deviation(res, t_min=5, t_max=5) > 0.1
    assert np.isnan(fd.polygon_deviation(res, t_min=100, t_max=200))  # no such T


def test_constant_output_loss_of_one_unit_norm_feature_is_p_times_one_minus_p():
    # n = 1 at density 0.5, unit-norm samples: x is 0 or 1, each half the time: variance 1/4
    cfg = config.resolve({"name": "t", "model": {"n_features": 1, "n_hidden": 1},
                          "data": {"density": 0.5, "unit_norm": True, "dataset_size": 4},
                          "sweep": {"data.dataset_size": [4]}})
    res = Results(None, cfg, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {})
    assert fd.constant_test_loss(res, 4, samples=65536) == pytest.approx(0.25, abs=0.005)
