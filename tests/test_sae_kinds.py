"""Every registered SAE kind on one known answer (as optax runs every optimiser on one parabola),
and a new kind added by one entry in saes.KIND, with no other edit, trained and drawn."""

from __future__ import annotations

import numpy as np
import pytest

from toysuper import engine, figures, sae_train, saes

# a synthetic dictionary of 12 features in 6 dimensions, each active 5% of the time: every kind
# must beat the decoder bias alone (the trivial solution) and explain most of the variance
TINY = {"name": "kinds", "source": {"n_features": 12, "n_hidden": 6},
        "data": {"density": 0.05},
        "sae": {"width": 24, "k": 2, "l1_coefficient": 0.3, "l0_coefficient": 0.003},
        "train": {"steps": 300, "log_every": 100, "batch": 256, "eval_batch": 2048, "lr": 3e-3}}


@pytest.fixture(scope="module")
def every_kind():
    return engine.train_sweep(dict(TINY, sweep={"sae.kind": list(saes.KINDS)}))


@pytest.mark.parametrize("kind", list(saes.KINDS))
def test_every_kind_beats_its_trivial_solution_and_explains_the_activations(every_kind, kind):
    row = every_kind.saes.set_index("kind").loc[kind]
    assert bool(row["beats_trivial"]), row
    assert row["fve"] > 0.5, row["fve"]


@pytest.mark.parametrize("kind", list(saes.KINDS))
def test_every_kind_stores_the_parameters_it_declares(kind):
    """A kind's own parameters are what a part file is checked against (sae_train.part_shapes)."""
    shape = sae_train.SaeShape.of({**_flat(kind)})
    shapes = shape.part_shapes(3)
    params = saes.init(np.array([0, 1], np.uint32), 6, 24, kind, 0.05, np.zeros(6, np.float32))
    assert {f"param/{n}": (3, *np.shape(a)) for n, a in params.items()} == {
        k: v for k, v in shapes.items() if k.startswith("param/")}


def _flat(kind):
    from toysuper import config, sources

    return sources.filled(config.expand(config.resolve(dict(TINY, sae={**TINY["sae"], "kind": kind})))[0])


def _topk_l1(params, pre, hp, train, k):
    return saes.KIND["topk"].encode(params, pre, hp, train, k)


NEW = saes.Kind(_topk_l1, saes.KIND["relu_l1"].penalty, True, "topk latents with an L1 penalty too",
                knob=("k", "k"), colour="#17becf", uses_k=True)


def test_a_new_kind_is_one_entry(monkeypatch, tmp_path):
    monkeypatch.setitem(saes.KIND, "topk_l1", NEW)
    res = engine.run(dict(TINY, sweep={"sae.kind": ["topk", "topk_l1"]}, figures=["sae_dictionary"]),
                     out=tmp_path / "r", progress=False)
    assert res.saes["beats_trivial"].all()
    assert "topk_l1" in set(res.saes["kind"])
    assert (tmp_path / "r" / "figures" / "sae_dictionary.png").stat().st_size > 0
    assert "sae_dictionary" in figures.FIGURES
