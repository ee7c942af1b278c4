"""The claim measurements of sections 1-5 (toysuper/measures/toys.py) on constructed models with
known answers: a regular pentagon has D_i = 2/5 and 144 degrees between a feature's neighbours,
the top-m identity has no error against the linear solution, two digons have D* = 1/2, ..."""

import json

import numpy as np
import pandas as pd
import pytest

from toysuper import config
from toysuper.errors import ConfigError
from toysuper.measures import MEASURES
from toysuper.results import Results


def polygon(k: int, n: int | None = None, start: float = 0.0) -> np.ndarray:
    """A 2 x n W whose first k columns form a regular k-gon of unit norm (the rest 0)."""
    a = np.radians(start + 360.0 * np.arange(k) / k)
    W = np.zeros((2, n or k))
    W[:, :k] = np.stack([np.cos(a), np.sin(a)])
    return W


def top2(n: int = 5) -> np.ndarray:
    W = np.zeros((2, n))
    W[0, 0] = W[1, 1] = 1.0
    return W


def digons(n: int = 5, skip: int = 4) -> np.ndarray:
    """Two antipodal pairs on orthogonal axes; feature `skip` at zero."""
    W = np.zeros((2, n))
    cols = [i for i in range(n) if i != skip][:4]
    for c, v in zip(cols, ([1, 0], [-1, 0], [0, 1], [0, -1])):
        W[:, c] = v
    return W


def results(Ws, densities, kind="relu", correlated=(), importance=None, snapshots=None,
            history=None, seeds=1) -> Results:
    """A results object holding the given weights, one model per (density, seed), first seed kept."""
    Ws = np.asarray(Ws, float)
    K, m, n = Ws.shape
    imp = np.ones(n) if importance is None else np.asarray(importance, float)
    raw = {"name": "t", "model": {"kind": kind, "n_features": n, "n_hidden": m},
           "data": {"correlated": [list(s) for s in correlated]},
           "sweep": {"data.density": list(densities), "train.seed": {"range": seeds}}}
    cfg = config.resolve(raw)
    flat = config.expand(cfg)
    assert len(flat) == K
    models = pd.DataFrame({
        "model": np.arange(K), "kind": kind, "n_features": n, "n_hidden": m,
        "density": [s["data.density"] for s in flat], "seed": [s["train.seed"] for s in flat],
        "loss": [float(s["train.seed"]) for s in flat],   # seed 0 is every cell's kept model
        "correlated": json.dumps([list(s) for s in correlated]), "anticorrelated": "[]"})
    features = pd.DataFrame([{"model": i, "feature": j, "importance": imp[j],
                              "density": flat[i]["data.density"]} for i in range(K) for j in range(n)])
    hist = history if history is not None else pd.DataFrame({"model": [], "step": [], "loss": []})
    weights = {"W": Ws, "W.shape": np.tile([m, n], (K, 1)),
               "b": np.zeros((K, n)), "b.shape": np.tile([n], (K, 1))}
    return Results.of(None, cfg, {"models": models, "features": features, "history": hist},
                      weights, snapshots=snapshots)


def measured(name, res, **args) -> float:
    return MEASURES[name].fn(res, **args)


@pytest.fixture
def intro():
    """Densities 1, 0.3, 0.1: the top-2 solution, two digons (feature 4 dropped), a pentagon."""
    return results([top2(), digons(), polygon(5)], [1.0, 0.3, 0.1], importance=0.9 ** np.arange(5))


def test_a_regular_pentagon_has_five_features_at_two_fifths_and_72_degrees(intro):
    assert measured("represented_features", intro, density=0.1) == 5
    assert measured("mean_learned_dimensionality", intro, density=0.1) == pytest.approx(0.4)
    assert measured("polygon_angle_error", intro, density=0.1) == pytest.approx(0, abs=1e-9)
    assert measured("structure_features", intro, structure="pentagon", density=0.1) == 5
    assert measured("feature0_room", intro, density=0.1) == pytest.approx(144)
    assert measured("dims_per_feature", intro, density=0.1) == pytest.approx(0.4)
    assert measured("dims_near", intro, fraction=0.4, density=0.1) == 5
    assert measured("antipodal_pairs", intro, density=0.1) == 0


