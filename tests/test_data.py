"""The sparse sampler has the law SCIENCE.md states, checked on large draws."""

import jax
import jax.numpy as jnp
import numpy as np

from toysuper import data

N_DRAW = 200_000


def draw(p, law="uniform", seed=0, batch=N_DRAW):
    return np.asarray(data.sample(jax.random.PRNGKey(seed), jnp.asarray(p, jnp.float32), batch, law))


def test_marginals_match_each_features_density():
    p = np.array([1.0, 0.5, 0.1, 0.01, 0.003])
    x = draw(p)
    rate = (x != 0).mean(axis=0)
    # 5 binomial standard errors, and an always-on feature is never 0
    tol = 5 * np.sqrt(p * (1 - p) / N_DRAW) + 1e-12
    assert np.all(np.abs(rate - p) <= tol), (rate, p)
    assert rate[0] == 1.0


def ks_statistic(sample, cdf):
    s = np.sort(sample)
    k = np.arange(1, len(s) + 1) / len(s)
    return np.max(np.maximum(np.abs(k - cdf(s)), np.abs(k - 1 / len(s) - cdf(s))))


def test_active_magnitudes_are_uniform_on_0_1():
    x = draw([0.3] * 4)
    active = x[x != 0]
    assert active.min() >= 0 and active.max() <= 1
    d = ks_statistic(active, lambda v: v)
    # 1.63 / sqrt(N) is the 1% critical value of the Kolmogorov-Smirnov statistic
    assert d < 1.63 / np.sqrt(len(active)), d


def test_signed_law_is_uniform_on_minus1_1():
    x = draw([0.5] * 4, law="signed")
    active = x[x != 0]
    assert active.min() >= -1 and active.max() <= 1
    assert ks_statistic(active, lambda v: (v + 1) / 2) < 1.63 / np.sqrt(len(active))


def test_features_are_independent():
    x = draw([0.2, 0.4, 0.5])
    on = x != 0
    both = (on[:, 0] & on[:, 1]).mean()
    assert abs(both - 0.2 * 0.4) < 5 * np.sqrt(0.08 * 0.92 / N_DRAW)
    # magnitudes of co-active features are uncorrelated
    co = on[:, 1] & on[:, 2]
    assert abs(np.corrcoef(x[co, 1], x[co, 2])[0, 1]) < 5 / np.sqrt(co.sum())


def test_different_keys_give_independent_batches():
    a, b = draw([0.5] * 3, seed=1, batch=50_000), draw([0.5] * 3, seed=2, batch=50_000)
    agree = ((a != 0) == (b != 0)).mean()
    assert abs(agree - 0.5) < 0.01


def draw_sets(p, correlated=(), anticorrelated=(), seed=0):
    group, low = data.layout(len(p), np.asarray(p), correlated, anticorrelated)
    x = data.sample(jax.random.PRNGKey(seed), jnp.asarray(p, jnp.float32), N_DRAW, "uniform",
                    jnp.asarray(group), jnp.asarray(low, jnp.float32))
    return np.asarray(x) != 0


def test_correlated_and_anticorrelated_sets_keep_marginals_and_set_co_occurrence():
    # features 0-2 correlated, 3-5 anticorrelated, 6-7 independent
    p = np.array([0.2, 0.2, 0.2, 0.3, 0.3, 0.2, 0.25, 0.25])
    on = draw_sets(p, correlated=[[0, 1, 2]], anticorrelated=[[3, 4, 5]])
    tol = 5 * np.sqrt(p * (1 - p) / N_DRAW)
    assert np.all(np.abs(on.mean(axis=0) - p) <= tol), on.mean(axis=0)
    both = lambda i, j: (on[:, i] & on[:, j]).mean()  # noqa: E731
    # always together: co-occurrence equals the marginal, and no member is ever on alone
    assert both(0, 1) == both(0, 2) == on[:, 0].mean()
    assert (on[:, 0] == on[:, 1]).all() and (on[:, 1] == on[:, 2]).all()
    # never together
    assert both(3, 4) == both(3, 5) == both(4, 5) == 0
    assert on[:, 3:6].sum(axis=1).max() == 1
    # independent: p_i p_j, within 5 standard errors; and across sets
    for i, j in [(6, 7), (0, 6), (3, 6), (0, 3)]:
        q = p[i] * p[j]
        assert abs(both(i, j) - q) <= 5 * np.sqrt(q * (1 - q) / N_DRAW), (i, j, both(i, j), q)


def test_a_correlated_set_of_unequal_densities_nests_the_sparser_member():
    on = draw_sets(np.array([0.4, 0.1]), correlated=[[0, 1]])
    assert not (on[:, 1] & ~on[:, 0]).any()  # 1 only ever with 0
    assert abs(on[:, 1].mean() - 0.1) < 5 * np.sqrt(0.09 / N_DRAW)


def test_magnitudes_in_a_correlated_set_are_independent():
    p = np.array([0.5, 0.5])
    group, low = data.layout(2, p, [[0, 1]])
    x = np.asarray(data.sample(jax.random.PRNGKey(3), jnp.asarray(p, jnp.float32), N_DRAW,
                               "uniform", jnp.asarray(group), jnp.asarray(low, jnp.float32)))
    active = x[(x != 0).all(axis=1)]
    r = np.corrcoef(active[:, 0], active[:, 1])[0, 1]
    assert abs(r) < 5 / np.sqrt(len(active)), r
    assert ks_statistic(active[:, 1], lambda v: v) < 1.63 / np.sqrt(len(active))
