"""Every registered family through the whole lifecycle, each on a known answer (as optax runs
every optimiser on one parabola): plan, run, interrupt, resume bit-identically, store, redraw,
report. tests/linreg_family.py is a family defined in one file with no edit elsewhere; a family
registered without a tiny experiment here fails `test_every_family_has_a_tiny_experiment`."""

from __future__ import annotations

import linreg_family  # noqa: F401  (registers the family "linreg", as a user's module would)
import numpy as np
import pytest

from toysuper import cli, config, engine, family, store

# A tiny experiment of each family, and what its stored results must show (the known answer);
# each sweeps a setting that shapes the program, so that it trains in two chunks.
TINY = {
    # n = 2 <= m, every feature dense: each fits in its own dimension, loss -> 0
    "toys": {"name": "tiny_toys", "model": {"n_features": 2, "n_hidden": 2},
             "data": {"density": 1.0},
             "train": {"steps": 600, "log_every": 100, "batch": 256, "lr": 0.01,
                       "eval_batch": 4096},
             "sweep": {"train.seed": [0, 1], "model.n_hidden": [2, 3]}},
    # any trained SAE beats the decoder bias alone (its trivial solution)
    "saes": {"name": "tiny_saes", "source": {"n_features": 12, "n_hidden": 6},
             "sae": {"kind": "topk", "width": 16, "k": 2},
             "train": {"steps": 200, "log_every": 50, "batch": 256, "eval_batch": 2048},
             "sweep": {"train.seed": [0, 1], "sae.width": [16, 24]}},
    # y = A x + 0.1 e: the fit's loss reaches noise^2 = 0.01, its W the map A
    "linreg": {"name": "tiny_linreg", "linreg": {"n_in": 4, "n_out": 3, "noise": 0.1},
               "train": {"steps": 400, "log_every": 50},
               "sweep": {"linreg.data_seed": [0, 1], "linreg.n_out": [3, 2]}},
}


def known_answer(name: str, res) -> None:
    if name == "toys":
        # (optima.parquet calls these trapped: its exact top-k baseline is 0 when n <= m)
        assert (res.models["loss"] < 1e-3).all(), res.models["loss"]
    elif name == "saes":
        assert res.saes["beats_trivial"].all()
    elif name == "linreg":
        assert np.allclose(res.fits["loss"], 0.01, rtol=0.15), res.fits["loss"]
        assert (res.fits["error"] < 0.05).all(), res.fits["error"]


def test_every_family_has_a_tiny_experiment():
    assert {f.name for f in family.every()} == set(TINY)


def test_an_experiment_names_its_family_by_its_section():
    assert [family.name_of(TINY[name]) for name in TINY] == list(TINY)


@pytest.fixture(params=sorted(TINY))
def tiny(request, tmp_path):
    name = request.param
    cfg = config.resolve(TINY[name])
    return name, cfg, tmp_path


def test_every_family_plans_runs_resumes_stores_redraws_and_reports(tiny, monkeypatch, capsys):
    name, cfg, tmp_path = tiny
    fam = family.get(name)
    file = tmp_path / f"{cfg['name']}.toml"
    file.write_text(config.to_toml(cfg))

    # --plan: members, chunks (one per shape), no training
    assert cli.main(["run", str(file), "--plan", "--no-probe", "--out", str(tmp_path / "a")]) == 0
    assert f"4 {fam.noun} in 2 chunks" in capsys.readouterr().out

    # interrupted after its first chunk, then resumed: the first chunk is not trained again
    calls = []

    def interrupted(shape, hp, on_segment, start):
        calls.append(len(hp[0]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fam.train(shape, hp, on_segment, start)
    monkeypatch.setitem(family.REGISTRY, name, fam._replace(train=interrupted))
    assert cli.main(["run", str(file), "--out", str(tmp_path / "a"), "--quiet"]) == 130
    assert len(list((tmp_path / "a" / "parts").glob("*.npz"))) == 1
    counted = []
    monkeypatch.setitem(family.REGISTRY, name, fam._replace(
        train=lambda *a: counted.append(1) or fam.train(*a)))
    assert cli.main(["run", str(file), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert len(counted) == 1  # the second chunk only
    monkeypatch.setitem(family.REGISTRY, name, fam)

    # the same sweep run whole: bit-identical, whatever shares a chunk or the run's history
    whole = engine.run(cfg, out=tmp_path / "b", progress=False)
    resumed = store.load(tmp_path / "a")
    assert type(resumed) is fam.results
    for key in whole.weights:
        np.testing.assert_array_equal(whole.weights[key], resumed.weights[key], err_msg=key)
    main = fam.tables[0]
    assert getattr(whole, main).equals(getattr(resumed, main))
    known_answer(name, resumed)

    # redrawn and reported from what was stored
    capsys.readouterr()
    assert cli.main(["plot", str(tmp_path / "a")]) == 0
    site = tmp_path / "site"
    assert cli.main(["report", str(tmp_path), "--out", str(site)]) == 0
    page = (site / "a" / "index.html").read_text()
    assert f"{fam.tables[0]}.parquet" in page or fam.tables[0] in page
