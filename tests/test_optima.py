"""Trivial baselines, trapped models, dead units and local minima, on known answers."""

import numpy as np
import pytest

import toysuper
from toysuper import optima, tables

SMALL = {"name": "small", "model": {"kind": "relu", "n_features": 6, "n_hidden": 2},
         "data": {"importance": {"decay": 0.8}},
         "train": {"steps": 100, "batch": 512, "log_every": 50, "eval_batch": 16384},
         "sweep": {"data.density": [1.0, 0.3]}}


def _closed_form(imp, p, kept):
    """Expected loss of the features not in `kept`, each at its constant p/2: I (p/3 - p^2/4)."""
    lost = np.setdiff1d(np.arange(len(imp)), kept)
    return float(np.sum(imp[lost] * (p[lost] / 3 - p[lost] ** 2 / 4)))


@pytest.mark.parametrize("kind, law, m, k", [("linear", "uniform", 2, 2), ("relu", "uniform", 2, 2),
                                               ("privileged", "uniform", 3, 3), ("abs", "signed", 4, 2)])
def test_baselines_score_their_closed_form_losses(kind, law, m, k):
    cfg = dict(SMALL, model={"kind": kind, "n_features": 6, "n_hidden": m}, data=dict(
        SMALL["data"], law=law))
    res = toysuper.train_sweep(cfg)
    o = tables.get(res, "optima")
    imp, p = 0.8 ** np.arange(6), np.array([1.0, 0.3])
    for i, row in o.iterrows():
        pi = np.full(6, p[i])
        # eval_batch 16384 at density 0.3: a few percent of noise on each estimate
        assert row["constant_loss"] == pytest.approx(_closed_form(imp, pi, []), rel=0.05)
        assert row["exact_loss"] == pytest.approx(_closed_form(imp, pi, np.arange(k)), rel=0.05)
        assert row["baseline"] == "top-k exact"


def _with_weights(res, model, **arrays):
    for name, value in arrays.items():
        res.weights[name][model] = value
    res.derived.clear()
    return res


def test_the_construction_itself_is_not_trapped_and_a_dead_model_is():
    res = toysuper.train_sweep(SMALL)
    W = np.zeros((2, 6))
    W[0, 0] = W[1, 1] = 1.0
    b = np.r_[0.0, 0.0, np.full(4, 0.5)]  # the dense cell's top-2 exact solution
    _with_weights(res, 0, W=W, b=b)
    _with_weights(res, 1, W=np.zeros((2, 6)), b=np.full(6, -1.0))  # every output dead
    o = tables.get(res, "optima").set_index("model")
    assert not o.loc[0, "trapped"] and o.loc[0, "ratio"] == pytest.approx(1.0, abs=1e-6)
    assert o.loc[0, "dead_outputs"] == 0
    assert o.loc[1, "trapped"] and o.loc[1, "dead_outputs"] == 6 and o.loc[1, "ratio"] > 1.5
    units = tables.get(res, "units")
    dead = units[(units["model"] == 1) & (units["layer"] == "output")]
    assert dead["dead"].all() and (dead["max_preactivation"] == -1.0).all()
    assert "1 of 2 models are trapped" in optima.summary(o.reset_index(), tables.get(res, "neighbours"))


def test_a_cell_beaten_by_its_neighbours_solution_is_a_local_minimum():
    res = toysuper.train_sweep(dict(SMALL, sweep={"data.density": [0.3, 0.25, 0.2]}))
    good = res.params(1)
    _with_weights(res, 0, W=good["W"], b=good["b"])      # a near-optimum at 0.3 as well
    _with_weights(res, 2, W=np.zeros((2, 6)), b=np.full(6, 0.1))  # far from it at 0.2
    cells = tables.get(res, "neighbours").set_index("model")
    assert cells.loc[2, "local_minimum"] and cells.loc[2, "neighbour"] == 1
    assert cells.loc[2, "neighbour_loss"] < cells.loc[2, "loss"]
    assert not cells.loc[1, "local_minimum"]
