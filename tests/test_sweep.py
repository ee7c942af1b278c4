"""Sweeps: a model's result does not depend on its company; one compile per shape; resume."""

import numpy as np
import pytest

import toysuper
from toysuper import config, keys, plan, store, train


def test_model_identical_alone_and_inside_a_bigger_sweep(chunky, tmp_path):
    # model (density 0.3, seed 1) trained in a sweep of 12 (a chunk of 16, two groups of 8)
    # and on its own (a chunk of 8)
    big = dict(chunky, sweep={"data.density": [1.0, 0.3, 0.1], "train.seed": {"range": 4}})
    res_big = toysuper.run(big, out=tmp_path / "big", progress=False)
    assert [c.width for c in plan.chunks(sweep_settings(big), 4096)] == [16]
    alone = dict(chunky, sweep={})
    res_alone = toysuper.run(alone, ["data.density=0.3", "train.seed=1"], out=tmp_path / "alone",
                             progress=False)
    i = res_big.models.query("density == 0.3 and seed == 1")["model"].item()
    for name in ("W", "b"):
        np.testing.assert_array_equal(res_big.params(i)[name], res_alone.params(0)[name])
    assert res_big.models.loc[i, "loss"] == res_alone.models.loc[0, "loss"]


def test_chunk_size_does_not_change_results(chunky, tmp_path):
    cfg = dict(chunky, sweep={"data.density": {"logspace": [1, 0.05], "num": 10}})
    one = toysuper.run(cfg, out=tmp_path / "one", progress=False)
    many = toysuper.run(cfg, ["run.chunk_size=8"], out=tmp_path / "many", progress=False)
    assert len(plan.chunks(sweep_settings(cfg), 8)) == 2
    np.testing.assert_array_equal(one.weights["W"], many.weights["W"])
    np.testing.assert_array_equal(one.models["loss"], many.models["loss"])


def sweep_settings(cfg):
    return config.expand(config.resolve(cfg))


def test_one_compilation_per_sweep_shape(chunky, tmp_path):
    # two kinds -> two shapes; three chunks of the relu shape still compile once
    cfg = dict(chunky, sweep={"model.kind": ["linear", "relu"], "train.seed": {"range": 20}},
               run={"chunk_size": 8})
    cfg["train"] = dict(chunky["train"], steps=150)  # a shape no other test compiles
    train.TRACES.clear()
    toysuper.run(cfg, out=tmp_path / "r", progress=False)
    shapes = {s for s, _ in train.TRACES}
    assert len(shapes) == 2 and len(plan.chunks(sweep_settings(cfg), 8)) == 6
    assert all(count == 1 for count in train.TRACES.values()), train.TRACES


def test_interrupted_sweep_keeps_finished_chunks_and_resumes(chunky, tmp_path, monkeypatch):
    cfg = dict(chunky, sweep={"train.seed": {"range": 20}}, run={"chunk_size": 8})
    out = tmp_path / "r"
    real_train, calls = train.train, []

    def failing_after_one(*args, **kw):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real_train(*args, **kw)

    monkeypatch.setattr(train, "train", failing_after_one)
    with pytest.raises(KeyboardInterrupt):
        toysuper.run(cfg, out=out, progress=False)
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["chunk-00000.npz"]
    with pytest.raises(toysuper.ConfigError, match="incomplete"):
        store.load(out)

    trained = []
    monkeypatch.setattr(train, "train", lambda *a, **k: trained.append(1) or real_train(*a, **k))
    resumed = toysuper.run(cfg, out=out, progress=False)
    assert len(trained) == 2  # only the two unfinished chunks
    monkeypatch.setattr(train, "train", real_train)
    fresh = toysuper.run(cfg, out=tmp_path / "fresh", progress=False)
    np.testing.assert_array_equal(resumed.weights["W"], fresh.weights["W"])
    np.testing.assert_array_equal(resumed.models["loss"], fresh.models["loss"])


