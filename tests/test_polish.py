"""run.polish: local-minimum cells restarted from the neighbour's solution that beat them."""

import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest

import toysuper
from toysuper import optima, polish, tables
from toysuper.errors import ConfigError


def _sweep(polish: int = 0) -> dict:
    return {"name": "polished", "model": {"kind": "relu", "n_features": 5, "n_hidden": 2},
            "data": {"importance": {"decay": 0.9}},
            "train": {"steps": 200, "batch": 256, "log_every": 50, "eval_batch": 1024, "lr": 1e-2},
            "run": {"polish": polish},
            "sweep": {"data.density": [1.0, 0.8, 0.6]}}


def _files(path) -> dict:
    return {p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and p.name != "run.lock"}


def _stuck(out, model: int) -> float:
    """Put one stored model where no gradient step leaves (every output dead: W = 0, b = -1)
    and store the loss it has there; returns that loss."""
    with np.load(out / "weights.npz") as z:
        weights = dict(z)
    weights["W"][model], weights["b"][model] = 0.0, -1.0
    np.savez(out / "weights.npz", **weights)
    res = toysuper.load(out)
    loss = float(optima.table(res).set_index("model").loc[model, "eval_loss"])
    models = pd.read_parquet(out / "models.parquet")
    models.loc[models["model"] == model, "loss"] = loss
    models.to_parquet(out / "models.parquet")
    return loss


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A finished sweep of three cells, the middle one at a local minimum (its own weights dead,
    its neighbours' solutions far better at its settings)."""
    out = tmp_path_factory.mktemp("polish") / "polished"
    toysuper.run(_sweep(), out=out, progress=False)
    loss = _stuck(out, 1)
    cells = optima.neighbours(toysuper.load(out)).set_index("model")
    assert cells.loc[1, "local_minimum"] and not cells.loc[[0, 2], "local_minimum"].any()
    return out, loss


@pytest.fixture
def trapped(stored, tmp_path):
    """A fresh copy of `stored`."""
    out = tmp_path / "polished"
    shutil.copytree(stored[0], out)
    return out, stored[1]


def test_polish_off_changes_nothing_bit_for_bit(trapped):
    out, _ = trapped
    before = _files(out)
    toysuper.run(_sweep(polish=0), out=out, progress=False)
    assert _files(out) == before


def test_a_local_minimum_cell_is_fixed_and_the_record_says_so(trapped):
    out, stuck = trapped
    untouched = toysuper.load(out)
    res = toysuper.run(_sweep(polish=3), out=out, progress=False)
    cells = tables.get(res, "neighbours")
    assert not cells["local_minimum"].any()
    # the cell keeps the round's model under its own id, at a far lower loss, trained from a
    # neighbour's solution; the other cells' models are the same bit for bit
    assert res.models.loc[1, "loss"] < 0.5 * stuck
    assert not np.array_equal(res.params(1)["W"], untouched.params(1)["W"])
    for i in (0, 2):
        assert np.array_equal(res.params(i)["W"], untouched.params(i)["W"])
        assert res.models.loc[i, "loss"] == untouched.models.loc[i, "loss"]
    record = pd.read_parquet(out / "polish.parquet")
    assert record[["round", "model", "replaced", "beaten_after"]].values.tolist() == [
        [1, 1, True, False]]
    assert record.loc[0, "neighbour"] in (0, 2)
    assert record.loc[0, "loss_after"] < record.loc[0, "loss_before"] == stuck
    state = json.loads((out / "summary.json").read_text())["polish"]
    assert [(r["beaten_before"], r["replaced"], r["beaten_after"]) for r in state["rounds"]] == [
        (1, 1, 0)]
    assert state["stopped"] == "none beaten"
    # stored and derived tables agree: optima and neighbours were rewritten from the new weights
    o = pd.read_parquet(out / "optima.parquet").set_index("model")
    assert np.isclose(o.loc[1, "eval_loss"], res.models.loc[1, "loss"], rtol=1e-5)
    # a finished polish run again trains and rewrites nothing
    before = _files(out)
    toysuper.run(_sweep(polish=3), out=out, progress=False)
    assert _files(out) == before


def test_an_interrupted_polish_resumes(trapped, monkeypatch):
    out, stuck = trapped

    def cut_short(*args):
        raise KeyboardInterrupt  # after the record, before the results and summary.json

    monkeypatch.setattr(polish, "_write", cut_short)
    with pytest.raises(KeyboardInterrupt):
        toysuper.run(_sweep(polish=2), out=out, progress=False)
    assert toysuper.load(out).models.loc[1, "loss"] == stuck  # nothing stored of the round
    assert "polish" not in json.loads((out / "summary.json").read_text())
    monkeypatch.undo()
    res = toysuper.run(_sweep(polish=2), out=out, progress=False)
    record = pd.read_parquet(out / "polish.parquet")
    assert record["round"].tolist() == [1] and record["replaced"].all()
    assert res.models.loc[1, "loss"] < 0.5 * stuck


def test_polish_must_be_a_count():
    with pytest.raises(ConfigError, match="run.polish = -1"):
        toysuper.train_sweep(_sweep(polish=-1))
