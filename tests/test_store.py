"""The results directory: tables with the promised columns, consistent with the weights."""

import numpy as np
import pytest

import toysuper
from toysuper import metrics, structures


def test_tables_columns_and_consistency(tiny, tmp_path):
    res = toysuper.run(tiny, out=tmp_path / "r", progress=False)
    for col in ("model", "kind", "n_features", "n_hidden", "seed", "density", "loss", "importance"):
        assert col in res.models.columns
    assert list(res.models["model"]) == [0, 1, 2]
    assert set(res.features.columns) >= {"model", "feature", "importance", "density", "norm",
                                         "superposition", "dimensionality", "bias", "structure"}
    assert len(res.features) == 3 * 5
    f = res.features[res.features["model"] == 2]
    W = res.W(2)
    assert W.shape == (2, 5)
    np.testing.assert_allclose(f["norm"], metrics.norms(W), rtol=1e-6)
    np.testing.assert_allclose(f["importance"], 0.9 ** np.arange(5))
    np.testing.assert_allclose(f["density"], 0.1)
    np.testing.assert_allclose(f["bias"], res.params(2)["b"])
    assert list(f["structure"]) == list(structures.label(W))
    # history: one row per model and logged interval, ending at the last step
    assert res.history.groupby("model")["step"].max().tolist() == [200] * 3
    again = toysuper.load(tmp_path / "r")
    assert again.models.equals(res.models)
    assert (tmp_path / "r" / "config.toml").read_text().count("version") == 1


def test_mixed_shapes_are_stored_padded_and_unpadded_on_read(tiny, tmp_path):
    cfg = dict(tiny, sweep={"model.n_hidden": [1, 2, 3]})
    res = toysuper.run(cfg, out=tmp_path / "r", progress=False)
    assert res.weights["W"].shape == (3, 3, 5)
    assert [res.W(i).shape for i in range(3)] == [(1, 5), (2, 5), (3, 5)]
    assert np.all(res.weights["W"][0, 1:] == 0)


def test_kinds_with_different_parameters_share_one_results_directory(tiny, tmp_path):
    cfg = dict(tiny, data={"law": "signed"}, sweep={"model.kind": ["relu", "abs"]})
    res = toysuper.run(cfg, out=tmp_path / "r", progress=False)
    assert set(res.params(0)) == {"W", "b"} and set(res.params(1)) == {"W1", "W2", "b"}
    np.testing.assert_array_equal(res.W(1), res.params(1)["W1"])  # the abs model's embedding
    f = res.features[res.features["model"] == 1]
    np.testing.assert_allclose(f["norm"], metrics.norms(res.params(1)["W1"]), rtol=1e-6)
    assert res.params(1)["W2"].shape == (5, 2)


def test_snapshots_come_in_step_order_and_end_at_the_final_weights(tiny, tmp_path):
    cfg = dict(tiny, train=dict(tiny["train"], snapshots=3))
    res = toysuper.run(cfg, out=tmp_path / "r", progress=False)
    for model in range(3):
        steps, W = res.snapshot_W(model)
        assert steps.tolist() == [50, 100, 200]
        assert W.shape == (3, 2, 5)
        np.testing.assert_array_equal(W[-1], res.W(model))
        assert not np.array_equal(W[0], W[-1])  # the weights moved between snapshots
    # a resumed run reads them back from its finished chunks
    again = toysuper.run(cfg, out=tmp_path / "r", progress=False)
    np.testing.assert_array_equal(again.snapshots["W"], res.snapshots["W"])


def test_asking_for_snapshots_of_a_run_without_them_is_a_clear_error(tiny, tmp_path):
    res = toysuper.run(tiny, out=tmp_path / "r", progress=False)
    with pytest.raises(toysuper.ConfigError, match="train.snapshots"):
        res.snapshot_W(0)
