"""Every toy model kind on a known answer, and a new kind added by one entry in models.MODELS."""

import flax.linen as nn
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from toysuper import engine, models, tables
from toysuper.figures import FIGURES, style

TRAIN = {"steps": 600, "batch": 256, "log_every": 100, "eval_batch": 2048, "lr": 1e-2}

# Per kind: the smallest width at which its top-k exact construction (Spec.baselines) holds every
# one of n = 2 dense features, and a data law its task allows. There the construction's loss is 0,
# and the best of 8 seeds reaches it (a seed can lose a unit to a dead ReLU: the paper also keeps
# the best of several runs). A new kind adds its line here.
KNOWN = {"linear": (2, "uniform"), "relu": (2, "uniform"), "privileged": (2, "uniform"),
         "abs": (4, "signed")}


def _cfg(kind, n, m, law, density):
    return {"name": f"kind_{kind}", "model": {"kind": kind, "n_features": n, "n_hidden": m},
            "data": {"law": law, "density": density}, "train": TRAIN}


@pytest.mark.parametrize("kind", list(models.MODELS))
def test_every_kind_learns_dense_features_it_has_room_for_exactly(kind):
    if kind not in KNOWN:
        pytest.fail(f"model kind {kind!r} has no known answer: add it to KNOWN")
    m, law = KNOWN[kind]
    res = engine.train_sweep(dict(_cfg(kind, 2, m, law, 1.0), sweep={"train.seed": list(range(8))}))
    o = tables.get(res, "optima")
    assert (o["exact_loss"] < 1e-9).all()  # the construction is exact ...
    assert (o["constant_loss"] > 0.05).all()  # ... the constant is not (Var of U[0,1], |U[-1,1]|)
    assert o["eval_loss"].min() < 1e-3, o  # ... and training finds it


def _leaky(x):
    return nn.leaky_relu(x, 0.1)


LEAKY = models.Spec(lambda n, m: models.TiedModel(n, m, _leaky), relu_out=False,
                    doc="x' = LeakyReLU(W^T W x + b)", title="leaky ReLU output model")


def test_a_kind_added_by_one_registry_entry_trains_beats_its_baselines_and_draws(monkeypatch):
    monkeypatch.setitem(models.MODELS, "leaky", LEAKY)
    # sparse features, 5 in 2 dimensions: superposition beats the top-2 exact construction
    res = engine.train_sweep(_cfg("leaky", 5, 2, "uniform", 0.1))
    leaky = tables.get(res, "optima").iloc[0]
    assert leaky["baseline"] == "top-k exact" and leaky["exact_loss"] < leaky["constant_loss"]
    assert leaky["eval_loss"] < 0.8 * leaky["baseline_loss"], leaky
    assert not leaky["trapped"] and leaky["dead_outputs"] == 0  # a leaky output never dies
    try:
        plane = FIGURES["feature_plane"].draw(res)
        assert plane.axes[0].get_ylabel() == "leaky ReLU output model"  # its Spec's title
        curves = FIGURES["loss_curves"].draw(res)
        legend = [t.get_text() for t in curves.axes[0].get_legend().get_texts()]
        assert "leaky ReLU output model" in legend
    finally:
        plt.close("all")
    # figures show kinds in MODELS order, a new entry last
    found = pd.DataFrame({"kind": ["leaky", "abs", "relu", "linear", "privileged"]})
    assert style.kinds(found) == ["linear", "relu", "privileged", "abs", "leaky"]