def test_the_top_m_identity_keeps_m_features_exactly(intro):
    assert measured("represented_features", intro, density=1.0) == 2
    assert measured("topm_gram_error", intro, density=1.0) == pytest.approx(0)
    assert measured("topm_gram_error", intro, density=0.1) > 0.5  # a pentagon is not the top-2 solution
    assert measured("dims_per_feature", intro, density=1.0) == pytest.approx(1.0)
    assert measured("first_superposed_feature", intro, density=1.0) == 5  # none is shared


def test_two_digons_are_two_antipodal_pairs_at_one_half(intro):
    assert measured("antipodal_pairs", intro, density=0.3) == 2
    assert measured("structure_features", intro, structure="digon", density=0.3) == 4
    assert measured("dims_near", intro, fraction=0.5, density=0.3) == 4
    assert measured("feature0_room", intro, density=0.3) == pytest.approx(180)
    assert measured("first_superposed_feature", intro, density=0.3) == 0
    assert measured("largest_positive_interference", intro, density=0.3) == pytest.approx(0)
    # every learned feature sits at one of the paper's fractions
    assert measured("dims_share_sticky", intro) == pytest.approx(1.0)


def test_sparser_cells_learn_more_and_the_one_jump_is_found():
    dense = np.roll(top2(), 1, axis=1)     # features 1 and 2 dedicated, feature 0 dropped
    res = results([dense, digons(skip=0), polygon(5), polygon(5)], [1.0, 0.3, 0.1, 0.05])
    assert measured("represented_trend", res) == pytest.approx(1.0, abs=0.06)
    # feature 0: dropped at 1.0 and 0.3, learned at 0.1 and 0.05: one change, between 0.1 and 0.3
    assert measured("represented_changes", res, by="density") == 2   # 2 -> 4 -> 5 features
    assert measured("switch_point", res, by="density") == pytest.approx(np.sqrt(0.1 * 0.3))


def test_sticky_span_is_the_ratio_of_1_over_density_across_a_run():
    res = results([top2(), digons(), digons(), polygon(5)], [1.0, 0.5, 0.25, 0.1])
    assert measured("sticky_span", res, value=0.5) == pytest.approx(2.0)   # 1/0.25 over 1/0.5
    assert measured("sticky_span", res, value=1.0) == pytest.approx(1.0)   # a single cell
    assert measured("sticky_span", res, value=0.75) == 0.0
    assert measured("dims_per_feature", res, inv_density=4.1) == pytest.approx(0.5)  # nearest: 4


def test_feature0_room_widens_as_its_neighbours_make_room():
    # feature 0 at angle 0, its neighbours at +-(room/2); the others fill the rest evenly
    def room(deg):
        a = np.radians([0, deg / 2, 180 - 10, 180 + 10, 360 - deg / 2])
        return np.stack([np.cos(a), np.sin(a)])
    res = results([room(130), room(144), room(160)], [0.3, 0.1, 0.05])
    assert [measured("feature0_room", res, density=d) for d in (0.3, 0.1, 0.05)] == \
        pytest.approx([130, 144, 160])
    assert measured("room_trend", res, by="inv_density") == pytest.approx(1.0)
    assert measured("feature0_norm", res, density=0.1) == pytest.approx(1.0)


def test_correlated_sets_orthogonal_collapsed_and_antipodal():
    W = np.zeros((2, 4))
    W[:, 0], W[:, 1] = [1, 0], [0, 1]                       # set 0: an orthogonal pair
    W[:, 2] = W[:, 3] = [-np.sqrt(0.5), -np.sqrt(0.5)]     # set 1: collapsed, antipodal to set 0's sum
    res = results([W], [0.05], correlated=[[0, 1], [2, 3]])
    assert measured("set_pc_share", res, which=0) == pytest.approx(0.5)
    assert measured("set_pc_share", res, which=1) == pytest.approx(1.0)
    assert measured("set_cosine", res, which=0) == pytest.approx(0.0)
    assert measured("set_cosine", res, which=1) == pytest.approx(1.0)
    assert measured("collapsed_sets", res) == 1
    assert measured("cross_set_cosine", res) == pytest.approx(-np.sqrt(0.5))