def test_other_configuration_in_results_dir_is_refused_unless_forced(tiny, tmp_path):
    out = tmp_path / "r"
    toysuper.run(tiny, out=out, progress=False)
    with pytest.raises(toysuper.ConfigError, match="different configuration.*train.*--force"):
        toysuper.run(tiny, ["train.lr=0.01"], out=out, progress=False)
    res = toysuper.run(tiny, ["train.lr=0.01"], out=out, force=True, progress=False)
    assert (res.models["lr"] == 0.01).all()


def test_diverging_model_is_named(tiny, tmp_path):
    # run.on_diverge = "stop": the behaviour before "keep" (tests/test_failures.py) was the default
    with pytest.raises(toysuper.TrainingError, match=r"model 0 diverged.*lr=1e\+30"):
        toysuper.run(dict(tiny, sweep={}), ["train.lr=1e30", "run.on_diverge=stop"],
                     out=tmp_path / "r", progress=False)


def test_seeds_of_one_cell_share_their_evaluation_sample():
    """Lowest-loss picks compare models on one sample; training streams stay per seed."""
    base = {"model.kind": "relu", "model.n_features": 2, "data.density": 0.1}
    cells = [dict(base, **{"train.seed": 0}), dict(base, **{"train.seed": 1}),
             dict(base, **{"train.seed": 0, "data.density": 0.2})]
    salts = [keys.salt(s) for s in cells]
    seeds = keys.model_keys([s["train.seed"] for s in cells], salts)
    evals = keys.eval_keys(salts)
    assert (evals[0] == evals[1]).all() and not (evals[0] == evals[2]).all()
    assert not (seeds[0] == seeds[1]).any() and not (evals[0] == seeds[0]).all()


def test_feature_sets_reach_each_model_s_sampler_and_leave_other_keys_alone(tiny):
    cfg = dict(tiny, data={"correlated": [[1, 2]], "anticorrelated": [[3, 4]]},
               sweep={"data.density": [0.3, 0.1]})
    settings = config.expand(config.resolve(cfg))
    hp = train.inputs([settings[1]], 8)  # density 0.1
    np.testing.assert_array_equal(hp.group[0], [0, 1, 1, 3, 3])
    np.testing.assert_allclose(hp.low[0], [0, 0, 0, 0, 0.1])
    # a model without sets keeps the key it had before sets existed
    plain = config.expand(config.resolve(tiny))
    assert keys.salt(plain[0]) != keys.salt(settings[0])
    assert keys.salt(plain[0]) == keys.salt(
        {k: v for k, v in plain[0].items() if k not in ("data.correlated", "data.anticorrelated")})


def test_the_batch_layout_a_speed_constant_does_not_change_a_model(tiny, monkeypatch):
    """Rows or columns (train.COLUMNS_BELOW) change the arithmetic's order, not the numbers drawn."""
    cfg = dict(tiny, train=dict(tiny["train"], steps=100), sweep={"data.density": [1.0, 0.1]})
    results = []
    for below in (0, 10**9):  # every model on rows, then every model on columns
        monkeypatch.setattr(train, "COLUMNS_BELOW", below)
        train.programs.cache_clear()  # programs are cached by Shape, which the layout is not part of
        results.append(toysuper.train_sweep(cfg))
    train.programs.cache_clear()
    rows, cols = results
    np.testing.assert_allclose(rows.weights["W"], cols.weights["W"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rows.models["loss"], cols.models["loss"], rtol=1e-4)


def test_train_sweep_trains_in_memory_and_writes_nothing(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = toysuper.train_sweep(dict(tiny, figures=["feature_plane"]))
    assert res.path is None and list(tmp_path.iterdir()) == []
    assert len(res.models) == 3 and res.W(1).shape == (2, 5)
    from toysuper import tables
    assert set(tables.get(res, "structures")["model"]) == {0, 1, 2}
