"""Claims as data: validation, the verdict rule, the derived table, and a run that prints them."""

import math

import numpy as np
import pandas as pd
import pytest

import toysuper
from toysuper import claims, cli, measures, tables
from toysuper.errors import ConfigError

TINY = """
name = "tiny_claims"
[model]
kind = "relu"
n_features = 5
n_hidden = 2
[train]
steps = 100
batch = 128
log_every = 50
eval_batch = 512
[sweep]
data.density = [1.0, 0.1]

[[claims]]
id = "two-models"
claim = "The sweep holds two models."
paper = "none"
where = "nowhere"
measure = "test_models"
holds = [2, 2]
verdict = "beyond the paper"
"""


@pytest.fixture
def counting(monkeypatch):
    """A measurement for these tests alone: how many models a result holds, times `scale`."""
    def models(res, scale=1.0):
        return float(len(res.models)) * scale
    monkeypatch.setitem(measures.MEASURES, "test_models", measures.Measure(models, "models"))


def claim(**kw):
    base = {"id": "c", "claim": "x", "paper": "p", "where": "w", "measure": "test_models",
            "reproduced": [1.0, 2.0], "verdict": "reproduced"}
    return {**base, **kw}


@pytest.mark.parametrize("measured, ranges, expected", [
    (1.5, {"reproduced": [1, 2]}, "reproduced"),
    (2.0, {"reproduced": [1, 2]}, "reproduced"),       # closed ranges
    (2.5, {"reproduced": [1, 2], "partly": [0, 3]}, "partly"),
    (3.5, {"reproduced": [1, 2], "partly": [0, 3]}, "not reproduced"),
    (3.5, {"reproduced": [1, math.inf]}, "reproduced"),
    (0.5, {"holds": [0, 1]}, "beyond the paper"),
    (1.5, {"holds": [0, 1]}, "does not hold"),
    (math.nan, {"reproduced": [1, 2]}, "not measured"),
])
def test_verdict_follows_the_ranges(measured, ranges, expected):
    assert claims.verdict(ranges, measured) == expected


@pytest.mark.parametrize("bad, words", [
    ({"verdict": "sort of"}, ["verdict = 'sort of'", "reproduced, partly"]),
    ({"measure": "nope"}, ["measure = 'nope'", "not a registered measurement"]),
    ({"reproduced": [2, 1]}, ["reproduced = [2, 1]", "lo <= hi"]),
    ({"reproduced": [1, math.nan]}, ["reproduced", "lo <= hi"]),
    ({"colour": "red"}, ["unknown key(s) ['colour']"]),
    ({"id": "Has Space"}, ["id = 'Has Space'"]),
    ({"verdict": "beyond the paper"}, ["needs holds"]),
])
def test_bad_claims_are_refused_by_name(bad, words, counting):
    with pytest.raises(ConfigError) as e:
        claims.validate([claim(**bad)])
    for w in words:
        assert w in str(e.value)


def test_a_claim_without_its_required_key_is_refused(counting):
    c = claim()
    del c["where"]
    with pytest.raises(ConfigError, match="'where' is missing"):
        claims.validate([c])
    with pytest.raises(ConfigError, match="used twice"):
        claims.validate([claim(), claim()])


def test_table_measures_recomputes_and_flags_a_stated_verdict_that_fails(counting, tmp_path):
    res = toysuper.train_sweep({"model": {"n_features": 5, "n_hidden": 2},
                                "train": {"steps": 50, "batch": 64, "log_every": 25, "eval_batch": 256},
                                "sweep": {"data.density": [1.0, 0.1, 0.01]}})
    res.config["claims"] = [claim(id="three", reproduced=[3, 3]),
                            claim(id="scaled", args={"scale": 0.5}, reproduced=[1, 1.2], partly=[1, 2],
                                  verdict="partly"),
                            claim(id="wrong", reproduced=[10, 20])]
    df = tables.derive(res, ["claims"])["claims"]
    assert list(df["id"]) == ["three", "scaled", "wrong"]
    assert np.allclose(df["measured"], [3, 1.5, 3])
    assert list(df["verdict"]) == ["reproduced", "partly", "not reproduced"]
    assert list(claims.failing(df)["id"]) == ["wrong"]
    text = claims.summary(df)
    assert "2 reproduced" not in text and "1 reproduced, 1 partly, 1 not reproduced" in text
    assert "stated 'reproduced'" in text


def test_run_stores_claims_and_prints_their_verdicts(counting, tmp_path, capsys):
    path = tmp_path / "tiny_claims.toml"
    path.write_text(TINY)
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "claims: 1 beyond the paper" in out and "two-models: measured 2" in out
    stored = toysuper.load(tmp_path / "out")
    assert stored.derived["claims"]["agrees"].all()
    # the stored config keeps the claims, so a results folder moved away still knows them
    assert stored.config["claims"][0]["id"] == "two-models"


def test_an_unknown_measurement_is_refused_before_training(tmp_path, capsys):
    path = tmp_path / "tiny_claims.toml"
    path.write_text(TINY)  # without the fixture, test_models is not registered
    assert cli.main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "measure = 'test_models' is not a registered measurement" in capsys.readouterr().err
    assert not (tmp_path / "out" / "parts").exists()


def test_every_registered_measurement_has_a_doc():
    for name, m in measures.MEASURES.items():
        assert m.doc.strip(), f"measurement {name!r} has no doc"


def test_the_guard_fails_on_a_doctored_table(counting, tmp_path):
    """A results folder whose table is doctored after its claims were measured fails the guard:
    the stored claims.parquet is stale, and a stated verdict no longer holds."""
    path = tmp_path / "tiny_claims.toml"
    path.write_text(TINY)
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    assert claims.problems(toysuper.load(out)) == []
    models = pd.read_parquet(out / "models.parquet")
    pd.concat([models, models.tail(1)]).to_parquet(out / "models.parquet", index=False)
    wrong = claims.problems(toysuper.load(out))
    assert any("states 'beyond the paper' but measures 3" in w for w in wrong)
    assert any("stale" in w for w in wrong)