def test_the_kept_seed_is_measured_and_a_bad_selection_is_named():
    res = results([polygon(5), digons()], [0.1], seeds=2)      # seed 0 (the pentagon) has lower loss
    assert measured("represented_features", res, density=0.1) == 5
    with pytest.raises(ConfigError, match="select 0 kept models"):
        measured("represented_features", res, density=0.5)
    with pytest.raises(ConfigError, match="no column 'colour'"):
        measured("represented_features", res, colour=1)
    with pytest.raises(ConfigError, match="structure = 'hexagon'"):
        measured("structure_features", res, structure="hexagon")


def test_phase_measures_read_the_phase_table():
    res = results([top2()], [1.0])
    res.derived["phase"] = pd.DataFrame({
        "p": [0.6, 0.6, 0.3, 0.3, 0.1, 0.1], "r": [0.5, 2.0, 0.5, 2.0, 0.5, 2.0],
        "phase": ["not represented", "dedicated", "superposition", "dedicated", "superposition",
                  "superposition"],
        "agree": [True, True, True, False, True, False], "paper_agree": [True] * 3 + [False] * 3,
        "loss": [1.0, 1.0, 1.0, 0.5, 1.0, 2.0], "theory_loss": 1.0})
    res.derived["neighbours"] = pd.DataFrame({"local_minimum": [True, False, True]})
    assert measured("phase_agreement", res) == pytest.approx(4 / 6)
    assert measured("phase_disagreements", res) == 2
    assert measured("phase_disagreements", res, below=True) == 1    # the one at half the theory's loss
    assert measured("phase_agreement", res, rule="paper") == pytest.approx(0.5)
    assert measured("phase_share", res, phase="superposition", r_min=1.0) == pytest.approx(1 / 3)
    assert measured("superposition_edge", res, importance=0.6) == pytest.approx(0.3)
    assert measured("superposition_edge", res, importance=3.0) == pytest.approx(0.1)
    assert measured("local_minimum_cells", res) == 2


def test_dimensionality_over_training_finds_the_jump_and_the_loss_drop():
    # a digon pair (D = 1/2 each) whose second member fades out between snapshots 2 and 3
    steps = np.array([100, 200, 300, 400, 500])
    traj = []
    for s in range(5):
        W = np.zeros((2, 2))
        W[:, 0] = [1, 0]
        W[:, 1] = [-1, 0] if s < 3 else [0, 0]
        traj.append(W)
    snaps = {"W": np.stack(traj)[None], "W.shape": np.array([[5, 2, 2]]), "step": steps[None]}
    history = pd.DataFrame({"model": 0, "step": steps, "loss": [1.0, 0.9, 0.8, 0.2, 0.1]})
    res = results([traj[-1]], [0.1], snapshots=snaps, history=history)
    assert measured("largest_dim_jump", res) == pytest.approx(0.5)
    assert measured("final_dims_near", res, fraction=1.0) == 1
    assert measured("dim_change_concentration", res, top=0.25) == pytest.approx(1.0)
    assert measured("loss_drop_at_jumps", res, top=0.25) == pytest.approx(0.6 / 0.9)
    assert measured("largest_dim_jump", res, after=400) == pytest.approx(0.0)


def test_structure_share_and_baseline_ratio(intro):
    assert measured("structure_share", intro, structure="digon", density=0.3) == pytest.approx(1.0)
    assert measured("structure_share", intro, structure="digon", density_max=0.3) == pytest.approx(4 / 9)
    intro.derived["optima"] = pd.DataFrame({"model": [0, 1, 2], "ratio": [1.0, 0.5, 0.25]})
    assert measured("baseline_ratio", intro) == pytest.approx(1.0)
    assert measured("baseline_ratio", intro, stat="min") == pytest.approx(0.25)
    assert measured("baseline_ratio", intro, stat="one", density=0.3) == pytest.approx(0.5)
