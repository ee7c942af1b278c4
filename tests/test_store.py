"""The results directory: tables with the promised columns, consistent with the weights."""

import numpy as np
import pytest

import toysuper
from toysuper import metrics, structures, tables


def test_tables_columns_and_consistency(tiny, tmp_path):
    res = toysuper.run(tiny, out=tmp_path / "r", progress=False)
    for col in ("model", "kind", "n_features", "n_hidden", "seed", "density", "loss", "importance"):
        assert col in res.models.columns
    assert list(res.models["model"]) == [0, 1, 2]
    assert set(res.features.columns) >= {"model", "feature", "importance", "density", "norm",
                                         "superposition", "dimensionality", "bias"}
    assert "structure" not in res.features  # a derived table: relabelled whenever the rule changes
    assert len(res.features) == 3 * 5
    f = res.features[res.features["model"] == 2]
    W = res.W(2)
    assert W.shape == (2, 5)
    np.testing.assert_allclose(f["norm"], metrics.norms(W), rtol=1e-6)
    np.testing.assert_allclose(f["importance"], 0.9 ** np.arange(5))
    np.testing.assert_allclose(f["density"], 0.1)
    np.testing.assert_allclose(f["bias"], res.params(2)["b"])
    labels = tables.get(res, "structures")
    assert list(labels.loc[labels["model"] == 2, "structure"]) == list(structures.label(W))
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


def test_results_of_schema_1_are_upgraded_on_load_and_by_toysuper_upgrade(tiny, tmp_path):
    """An old directory: no schema, no train.sampler (it was the reference sampler), structure
    labels frozen into features.parquet. It reads as current results, and `upgrade` rewrites it."""
    import tomllib

    import pandas as pd

    from toysuper import cli, store, upgrade

    out = tmp_path / "r"
    toysuper.run(tiny, ["train.sampler=reference"], out=out, progress=False)
    text = (out / "config.toml").read_text()
    old = "\n".join(line for line in text.splitlines()
                    if not line.startswith(("schema", "sampler"))) + "\n"
    (out / "config.toml").write_text(old)
    models = pd.read_parquet(out / "models.parquet").drop(columns="sampler")
    models.to_parquet(out / "models.parquet")
    feats = pd.read_parquet(out / "features.parquet").assign(structure="stale")
    feats.to_parquet(out / "features.parquet")

    res = store.load(out)
    assert res.config["train"]["sampler"] == "reference" and res.config["schema"] == upgrade.SCHEMA
    assert (res.models["sampler"] == "reference").all() and "structure" not in res.features
    assert store.differences(out, res.config) == []  # the same run, so it resumes, not refused
    assert cli.main(["upgrade", str(out)]) == 0
    assert tomllib.loads((out / "config.toml").read_text())["schema"] == upgrade.SCHEMA
    assert "structure" not in pd.read_parquet(out / "features.parquet")


def test_results_of_schema_2_gain_the_start_settings_and_still_resume(tiny, tmp_path):
    """Schema 2 predates train.init_from and train.init_noise: such results started at random."""
    import pandas as pd

    from toysuper import engine, store, upgrade

    out = tmp_path / "r"
    toysuper.run(tiny, out=out, progress=False)
    text = (out / "config.toml").read_text().replace(f"schema = {upgrade.SCHEMA}", "schema = 2")
    (out / "config.toml").write_text("\n".join(
        line for line in text.splitlines() if not line.startswith("init_")) + "\n")
    pd.read_parquet(out / "models.parquet").drop(columns=["init_from", "init_noise"]).to_parquet(
        out / "models.parquet")
    res = store.load(out)
    assert res.config["train"]["init_from"] == "random" and (res.models["init_from"] == "random").all()
    assert store.differences(out, engine.resolve(tiny)) == []


def test_results_from_a_newer_schema_are_refused_in_one_line(tiny, tmp_path):
    from toysuper import store, upgrade

    out = tmp_path / "r"
    toysuper.run(tiny, out=out, progress=False)
    text = (out / "config.toml").read_text().replace(f"schema = {upgrade.SCHEMA}",
                                                     f"schema = {upgrade.SCHEMA + 1}")
    (out / "config.toml").write_text(text)
    with pytest.raises(toysuper.ConfigError, match="newer toysuper"):
        store.load(out)


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_finished_run_of_an_older_schema_is_read_not_retrained_or_rewritten(tmp_path, capsys):
    """The README's first command on a fresh clone: results/intro is committed (schema 4, no
    parts/); running its experiment once retrained it and rewrote 9 tracked files."""
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "intro"
    shutil.copytree(root / "results" / "intro", out, ignore=shutil.ignore_patterns("parts"))
    before = _files(out)
    res = toysuper.run(root / "experiments" / "intro.toml", out=out, progress=False)
    assert _files(out) == before
    assert "holds this experiment's finished results: nothing is trained" in capsys.readouterr().err
    assert res.models.equals(toysuper.load(out).models) and len(res.models) == 18


def test_summary_seconds_sum_every_run_into_the_directory(tiny, tmp_path):
    """A run that had nothing left to train once overwrote the runtime with its own 0.2 s; an
    interrupted run's training was lost from it."""
    import json

    out, cfg = tmp_path / "r", dict(tiny, sweep={"model.n_hidden": [1, 2, 3]})  # 3 shapes: 3 chunks

    def part_seconds(i):
        with np.load(out / "parts" / f"chunk-{i:05d}.npz") as z:
            return float(z["seconds"])

    toysuper.run(cfg, out=out, progress=False)
    first = json.loads((out / "summary.json").read_text())
    assert first["seconds"] == pytest.approx(sum(part_seconds(i) for i in range(3)), abs=0.01)
    assert 0 < first["seconds"] <= first["last_run_seconds"]
    kept = part_seconds(0) + part_seconds(1)
    (out / "parts" / "chunk-00002.npz").unlink()  # as if the first run had stopped before it
    (out / "summary.json").unlink()
    toysuper.run(cfg, out=out, progress=False)
    again = json.loads((out / "summary.json").read_text())
    assert again["trained_chunks"] == 1
    assert again["seconds"] == pytest.approx(kept + part_seconds(2), abs=0.01)
    toysuper.run(cfg, out=out, progress=False, force=True)  # nothing left to train
    third = json.loads((out / "summary.json").read_text())
    assert third["trained_chunks"] == 0 and third["seconds"] == again["seconds"]
