"""Empirical phases: the classification rule, the per-cell table, and a small trained grid."""

import numpy as np
import pandas as pd
import pytest

import toysuper
from toysuper import config, needs, phase
from toysuper.config import ConfigError
from toysuper.figures import phase_change
from toysuper.results import Results


def test_classify_by_norm_then_superposition():
    got = phase.classify([0.1, 0.49, 0.5, 1.0, 1.0, 0.9], [1.0, 0.0, 0.0, 0.49, 0.5, 1.2])
    assert list(got) == ["not represented", "not represented", "dedicated", "dedicated",
                         "superposition", "superposition"]


def _fake_results(tmp_path, cells, n=2):
    """Results with hand-set extra-feature norms/superpositions: cells = [(p, r, [(loss, norm, sup)])]."""
    models, features = [], []
    for p, r, seeds in cells:
        for seed, (loss, norm, sup) in enumerate(seeds):
            i = len(models)
            models.append({"model": i, "kind": "relu", "n_features": n, "n_hidden": n - 1,
                           "density": p, "importance[-1]": r, "seed": seed, "loss": loss})
            features.append(pd.DataFrame({
                "model": i, "feature": np.arange(n), "density": p,
                "importance": [1.0] * (n - 1) + [r], "norm": [1.0] * (n - 1) + [norm],
                "superposition": [0.0] * (n - 1) + [sup]}))
    cfg = {"name": "fake", "model": {"kind": "relu", "n_features": n, "n_hidden": n - 1},
           "sweep": {"data.density": [], "data.importance[-1]": [], "train.seed": []}}
    return Results(tmp_path, cfg, pd.DataFrame(models), pd.concat(features), pd.DataFrame(),
                         {})


def test_table_keeps_the_lowest_loss_seed_and_compares_with_theory(tmp_path):
    res = _fake_results(tmp_path, [
        # deep in superposition; the best seed found the pair, one of three seeds did
        (0.02, 1.0, [(0.05, 0.0, 1.0), (0.0002, 1.0, 1.0), (0.04, 1.0, 0.0)]),
        # dense, r < 1: theory drops the extra feature; the best seed dedicates it (disagrees)
        (1.0, 0.5, [(0.2, 0.0, 1.0), (0.1, 1.0, 0.0)]),
    ])
    t = phase.table(res)
    assert list(t["p"]) == [1.0, 0.02]  # dense row first, as the figure reads top down
    dense, sparse = t.iloc[0], t.iloc[1]
    assert sparse["model"] == 1 and sparse["seeds"] == 3 and sparse["phase"] == "superposition"
    assert sparse["seed_share"] == pytest.approx(1 / 3) and sparse["agree"]
    assert sparse["theory_loss"] == pytest.approx(2 * 0.02**2 / 6)
    assert dense["model"] == 4 and dense["phase"] == "dedicated"
    assert dense["theory_phase"] == "not represented" and not dense["agree"]
    assert dense["theory_solution"] == "extra dropped"
    assert phase.agreement(t) == 0.5
    # the paper's rule: the worst seed dropped, the rest averaged
    assert sparse["paper_norm"] == 1.0 and sparse["paper_superposition"] == 0.5
    assert sparse["paper_phase"] == "superposition" and dense["paper_phase"] == "dedicated"
    assert phase.agreement(t, "paper") == 0.5
    assert "density" not in t and "importance[-1]" not in t  # they only repeat p and r


@pytest.mark.parametrize("raw, words", [
    ({"model": {"n_features": 4, "n_hidden": 3}}, ["n_features in [2, 3]", "[4]"]),
    ({"model": {"n_features": 3, "n_hidden": 1}}, ["n_hidden = model.n_features - 1", "(3, 1)"]),
    ({"model": {"kind": "linear", "n_features": 2, "n_hidden": 1}}, ["model.kind", "linear"]),
    ({"model": {"n_features": 2, "n_hidden": 1}, "data": {"density": [0.1, 0.2]}}, ["one density"]),
])
def test_table_refuses_sweeps_without_a_theory_before_training(raw, words):
    cfg = config.resolve(raw)
    with pytest.raises(ConfigError) as e:
        needs.check(phase.NEEDS, config.expand(cfg), "table 'phase'")
    assert all(w in str(e.value) for w in words), str(e.value)


def test_phase_colours_follow_the_key():
    np.testing.assert_allclose(phase_change.phase_colour(0.0, 0.7), [1, 1, 1])
    np.testing.assert_allclose(phase_change.phase_colour(1.0, 0.0), phase_change.BLUE)
    np.testing.assert_allclose(phase_change.phase_colour(1.3, 2.0), phase_change.RED)


def test_small_trained_grid_classifies_as_the_theory_says(tmp_path):
    # cells well inside each phase: dropped (dense, r < 1), dedicated (dense, r > 1), superposition
    cfg = {"name": "phase_small", "figures": ["phase_diagram"], "tables": ["phase"],
           "model": {"kind": "relu", "n_features": 2, "n_hidden": 1},
           "train": {"steps": 1000, "batch": 256, "lr": 1e-2, "log_every": 500, "eval_batch": 8192},
           "sweep": {"data.density": [1.0, 0.03], "data.importance[-1]": [0.2, 5.0],
                     "train.seed": {"range": 8}}}
    res = toysuper.run(cfg, out=tmp_path / "ph", progress=False)
    t = pd.read_parquet(tmp_path / "ph" / "phase.parquet")
    pd.testing.assert_frame_equal(t, res.derived["phase"])
    assert (t["seeds"] == 8).all() and len(t) == 4
    assert list(t["theory_phase"]) == ["not represented", "dedicated", "superposition", "superposition"]
    assert t["agree"].all(), t
    assert (tmp_path / "ph" / "figures" / "phase_diagram.png").exists()
