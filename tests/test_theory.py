"""The analytic phase diagram: its boundaries, and each candidate's loss against simulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toysuper import data, models, theory


def test_n2_superposition_edge_at_known_points():
    # r = 1: the pair (p^2/3) beats p/3 - p^2/4 below p = 4/7; r = 0.1 and r = 10: below p = 0.16
    edge = theory.superposition_edge(2, [1.0, 0.1, 10.0])
    np.testing.assert_allclose(edge, [4 / 7, 0.16, 0.16], rtol=1e-12)
    for r, p_edge in [(1.0, 4 / 7), (0.1, 0.16), (10.0, 0.16)]:
        assert theory.phase(2, p_edge * 0.99, r) == "superposition"
        assert theory.phase(2, p_edge * 1.01, r) != "superposition"


def test_n2_above_the_edge_the_extra_feature_is_dropped_or_dedicated_by_importance():
    p = np.array([0.7, 0.9, 1.0])
    assert set(theory.phase(2, p, 0.5)) == {"not represented"}
    assert set(theory.phase(2, p, 2.0)) == {"dedicated"}
    assert set(theory.phase(2, 0.3, [0.1, 0.12])) == {"not represented"}
    assert set(theory.phase(2, 0.3, [8.0, 10.0])) == {"dedicated"}


def test_n3_superposition_only_below_r_1_where_the_others_cannot_pair_more_cheaply():
    # extra in a pair costs (1 + r) p^2/6, the two others paired p^2/3: the pair wins iff r < 1
    assert theory.phase(3, 0.01, 0.9) == "superposition"
    assert theory.phase(3, 0.01, 1.1) == "dedicated"
    assert theory.phase(3, 0.9, 0.5) == "not represented"


@pytest.mark.parametrize("n", [2, 3])
def test_phase_map_edge_matches_the_argmin(n):
    ps, rs = np.geomspace(0.01, 1, 200), np.geomspace(0.1, 10, 41)
    grid = theory.phase_map(n, ps, rs)
    edge = theory.superposition_edge(n, rs)
    in_sup = grid == "superposition"
    np.testing.assert_array_equal(in_sup, ps[:, None] < edge[None, :])


def _mc_loss(W, b, p, r, n, batch=2**20):
    """Loss of an explicit (W, b) under our own sampler, with the ReLU-output model."""
    imp = np.ones(n)
    imp[-1] = r
    net = models.MODELS["relu"].build(n, W.shape[0])
    params = {"params": {"W": jnp.asarray(W, jnp.float32), "b": jnp.asarray(b, jnp.float32)}}
    x = data.sample(jax.random.PRNGKey(7), jnp.full(n, p, jnp.float32), batch)
    out = net.apply(params, x)
    per_example = (x - out) ** 2 @ jnp.asarray(imp, jnp.float32)
    return float(per_example.mean()), float(per_example.std() / np.sqrt(batch))


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("p,r", [(0.05, 0.3), (0.3, 3.0), (1.0, 1.0)])
def test_each_candidate_loss_matches_a_monte_carlo_estimate(n, p, r):
    for cand in theory.candidates(n):
        W, b = cand.weights(p)
        mc, se = _mc_loss(W, b, p, r, n)
        assert abs(mc - cand(p, r)) < 5 * se + 1e-7, (cand.name, mc, cand(p, r))


def test_unknown_n_is_a_clear_error():
    with pytest.raises(ValueError, match="n_features in \\[2, 3\\]"):
        theory.phase(4, 0.1, 1.0)
