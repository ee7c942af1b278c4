"""Neuron metrics, the asymmetric superposition motif detector and per-feature errors."""

import itertools

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from toysuper import config, engine, neurons, optima
from toysuper.config import ConfigError
from toysuper.measures import MEASURES


def test_monosemanticity_is_the_largest_weights_share_of_the_norm():
    W = np.array([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    np.testing.assert_allclose(neurons.monosemanticity(W), [0.8, 0.0, 1.0])


def test_a_neuron_only_silenced_by_its_strongest_feature_does_not_carry_it():
    W = np.array([[-2.0, 0.9, 0.9, 0.0],   # fires for features 1 and 2, silenced by 0
                  [1.0, 0.0, 0.1, 0.0],    # feature 0 alone
                  [-1.0, -0.5, 0.0, 0.0],  # nothing switches it on for inputs >= 0
                  [0.7, 0.7, 0.0, 0.0]])   # two features
    rows = neurons.neuron_rows(W, signed=False)
    assert rows["features"].tolist() == [2, 1, 0, 2]
    assert rows["monosemantic"].tolist() == [False, True, False, False]
    assert rows["dead"].tolist() == [False, False, True, False]
    assert rows["top_feature"].tolist()[:2] == [0, 0] and rows["top_weight"][0] == -2.0
    signed = neurons.neuron_rows(W, signed=True)  # a negative input fires on a negative weight
    assert signed["features"].tolist() == [3, 1, 2, 2]
    assert signed["monosemantic"].tolist() == [False, True, False, False]
    assert not signed["dead"].any()


def motif_model(cancel=-2.5, small=-0.4, out_scale=1.0, cancel_on=1.0):
    """Computes |x0| and |x1| with 4 neurons, x0+ and x1- sharing neuron 0 (the paper's motif).

    Neuron 0 = ReLU(x0 + small x1) writes x0+ to y0 and, scaled up by 1/|small|, x1- to y1; when
    x0 > 0 alone it leaks 2.5 x0 into y1, which neuron 1 = ReLU(cancel_on x0) takes back
    (W2[1, 1] = cancel) if it fires on the same sign of x0 (cancel_on > 0). `out_scale`
    multiplies neuron 0's output weights (its gain on both features).
    """
    W1 = np.array([[1.0, small, 0.0], [cancel_on, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    W2 = np.zeros((3, 4))
    W2[0, 0], W2[1, 0] = out_scale, out_scale / abs(small)
    W2[1, 1] = cancel
    W2[0, 2] = W2[1, 3] = 1.0
    return W1, W2


def test_the_motif_detector_finds_a_hand_built_motif():
    W1, W2 = motif_model()
    found = neurons.motifs_of(W1, W2)
    assert len(found) == 1
    row = found.iloc[0]
    assert (row["neuron"], row["big_feature"], row["small_feature"], row["canceller"]) == (0, 0, 1, 1)
    assert row["ratio"] == pytest.approx(2.5) and row["cancelled"] == pytest.approx(1.0)


@pytest.mark.parametrize("W1, W2", [
    (np.vstack([np.eye(3), -np.eye(3)]), np.hstack([np.eye(3), np.eye(3)])),  # monosemantic
    motif_model(cancel=0.0),        # the leak is left in place: no motif
    motif_model(cancel=-0.5),       # 20% cancelled, under CANCEL
    motif_model(small=-0.8),        # weights 1 and -0.8: not asymmetric enough
    motif_model(small=0.4),         # same sign: x0 and x1 add up, no opposite-sign sharing
    motif_model(out_scale=0.25),    # the shared neuron passes only 0.25 of each: below GAIN
    motif_model(cancel_on=-1.0),    # the would-be canceller fires on x0 < 0, not with neuron 0
])
def test_the_motif_detector_finds_none_where_there_is_none(W1, W2):
    assert neurons.motifs_of(W1, W2).empty


def _errors(kind, W, p, law="signed"):
    """The computation table of a hand-built 3-feature model at density p."""
    params = {k: jnp.asarray(v, jnp.float32) for k, v in W.items()}
    class Res:  # the parts of Results that neurons.computation reads
        models = pd.DataFrame({"model": [0], "law": [law], "sampler": ["fast"]})
        features = pd.DataFrame({"model": 0, "feature": range(3), "density": p})
        kind = staticmethod(lambda model: kind)
        params = staticmethod(lambda model: params)

    return neurons.computation(Res(), batch=8192)


def test_feature_errors_match_the_exact_answers():
    p = 0.01
    eye = np.eye(3)
    exact = {"W1": np.vstack([eye, -eye]), "W2": np.hstack([eye, eye]), "b": np.zeros(3)}
    half = {"W1": eye, "W2": eye, "b": np.zeros(3)}  # ReLU(x): right for x > 0 only
    zero = {"W1": np.zeros((3, 3)), "W2": np.zeros((3, 3)), "b": np.zeros(3)}
    t = _errors("abs", exact, p)
    np.testing.assert_allclose(t["error"], 0.0, atol=1e-9)
    assert t["signs"].tolist() == [2, 2, 2] and t["computed"].all()
    # E[x^2; x < 0] = p/6 and E[x^2] = p/3 for active magnitudes U[-1, 1]; 8192 draws: ~2% error
    t = _errors("abs", half, p)
    np.testing.assert_allclose(t["error_pos"], 0.0, atol=1e-9)
    np.testing.assert_allclose(t["error_neg"], p / 6, rtol=0.08)
    np.testing.assert_allclose(t["error"], p / 6, rtol=0.08)
    assert t["signs"].tolist() == [1, 1, 1] and not t["computed"].any()
    t = _errors("abs", zero, p)
    np.testing.assert_allclose(t["error"], p / 3, rtol=0.05)
    np.testing.assert_allclose(t["relative"], 1.0, rtol=0.05)
    assert t["signs"].tolist() == [0, 0, 0]


def test_feature_errors_count_the_inactive_samples_too():
    # y = ReLU(b) = c whatever x: error c^2 while inactive, E[(|u| - c)^2] = 1/3 - c + c^2 while
    # active, and the inactive part split evenly between the two signs
    p, c = 0.3, 0.1
    const = {"W1": np.zeros((2, 3)), "W2": np.zeros((3, 2)), "b": np.full(3, c)}
    t = _errors("abs", const, p)
    on, off = 1 / 3 - c + c * c, c * c
    np.testing.assert_allclose(t["error"], p * on + (1 - p) * off, rtol=0.03)
    np.testing.assert_allclose(t["error_pos"], p / 2 * on + (1 - p) / 2 * off, rtol=0.03)
    np.testing.assert_allclose(t["error_neg"], t["error_pos"], rtol=0.05)


def test_the_computation_model_with_m_2n_learns_abs_of_every_feature(tmp_path):
    cfg = {"name": "abs2n", "model": {"kind": "abs", "n_features": 4, "n_hidden": 8},
           "data": {"law": "signed", "density": 1.0}, "tables": ["computation", "neurons", "motifs"],
           "figures": ["neuron_weights", "computed_features", "asymmetric_motif"],
           "train": {"steps": 3000, "batch": 256, "log_every": 100, "eval_batch": 1024, "lr": 1e-2}}
    res = engine.run(cfg, out=tmp_path / "r", progress=False)
    comp = res.derived["computation"]
    assert (comp["relative"] < 1e-3).all(), comp
    assert comp["computed"].all()
    # each neuron computes one sign of one feature: x+ and x- of every feature
    t = res.derived["neurons"]
    assert t["monosemantic"].all() and sorted(t["top_feature"]) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert res.derived["motifs"].empty  # no neuron is shared, so no motif
    assert len(list((tmp_path / "r" / "figures").glob("*.png"))) == 3


def test_the_computation_model_needs_signed_inputs():
    with pytest.raises(ConfigError, match="data.law = 'signed'"):
        config.resolve({"model": {"kind": "abs"}})


def test_privileged_basis_dense_gives_each_top_feature_a_monosemantic_neuron(tmp_path):
    # 0.75 is the densest setting of experiments/privileged_basis.toml. At density 1 the rotated
    # solutions lose only ~1% more and training drifts toward the aligned one slowly.
    m = 4
    cfg = {"name": "priv", "model": {"kind": "privileged", "n_features": 8, "n_hidden": m},
           "data": {"importance": {"decay": 0.75}, "density": 0.75}, "tables": ["neurons"],
           "train": {"steps": 4000, "batch": 256, "log_every": 100, "eval_batch": 1024, "lr": 1e-2},
           "sweep": {"train.seed": [0, 1]}}
    res = engine.run(cfg, out=tmp_path / "r", progress=False)
    t = res.derived["neurons"]
    for _, rows in t.groupby("model"):
        mono = rows[rows["monosemantic"]]
        assert sorted(mono["top_feature"]) == list(range(m)), rows
        assert (mono["monosemanticity"] > 0.95).all()


def test_codes_name_the_groups_of_features_neurons_share():
    W = np.zeros((5, 10))
    W[0, 0] = W[1, 1] = W[2, 2] = 1.0                   # three dedicated neurons
    W[3, 3], W[3, 4], W[4, 4], W[4, 5] = 1.0, 0.8, 1.0, 0.9  # features 3-5 on neurons 3-4
    c = neurons.code_of(W, signed=False)
    assert c == {"code": "3 x dedicated + 3 in 2; 4 dropped", "dedicated": 3, "largest": 3,
                 "carried": 6, "dropped": 4, "neurons_per_feature": 7 / 6, "paired": 1,
                 "distinct_pairs": 1, "pair_map": "0:0 1:1 2:2 3:3 4:3+4 5:4"}
    pairs = np.kron(np.eye(5), [1.0, -0.7])             # signed inputs: each neuron, two features
    assert neurons.code_of(pairs, signed=True)["code"] == "5 x 2 in 1"
    assert neurons.code_of(pairs, signed=False)["code"] == "5 x dedicated; 5 dropped"
    assert neurons.code_of(np.zeros((5, 10)), signed=False)["code"] == "nothing carried; 10 dropped"


def test_a_large_silencing_weight_hides_no_feature_the_neuron_fires_for():
    # a sparse privileged model's neuron: fires for features 1, 2, 4, 7, silenced by feature 0
    w = np.array([[-2.2, 0.56, 0.58, -0.14, 0.57, -0.15, -0.12, 0.86, 0.02, 0.03]])
    assert np.flatnonzero(neurons.carried(w, signed=False)[0]).tolist() == [1, 2, 4, 7]
    assert np.flatnonzero(neurons.carried(w, signed=True)[0]).tolist() == [0, 7]


def _pairs_model(m: int) -> np.ndarray:
    """m neurons, C(m,2) features: feature f sits on the f-th pair of neurons (weight 1 on both,
    -0.2 on the others, as the sparse models' neurons silence what they do not carry)."""
    pairs = list(itertools.combinations(range(m), 2))
    W = np.full((m, len(pairs)), -0.2)
    for f, (a, b) in enumerate(pairs):
        W[[a, b], f] = 1.0
    return W


def test_a_model_with_every_feature_on_its_own_pair_of_neurons_is_named_by_its_pairs():
    c = neurons.code_of(_pairs_model(5), signed=False)
    assert c["code"] == "10 in 5 on neuron pairs (10 of 10)"
    assert (c["neurons_per_feature"], c["paired"], c["distinct_pairs"]) == (2.0, 10, 10)
    assert c["pair_map"].split()[:2] == ["0:0+1", "1:0+2"]
    # two features on the same pair: still two neurons each, but no longer the pairs regime
    W = _pairs_model(5)
    W[:, 1] = W[:, 0]
    c = neurons.code_of(W, signed=False)
    assert c["code"] == "10 in 5" and c["distinct_pairs"] == 9
    # a feature on three neurons breaks it too
    W = _pairs_model(4)
    W[3, 0] = 1.0
    c = neurons.code_of(W, signed=False)
    assert c["code"] == "6 in 4" and c["neurons_per_feature"] == pytest.approx(13 / 6)


def test_privileged_measures_read_the_kept_model_of_a_density(tmp_path):
    cfg = {"name": "priv", "model": {"kind": "privileged", "n_features": 4, "n_hidden": 2},
           "data": {"importance": {"decay": 0.75}}, "tables": ["neurons"],
           "train": {"steps": 20, "batch": 64, "log_every": 10, "eval_batch": 256},
           "sweep": {"data.density": [0.5, 0.05], "train.seed": [0, 1]}}
    res = engine.run(cfg, out=tmp_path / "r", progress=False)
    kept = optima.kept_models(res)
    sparse = [m for m in kept if res.models.set_index("model").loc[m, "density"] == 0.05]
    # the codes table as if the sparse cell's kept model were the pairs model, the rest empty
    res.derived["codes"] = pd.DataFrame([
        {"model": int(m), **neurons.code_of(_pairs_model(5) if m in sparse else np.zeros((5, 10)),
                                            signed=False)} for m in res.models["model"]])
    assert MEASURES["neurons_per_feature"].fn(res, density=0.05) == 2.0
    assert MEASURES["distinct_neuron_pairs"].fn(res, density=0.05) == 10.0
    assert MEASURES["features_dropped"].fn(res, density=0.5) == 10.0
    code = "10 in 5 on neuron pairs (10 of 10)"
    assert MEASURES["kept_code_is"].fn(res, density=0.05, code=code) == 1.0
    assert MEASURES["kept_code_is"].fn(res, density=0.5, code=code) == 0.0
    assert MEASURES["seeds_with_kept_code"].fn(res, density=0.05) == 0.5   # the other seed: empty
    with pytest.raises(ConfigError, match="density = 0.3"):
        MEASURES["features_dropped"].fn(res, density=0.3)
    assert MEASURES["most_seeds_near_kept"].fn(res, max_density=1.0, within=0.0) == 1.0
