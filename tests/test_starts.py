"""Warm starts (train.init_from): from the construction, from a results directory, and the errors."""

import numpy as np
import pytest

import toysuper
from toysuper import cli, optima, tables
from toysuper import starts as starts_module
from toysuper.errors import ConfigError

# lr so small that 100 steps leave a warm start where it began: the trained model's loss is
# then the loss of its start, a known answer.
FROZEN = {"steps": 100, "batch": 256, "log_every": 50, "eval_batch": 8192, "lr": 1e-9,
          "init_noise": 0.0}
ABS = {"name": "abs", "model": {"kind": "abs", "n_features": 8, "n_hidden": 4},
       "data": {"law": "signed", "importance": {"decay": 0.8}},
       "train": dict(FROZEN, init_from="construction"), "sweep": {"data.density": [1.0, 0.1]}}


def test_a_frozen_construction_start_scores_the_construction():
    res = toysuper.train_sweep(ABS)
    o = tables.get(res, "optima")
    assert np.allclose(o["eval_loss"], o["exact_loss"], rtol=1e-5)
    W1 = res.params(0)["W1"]
    assert sorted(np.abs(W1).sum(axis=0).round(6)) == [0] * 6 + [2, 2]  # two features, two neurons each


def test_noise_differs_by_seed_and_random_models_ignore_their_chunk_mates():
    cfg = dict(ABS, train=dict(ABS["train"], init_noise=0.05),
               sweep={"train.seed": [0, 1], "train.init_from": ["construction", "random"]})
    res = toysuper.train_sweep(cfg)
    m = res.models.set_index(["seed", "init_from"])["model"]
    a, b = res.params(m[0, "construction"])["W1"], res.params(m[1, "construction"])["W1"]
    assert not np.allclose(a, b) and np.abs(a - b).max() < 0.5
    alone = toysuper.train_sweep(dict(cfg, sweep={"train.seed": [0, 1]},
                                      train=dict(cfg["train"], init_from="random")))
    for seed in (0, 1):
        assert np.array_equal(res.params(m[seed, "random"])["W1"], alone.params(seed)["W1"])


def test_restarts_share_a_cell_that_keeps_the_lowest_loss():
    cfg = dict(ABS, train=dict(ABS["train"], lr=3e-3, steps=200),
               sweep={"data.density": [0.1], "train.init_from": ["random", "construction"]})
    res = toysuper.train_sweep(cfg)
    assert optima.kept_models(res) == [int(res.models["loss"].idxmin())]
    assert len(tables.get(res, "neighbours")) == 1


def test_a_directory_start_takes_the_best_scoring_nearby_solution(tmp_path):
    source = {"name": "source", "model": {"kind": "relu", "n_features": 5, "n_hidden": 2},
              "data": {"importance": 1.0},
              "train": {"steps": 300, "batch": 256, "log_every": 50, "eval_batch": 4096, "lr": 1e-2},
              "sweep": {"data.density": [1.0, 0.05], "train.seed": [0, 1]}}
    src = toysuper.run(source, out=tmp_path / "src", progress=False)
    kept = dict(zip(src.models.loc[optima.kept_models(src), "density"], optima.kept_models(src)))
    warm = dict(source, name="warm", train=dict(FROZEN, init_from=str(tmp_path / "src")),
                sweep={"data.density": [1.0, 0.05, 0.06]})

    def starts():
        res = toysuper.train_sweep(warm)
        return {p: res.params(i)["W"] for p, i in res.models.set_index("density")["model"].items()}

    W = starts()
    for p in (1.0, 0.05):  # a task the source has: its own solution
        assert np.allclose(W[p], src.params(kept[p])["W"], atol=1e-6)
    # no 0.06 task in the source: the solution that scores lower there, the sparse one
    assert np.allclose(W[0.06], src.params(kept[0.05])["W"], atol=1e-6)
    # a cell whose own solution is worse than its neighbour's (here: erased) restarts from the
    # neighbour's, as a local minimum is retrained
    with np.load(tmp_path / "src" / "weights.npz") as z:
        weights = dict(z)
    weights["W"][kept[0.05]], weights["b"][kept[0.05]] = 0.0, 1.0  # outputs stuck at 1
    np.savez(tmp_path / "src" / "weights.npz", **weights)
    starts_module._kept.cache_clear()  # the file changed under the cache
    W = starts()
    assert np.allclose(W[0.05], src.params(kept[1.0])["W"], atol=1e-6)


@pytest.mark.parametrize("value, words", [
    ("no/such/dir", "neither 'random', 'construction' nor a results directory"),
    (3, "must be 'random', 'construction' or a results directory")])
def test_bad_sources_are_refused_in_the_users_words(value, words):
    with pytest.raises(ConfigError, match=words):
        toysuper.train_sweep(dict(ABS, train=dict(ABS["train"], init_from=value)))


def test_a_source_without_models_of_this_shape_and_the_own_directory_are_refused(tmp_path, capsys):
    toysuper.run(dict(ABS, name="src", sweep={}), out=tmp_path / "src", progress=False)
    other = dict(ABS, model={"kind": "abs", "n_features": 8, "n_hidden": 6},
                 train=dict(ABS["train"], init_from=str(tmp_path / "src")))
    with pytest.raises(ConfigError, match="holds no kept model with model.kind = 'abs', "
                                          "model.n_features = 8, model.n_hidden = 6"):
        toysuper.train_sweep(other)
    with pytest.raises(ConfigError, match="this run's own results directory"):
        toysuper.run(dict(ABS, name="src", sweep={}, train=dict(
            ABS["train"], init_from=str(tmp_path / "src"))), out=tmp_path / "src", progress=False)
    assert cli.main(["run", "intro", "--set", f"train.init_from={tmp_path / 'src'}", "--plan"]) == 2
    assert "holds no kept model with model.kind = 'relu'" in capsys.readouterr().err
