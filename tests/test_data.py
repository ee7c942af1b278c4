"""The sparse samplers have the law docs/data_and_models.md states, checked statistically on large draws.

Both samplers ("fast": one hashed draw per entry; "reference": two threefry draws) must pass
every check: activity marginals per feature and per model, the magnitude law (Kolmogorov-
Smirnov), independence across features, models and steps, and the correlated/anticorrelated
sets. Tolerances are 5 standard errors (or the 1% KS critical value), so a correct sampler
fails one by chance about once in millions of runs, and they are the same for both samplers.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toysuper import data, keys

N_DRAW = 200_000
SAMPLERS = pytest.mark.parametrize("sampler", data.SAMPLERS)
# both layouts of the batch (train.Shape.columns): the checks read batch x n either way
LAYOUTS = pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
KS_1PCT = 1.63  # the 1% critical value of sqrt(N) x the Kolmogorov-Smirnov statistic


def draw(p, law="uniform", key=0, batch=N_DRAW, sampler="fast", columns=False):
    """batch x n (examples as rows, for the checks below)."""
    key = jax.random.PRNGKey(key) if isinstance(key, int) else key
    x = data.sample(key, jnp.asarray(p, jnp.float32), batch, law, sampler=sampler, columns=columns)
    return np.asarray(x).T if columns else np.asarray(x)


def within(rate, p, count):
    """|rate - p| within 5 binomial standard errors of `count` trials."""
    p = np.asarray(p, float)
    return np.abs(rate - p) <= 5 * np.sqrt(p * (1 - p) / count) + 1e-12


def ks_statistic(sample, cdf):
    s = np.sort(sample)
    k = np.arange(1, len(s) + 1) / len(s)
    return np.max(np.maximum(np.abs(k - cdf(s)), np.abs(k - 1 / len(s) - cdf(s))))


@SAMPLERS
@LAYOUTS
def test_marginals_match_each_features_density(sampler, columns):
    p = np.array([1.0, 0.5, 0.1, 0.01, 0.003, 0.0005])
    x = draw(p, sampler=sampler, columns=columns)
    rate = (x != 0).mean(axis=0)
    assert within(rate, p, N_DRAW).all(), (rate, p)
    assert rate[0] == 1.0  # an always-on feature is never 0


@SAMPLERS
def test_marginals_hold_for_every_model_of_a_vmapped_sweep(sampler):
    # 64 models with their own keys and densities, drawn at once as training does
    M, batch = 64, 20_000
    model_keys = keys.model_keys(np.arange(M), np.zeros(M))
    p = np.geomspace(1.0, 0.01, M)[:, None] * np.array([1.0, 0.5, 0.25])
    x = jax.vmap(lambda k, q: data.sample(k, q, batch, sampler=sampler))(
        jnp.asarray(model_keys), jnp.asarray(p, jnp.float32))
    rate = np.asarray(x != 0).mean(axis=1)
    assert within(rate, p.astype(np.float32), batch).all()


@SAMPLERS
@pytest.mark.parametrize("p", [1.0, 0.3, 0.01, 0.001])
def test_active_magnitudes_are_uniform_on_0_1(sampler, p):
    # about 50,000 active entries at every density
    x = draw([p] * 4, batch=max(N_DRAW // 4, int(12_500 / p)), sampler=sampler,
             columns=p < 0.1)
    active = x[x != 0]
    assert active.min() >= 0 and active.max() < 1
    assert ks_statistic(active, lambda v: v) < KS_1PCT / np.sqrt(len(active)), len(active)
    # no lumps at the grid's end: the top 1% of magnitudes hold 1% of the draws
    assert within((active > 0.99).mean(), 0.01, len(active))


@SAMPLERS
def test_signed_law_is_uniform_on_minus1_1(sampler):
    x = draw([0.5] * 4, law="signed", sampler=sampler)
    active = x[x != 0]
    assert active.min() >= -1 and active.max() <= 1
    assert ks_statistic(active, lambda v: (v + 1) / 2) < KS_1PCT / np.sqrt(len(active))


@SAMPLERS
@LAYOUTS
def test_features_are_independent(sampler, columns):
    x = draw([0.2, 0.4, 0.5, 0.5], sampler=sampler, columns=columns)
    on = x != 0
    assert within((on[:, 0] & on[:, 1]).mean(), 0.2 * 0.4, N_DRAW)
    # neighbouring features (adjacent counters of the fast sampler): activity and magnitude
    co = on[:, 2] & on[:, 3]
    assert within(co.mean(), 0.25, N_DRAW)
    assert abs(np.corrcoef(x[co, 2], x[co, 3])[0, 1]) < 5 / np.sqrt(co.sum())
    # consecutive examples of one feature (adjacent counters in the columns layout)
    assert abs(np.corrcoef(x[:-1, 2], x[1:, 2])[0, 1]) < 5 / np.sqrt(N_DRAW)


@SAMPLERS
def test_models_and_steps_draw_independent_batches(sampler):
    # training's keys: model keys from (seed, settings), step keys folded in; neighbours in
    # either direction (seed 1 vs 2, step 7 vs 8) must be unrelated
    model_keys = keys.model_keys([1, 2], [0, 0])
    a, b = (draw([0.5, 0.5], key=jnp.asarray(k), batch=50_000, sampler=sampler) for k in model_keys)
    s7, s8 = (draw([0.5, 0.5], key=jax.random.fold_in(jnp.asarray(model_keys[0]), i), batch=50_000,
                   sampler=sampler) for i in (7, 8))
    for u, v in [(a, b), (s7, s8), (a, s7)]:
        assert within(((u != 0) & (v != 0)).mean(), 0.25, u.size)
        both = (u != 0) & (v != 0)
        assert abs(np.corrcoef(u[both], v[both])[0, 1]) < 5 / np.sqrt(both.sum())


def test_fast_bits_are_uniform_over_bytes_and_have_no_serial_correlation():
    h = np.asarray(data.bits(jax.random.PRNGKey(11), (1000, 1000)), np.uint64).ravel()
    # chi-square of each of the four bytes over 256 bins (df 255; 99.9% point ~ 330)
    for shift in (0, 8, 16, 24):
        counts = np.bincount(((h >> shift) & 255).astype(int), minlength=256)
        chi2 = ((counts - len(h) / 256) ** 2 / (len(h) / 256)).sum()
        assert chi2 < 330, (shift, chi2)
    # each bit set half the time, and neighbouring counters unrelated
    ones = ((h[:, None] >> np.arange(32, dtype=np.uint64)) & 1).mean(axis=0)
    assert within(ones, 0.5, len(h)).all()
    u = h.astype(float) / 2**32
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / np.sqrt(len(u))


def test_fast_bits_of_a_slice_do_not_depend_on_the_batch_size():
    # counter-based: a bigger batch of one feature row extends the smaller one's draws
    key = jax.random.PRNGKey(3)
    small, big = np.asarray(data.bits(key, (1, 100))), np.asarray(data.bits(key, (1, 1000)))
    assert (small == big[:, :100]).all()


def draw_sets(p, correlated=(), anticorrelated=(), seed=0, sampler="fast", columns=False):
    group, low = data.layout(len(p), np.asarray(p), correlated, anticorrelated)
    x = data.sample(jax.random.PRNGKey(seed), jnp.asarray(p, jnp.float32), N_DRAW, "uniform",
                    jnp.asarray(group), jnp.asarray(low, jnp.float32), sampler=sampler,
                    columns=columns)
    return np.asarray(x).T if columns else np.asarray(x)


@SAMPLERS
@LAYOUTS
def test_correlated_and_anticorrelated_sets_keep_marginals_and_set_co_occurrence(sampler, columns):
    # features 0-2 correlated, 3-5 anticorrelated, 6-7 independent
    p = np.array([0.2, 0.2, 0.2, 0.3, 0.3, 0.2, 0.25, 0.25])
    on = draw_sets(p, correlated=[[0, 1, 2]], anticorrelated=[[3, 4, 5]], sampler=sampler,
                   columns=columns) != 0
    assert within(on.mean(axis=0), p, N_DRAW).all(), on.mean(axis=0)
    both = lambda i, j: (on[:, i] & on[:, j]).mean()  # noqa: E731
    # always together: co-occurrence equals the marginal, and no member is ever on alone
    assert both(0, 1) == both(0, 2) == on[:, 0].mean()
    assert (on[:, 0] == on[:, 1]).all() and (on[:, 1] == on[:, 2]).all()
    # never together
    assert both(3, 4) == both(3, 5) == both(4, 5) == 0
    assert on[:, 3:6].sum(axis=1).max() == 1
    # independent: p_i p_j, within 5 standard errors; and across sets
    for i, j in [(6, 7), (0, 6), (3, 6), (0, 3)]:
        assert within(both(i, j), p[i] * p[j], N_DRAW), (i, j, both(i, j))


@SAMPLERS
def test_a_correlated_set_of_unequal_densities_nests_the_sparser_member(sampler):
    on = draw_sets(np.array([0.4, 0.1]), correlated=[[0, 1]], sampler=sampler) != 0
    assert not (on[:, 1] & ~on[:, 0]).any()  # 1 only ever with 0
    assert within(on[:, 1].mean(), 0.1, N_DRAW)


@SAMPLERS
def test_magnitudes_in_a_correlated_set_are_independent(sampler):
    x = draw_sets(np.array([0.5, 0.5]), correlated=[[0, 1]], seed=3, sampler=sampler)
    active = x[(x != 0).all(axis=1)]
    r = np.corrcoef(active[:, 0], active[:, 1])[0, 1]
    assert abs(r) < 5 / np.sqrt(len(active)), r
    assert ks_statistic(active[:, 1], lambda v: v) < KS_1PCT / np.sqrt(len(active))


@SAMPLERS
@pytest.mark.parametrize("sets", [False, True])
def test_a_model_draws_the_same_numbers_in_either_layout(sampler, sets):
    """The batch layout is a speed choice: rows (B x n) and columns (n x B) hold one batch."""
    key, p = jax.random.PRNGKey(3), jnp.asarray([0.9, 0.5, 0.1, 0.02, 0.5], jnp.float32)
    group, low = data.layout(5, np.asarray(p), [[0, 1]], [[2, 3]]) if sets else (None, None)
    if sets:
        group, low = jnp.asarray(group), jnp.asarray(low, jnp.float32)
    rows, cols = (np.asarray(data.sample(key, p, 999, "signed", group, low, sampler, columns=c))
                  for c in (False, True))
    np.testing.assert_array_equal(rows, cols.T)
    mags = [np.asarray(data.magnitudes(key, shape, "uniform", sampler, columns=c))
            for shape, c in (((999, 5), False), ((5, 999), True))]
    np.testing.assert_array_equal(mags[0], mags[1].T)
