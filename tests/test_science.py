"""Trained models against known answers (docs/superposition.md), plus golden values on a tiny config."""

import numpy as np
import pytest

import toysuper

N, M = 20, 5


@pytest.fixture(scope="module")
def section2(tmp_path_factory):
    """Linear and ReLU-output models, n=20, m=5, I_i = 0.7^i, dense and sparse (short training)."""
    cfg = {"name": "section2",
           "model": {"n_features": N, "n_hidden": M},
           "data": {"importance": {"decay": 0.7}},
           "train": {"steps": 3000, "lr": 1e-2, "weight_decay": 0.0, "eval_batch": 8192},
           "sweep": {"model.kind": ["linear", "relu"], "data.density": [1.0, 0.01]}}
    return toysuper.run(cfg, out=tmp_path_factory.mktemp("s2"), progress=False)


def model_id(res, kind, density):
    return res.models.query(f"kind == '{kind}' and density == {density}")["model"].item()


@pytest.mark.parametrize("density", [1.0, 0.01])
def test_linear_model_learns_exactly_the_top_m_features(section2, density):
    W = section2.W(model_id(section2, "linear", density))
    G = W.T @ W
    np.testing.assert_allclose(G[:M, :M], np.eye(M), atol=0.05)
    np.testing.assert_allclose(G[M:, :], 0, atol=0.05)
    np.testing.assert_allclose(G[:, M:], 0, atol=0.05)


def test_dense_relu_model_represents_only_the_top_features(section2):
    f = section2.features.query(f"model == {model_id(section2, 'relu', 1.0)}")
    norm = f["norm"].to_numpy()
    assert np.all(norm[:M] > 0.9) and np.all(norm[M:] < 0.1), norm
    assert np.all(f["superposition"].to_numpy()[:M] < 0.05)


def test_sparse_relu_model_represents_more_features_than_dimensions(section2):
    f = section2.features.query(f"model == {model_id(section2, 'relu', 0.01)}")
    assert (f["norm"] > 0.5).sum() > M
    # features beyond m can only fit in superposition
    assert (f.loc[f["norm"] > 0.5, "superposition"] > 0.1).sum() >= 2


@pytest.mark.parametrize("sampler", ["fast", "reference"])
def test_golden_losses_on_a_tiny_config(tiny, tmp_path, sampler):
    """Catches silent drift in the sampler, model, optimiser or key derivation.

    The reference sampler's values were recorded before the fast sampler, the features-first
    layout and the grouped, sharded programs existed: they still reproduce to 1e-4.
    """
    tiny["train"]["sampler"] = sampler
    res = toysuper.run(tiny, out=tmp_path / "g", progress=False)
    loss, norms = GOLDEN[sampler]
    np.testing.assert_allclose(res.models["loss"], loss, rtol=1e-4)
    np.testing.assert_allclose(res.features.query("model == 2")["norm"], norms, rtol=1e-4)


# Recorded with jax 0.10.2 on CPU from `tiny` in conftest.py (relu, n=5, m=2, 200 steps):
# (final losses of the three models, feature norms of model 2). The fast sampler's values were
# re-recorded when its counters became layout-independent (entry (row, feature) -> row * n +
# feature in both layouts; this n=5 model trains on columns, whose counters were feature * B + row).
GOLDEN = {
    "fast": ([0.2213770, 0.1168735, 0.0314419],
             [1.0512664, 0.8242597, 0.4721596, 0.9738133, 0.9153415]),
    "reference": ([0.2232471, 0.1229016, 0.0289264],
                  [1.054660, 0.7509787, 0.9331323, 0.9985313, 0.9975310]),
}
