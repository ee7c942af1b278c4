"""The LLC estimator (toysuper/llc.py) against known answers: a regular model's lambda is d/2,
each degenerate direction takes 1/2 off, reduced-rank regression meets Aoyagi & Watanabe's
closed form (toysuper/llc_theory.py) on every branch with the default procedure, and the
estimate does not depend on the seed or the number of chains beyond its error; the SGLD step,
vmapping, the default settings and diagnostics behave as documented."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toysuper import llc, llc_theory
from toysuper.errors import ConfigError

N = 1000
# eps * n beta * curvature (2 for x ~ N(0, 1) under mean squared error) = 0.03: SGLD's
# discretisation inflates the posterior's variance by 1 / (1 - 0.03/4), under 1%.
# Fixed settings, one round (no refinement): the estimator itself, apart from the procedure.
SAMPLER = llc.Sampler(eps=1e-4, gamma=1.0, chains=8, draws=10_000, burn_in=1000, batch=100,
                      rounds=1)
# for the mechanics: one short program shared by several tests (eps, gamma, n_beta are inputs)
SHORT = llc.Sampler(eps=1e-4, gamma=1.0, chains=2, draws=200, burn_in=0, batch=100, rounds=1)


def _regression(d, seed=0, duplicate=False):
    """(X, y, least-squares w*) of y = X w0 + noise, n = N; `duplicate`: the last column of X
    repeats the first, so one direction of w (w_0 - w_last) leaves every prediction unchanged."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, d))
    if duplicate:
        X[:, -1] = X[:, 0]
    y = X @ rng.normal(size=d) + 0.5 * rng.normal(size=N)
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    return X.astype(np.float32), y.astype(np.float32), w.astype(np.float32)


def _mse(w, batch):
    x, t = batch
    return jnp.mean((x @ w - t) ** 2)


def _product(w, batch):
    """y = w0 w1 x_0 + w2 x_1 + ...: d parameters, d - 1 directions that change the model."""
    x, t = batch
    coef = jnp.concatenate([(w[0] * w[1])[None], w[2:]])
    return jnp.mean((x @ coef - t) ** 2)


def _flat(w, batch):
    return 0.0 * (jnp.sum(w) + jnp.sum(batch[1]))


def _lam(loss, data, w, seed=1, sampler=SAMPLER):
    return llc.summary(llc.estimate(loss, data, w, jax.random.PRNGKey(seed), sampler), sampler)


@pytest.fixture(scope="module")
def known():
    """One vmapped program for the linear known answers (one compilation): d = 10 regressions,
    full rank (three seeds of the chains) and with a duplicated column."""
    regular, duplicate = _regression(10), _regression(10, duplicate=True)
    cases = [regular, duplicate, regular, regular]
    X, y, w = (np.stack([c[j] for c in cases]) for j in range(3))
    keys = jax.random.split(jax.random.PRNGKey(1), len(cases))
    chains = llc.estimate(_mse, (X, y), w, keys, SAMPLER, models=True)
    r = llc.summary(chains, SAMPLER)
    return [{**{k: v[i] for k, v in r.items()}, "chains": chains.lambdas[i]}
            for i in range(len(cases))]


def test_regular_regression_gives_half_its_dimension(known):
    r = known[0]
    assert r["llc"] == pytest.approx(5.0, rel=0.05)
    assert r["n_beta"] == pytest.approx(N / math.log(N))
    assert r["llc_se"] < 0.1 and not r["chains_disagree"]
    assert r["diverged_chains"] == r["drifted_chains"] == r["negative_chains"] == 0
    assert not r["above_half_d"]


def test_a_duplicated_input_column_takes_half_off(known):
    full, flat = known[0], known[1]
    assert flat["llc"] == pytest.approx(4.5, rel=0.05)
    assert full["llc"] - flat["llc"] > 3 * math.hypot(full["llc_se"], flat["llc_se"])


def test_parameters_entering_as_a_product_lose_one_direction():
    X, y, w = _regression(9)  # fit y ~ (a b) x_0 + c . x_rest with |a| = |b| = sqrt(|w_0|)
    a = math.sqrt(abs(w[0]))
    w10 = np.concatenate([[a, math.copysign(a, w[0])], w[1:]]).astype(np.float32)
    r = _lam(_product, (X, y), w10)
    assert r["llc"] == pytest.approx(4.5, rel=0.05)  # 10 parameters, 9 directions that matter


def test_estimate_is_stable_across_seeds_and_chain_counts(known):
    """Three seeds of 8 chains, and each seed's two halves of 4 chains (independent chains, so
    each half is what a 4-chain run gives), all within 6% of each other."""
    runs = [known[i]["chains"] for i in (0, 2, 3)]
    values = [c.mean() for c in runs] + [h.mean() for c in runs for h in (c[:4], c[4:])]
    assert max(values) - min(values) < 0.06 * 5.0, values


def test_full_batch_uses_the_whole_data_set_and_minibatches_rescore_w_star_on_each():
    X, y, w = _regression(3)
    full = llc.estimate(_mse, (X[:100], y[:100]), w, jax.random.PRNGKey(0), SHORT)  # batch = n
    mini = llc.estimate(_mse, (X, y), w, jax.random.PRNGKey(0), SHORT)
    # the first draw is at w* itself; the baseline is the full loss at w*, or each batch's
    assert np.allclose(full.base, float(_mse(w, (X[:100], y[:100]))), rtol=1e-6)
    assert np.allclose(mini.loss[..., 0], mini.base[..., 0])
    assert mini.base.std(axis=-1).min() > 0
    assert full.loss.shape == (2, 200) and full.lambdas.shape == (2,)
    assert full.n_beta == pytest.approx(100 / math.log(100))


def test_steps_follow_the_sgld_update():
    """w_{t+1} = w_t - (eps/2)(n beta grad L(w_t) + gamma (w_t - w*)) + sqrt(eps) z_t, read off
    a loss linear in w (L(w) = w_0 + w_1, gradient (1, 1)) on a full batch. Runs with the same
    key draw the same noise z, so their difference isolates each term."""
    X = np.ones((10, 2), np.float32)
    s = llc.Sampler(eps=0.01, gamma=0.0, chains=1, draws=3, burn_in=0, batch=10, n_beta=3.0,
                    rounds=1)

    def linear(w, x):
        return jnp.mean(x @ w)

    def run(**change):
        return llc.estimate(linear, X, np.zeros(2, np.float32), jax.random.PRNGKey(0),
                            s._replace(**change)).loss[0]

    base, tiny_beta, local = run(), run(n_beta=1e-9), run(gamma=5.0)
    assert base[0] == 0.0  # the first draw is at w* = 0
    # the drift of one step: (eps/2) n beta (1 + 1) on L
    assert tiny_beta[1] - base[1] == pytest.approx(0.5 * 0.01 * 3.0 * 2, rel=1e-3)
    # the noise: L(w_1) - drift = (1, 1) . sqrt(eps) z, variance 2 eps
    assert abs(base[1] + 0.03) < 5 * math.sqrt(2 * 0.01)
    # localization acts from the second step on: -(eps/2) gamma (1, 1) . (w_1 - w*)
    assert local[1] == pytest.approx(base[1])
    assert local[2] - base[2] == pytest.approx(-0.5 * 0.01 * 5.0 * base[1], rel=1e-3, abs=1e-7)


def test_models_vmapped_together_match_each_estimated_alone():
    sets = [_regression(3, seed) for seed in (0, 1)]
    X = np.stack([s[0] for s in sets])
    y = np.stack([s[1] for s in sets])
    w = np.stack([s[2] for s in sets])
    keys = jax.random.split(jax.random.PRNGKey(5), 2)
    short = SHORT
    both = llc.estimate(_mse, (X, y), w, keys, short, models=True)
    assert both.lambdas.shape == (2, 2) and both.loss.shape == (2, 2, 200)
    for i in range(2):
        alone = llc.estimate(_mse, (X[i], y[i]), w[i], keys[i], short)
        np.testing.assert_allclose(both.loss[i], alone.loss, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(both.lambdas[i], alone.lambdas, rtol=1e-3, atol=1e-4)
    shared = llc.estimate(_mse, (X[0], y[0]), w, keys, short, models=True, shared_data=True)
    np.testing.assert_allclose(shared.lambdas[0], both.lambdas[0], rtol=1e-3, atol=1e-4)


def test_diagnostics_flag_diverged_drifting_and_negative_chains():
    X, y, w = _regression(3)
    short = SHORT
    blown = _lam(_mse, (X, y), w, sampler=short._replace(eps=0.1))  # eps n beta h ~ 30: unstable
    assert blown["diverged_chains"] == 2 and "diverged" in llc.verdict(blown)
    # not a minimum: w* shifted by 0.3 along every axis; the chains find lower loss
    off = _lam(_mse, (X, y), w + 0.3, sampler=short)
    assert off["negative_chains"] == 2 and off["llc"] < 0 and "negative" in llc.verdict(off)
    # a flat loss and no localization: a random walk of sqrt(eps steps d) = 0.45 from ||w*|| = 0.1
    walk = _lam(_flat, (X, y), np.full(3, 0.06, np.float32), sampler=short._replace(gamma=0.0, eps=3e-4))
    assert walk["drifted_chains"] == 2 and walk["llc"] == 0.0 and "drifted" in llc.verdict(walk)
    assert _lam(_mse, (X, y), w, sampler=short)["max_drift"] < llc.DRIFT
    # at w* = 0 the rule is relative to the localization's own radius sqrt(d / gamma): a flat
    # loss held by gamma stays within it, a loss that pushes the chains away does not
    zero = np.zeros(3, np.float32)
    held = _lam(_flat, (X, y), zero, sampler=short._replace(gamma=100.0, eps=1e-3))
    assert held["drifted_chains"] == 0 and held["max_drift"] > 0.1

    def push(w, batch):  # a slope: w* = 0 is no minimum, the drift (eps/2) n beta per step
        return jnp.sum(w) + 0.0 * jnp.sum(batch[1])
    pushed = _lam(push, (X, y), zero, sampler=short._replace(gamma=100.0, eps=1e-3))
    assert pushed["drifted_chains"] == 2 and pushed["negative_chains"] == 2


def test_chains_that_disagree_say_so():
    steps = np.zeros((4, 10))
    chains = llc.Chains(steps, steps, steps, np.array([1.0, 5.0, 1.0, 5.0]), np.array(100.0),
                        draws=10)
    r = llc.summary(chains, SHORT)
    assert r["llc"] == 3.0 and r["llc_se"] == pytest.approx(np.std([1, 5, 1, 5], ddof=1) / 2)
    assert r["chains_disagree"] and "disagree" in llc.verdict(r)
    calm = llc.summary(chains._replace(lambdas=np.array([3.0, 3.1, 2.9, 3.0])), SHORT)
    assert not calm["chains_disagree"] and llc.verdict(calm) == "ok"
    # 4 parameters: no minimum has lambda above 2
    high = llc.summary(chains._replace(lambdas=np.array([3.0, 3.1, 2.9, 3.0]), dims=4), SHORT)
    assert high["above_half_d"] and "above d/2" in llc.verdict(high)


def test_settings_no_estimate_can_come_from_are_refused_in_words():
    X, y, w = _regression(2)
    for bad, word in ((dict(chains=0), "chains"), (dict(eps=0.0), "eps"), (dict(gamma=-1.0), "gamma"),
                      (dict(burn_in=-1), "burn_in"), (dict(n_beta=0.0), "n_beta")):
        with pytest.raises(ConfigError, match=word):
            llc.estimate(_mse, (X, y), w, jax.random.PRNGKey(0), SAMPLER._replace(**bad))
    with pytest.raises(ConfigError, match="at least 2 examples"):
        llc.estimate(_mse, (X[:1], y[:1]), w, jax.random.PRNGKey(0), SAMPLER)


def test_llc_table_of_stored_toy_models_measures_each_on_its_own_data(tiny, monkeypatch):
    """The derived tables on a trained sweep: one row per model, n = its training set's size
    for a finite-data model and llc_models.N fresh samples otherwise, traces for every chain."""
    from toysuper import llc_models, tables, train_sweep

    res = train_sweep(dict(tiny, sweep={"data.dataset_size": [0, 300]}))
    s = llc_models.SAMPLER._replace(eps=1e-3, draws=300, burn_in=50, rounds=1)
    monkeypatch.setattr(llc_models, "SAMPLER", s)  # the table's mechanics, not the procedure
    table = tables.get(res, "llc")
    steps = tables.get(res, "llc_traces")
    assert list(table["model"]) == [0, 1] and list(table["n"]) == [llc_models.N, 300]
    assert table["n_beta"].to_numpy() == pytest.approx([N / math.log(N), 300 / math.log(300)], rel=1e-5)
    # 15 parameters (W 2 x 5, b 5): 0 < lambda <= 7.5 at a minimum
    assert (table["llc"] > 0).all() and not table["above_half_d"].any()
    assert len(steps) == 2 * s.chains * s.steps and table["verdict"].map(type).eq(str).all()
    # the first step of every chain is at w* itself
    first = steps[steps["step"] == 0]
    assert np.allclose(first["loss"], first["base"]) and np.allclose(first["drift"], 0.0)


def test_llc_snapshots_table_has_a_row_per_model_and_snapshot_with_its_structure_label():
    """llc_snapshots (toysuper/llc_dynamics.py): one row per (model, snapshot step), the label k
    counted from the snapshot's W, the loss measured on the model's own training set."""
    from toysuper import llc_dynamics, llc_models, metrics, train_sweep

    cfg = llc_models.one_hot_config(size=200)
    cfg["train"] = {"steps": 300, "batch": 200, "log_every": 100, "eval_batch": 1024, "snapshots": 3}
    cfg["sweep"] = {"train.seed": {"range": 2}}
    res = train_sweep(cfg)
    short = llc_models.SAMPLER._replace(eps=1e-3, chains=2, draws=50, burn_in=0, rounds=1)
    table = llc_dynamics.snapshots(res, sampler=short)
    assert list(table["model"]) == [0, 0, 0, 1, 1, 1] and list(table["step"]) == [100, 200, 300] * 2
    steps, Ws = res.snapshot_W(1)
    assert list(table["k"][3:]) == [int((metrics.norms(W) >= metrics.REPRESENTED).sum()) for W in Ws]
    assert (table["n"] == 200).all() and (table["loss"] > 0).all()
    assert table["verdict"].map(type).eq(str).all()
    assert np.isfinite(table["llc"]).all() and np.isfinite(table["llc_se"]).all()


# --- closed forms: Aoyagi & Watanabe's reduced-rank regression (toysuper/llc_theory.py) ------

@pytest.mark.parametrize("M, H, N, r, lam, mult, branch", [
    (3, 2, 3, 0, 2.5, 1, "1 even"),  # (2*2*6 - 0 - 4) / 8
    (3, 3, 3, 1, 4.0, 1, "1 even"),  # (2*4*6 - 0 - 16) / 8
    (2, 2, 2, 0, 1.5, 1, "1 even"),  # (2*2*4 - 0 - 4) / 8
    (2, 2, 2, 1, 2.0, 2, "1 odd"),   # (2*3*4 - 0 - 9 + 1) / 8
    (1, 1, 1, 0, 0.5, 2, "1 odd"),   # y = a b x at a b = 0: K = a^2 b^2, 1/2 with multiplicity 2
    (1, 2, 3, 1, 1.5, 1, "2"),       # M + H = 3 < N + r = 4: (2 - 2 + 3) / 2
    (2, 2, 5, 1, 3.5, 1, "2"),       # (4 - 2 + 5) / 2
    (3, 2, 1, 1, 1.5, 1, "3"),       # N + H = 3 < M + r = 4: (2 - 2 + 3) / 2
    (1, 2, 1, 1, 0.5, 1, "4"),       # M + N = 2 < H + r = 3: M N / 2
    (2, 3, 2, 2, 2.0, 1, "4"),
])
def test_aoyagi_watanabe_branches_by_hand(M, H, N, r, lam, mult, branch):
    assert llc_theory.rrr(M, H, N, r) == (lam, mult, branch)


@pytest.mark.parametrize("M, N", [(1, 1), (2, 2), (3, 2), (2, 5), (4, 3)])
def test_full_rank_reduced_rank_regression_is_regular_in_the_map(M, N):
    """H = r = min(M, N): the map B A ranges over all M x N matrices, lambda = M N / 2."""
    h = min(M, N)
    assert llc_theory.rrr(M, h, N, h).lam == M * N / 2
    assert llc_theory.regression(M * N) == M * N / 2


def test_closed_forms_refuse_impossible_shapes_in_words():
    with pytest.raises(ConfigError, match="rank r = 3"):
        llc_theory.rrr(2, 2, 2, 3)
    with pytest.raises(ConfigError, match="H = 0"):
        llc_theory.rrr(2, 0, 2, 0)


# --- the default procedure --------------------------------------------------------------

def test_curvature_is_the_top_hessian_eigenvalue_and_sets_the_default_step():
    X, y, w = _regression(4)
    top = 2 * np.linalg.eigvalsh(X.T.astype(np.float64) @ X / N).max()  # Hessian of the MSE
    h = llc.curvature(_mse, (X, y), w[None], shared_data=True)
    assert top * 0.95 <= h[0] <= top * 1.0001  # power iteration: from below, within a few %
    nb = N / math.log(N)
    assert llc.step_size(h, nb, 1.0)[0] == pytest.approx(llc.STEP / (nb * h[0] + 1.0))
    assert llc.default_gamma(nb) == pytest.approx(math.sqrt(nb / llc.RHO))


def test_a_step_too_large_is_flagged_as_settings_bias():
    """At eps a = 1.6 (a = n beta h, the stiffest curvature) SGLD's stationary spread is
    1 / (1 - 0.4) = 1.7 times the posterior's along it: halving eps moves the estimate, and the
    verdict says so; at the default eps the refinement leaves it in place."""
    X, y, w = _regression(3)
    nb = N / math.log(N)
    h = float(llc.curvature(_mse, (X, y), w[None], shared_data=True)[0])
    coarse = llc.Sampler(eps=1.6 / (nb * h), gamma=1.0, chains=4, draws=2000, burn_in=200,
                         batch=1000, rounds=2)
    r = _lam(_mse, (X, y), w, sampler=coarse)
    assert r["rounds"] == 2 and r["moved"] < -0.1 and r["settings_bias"]
    assert "settings bias" in llc.verdict(r)
    fine = _lam(_mse, (X, y), w, sampler=coarse._replace(eps=None, gamma=10.0))
    assert not fine["settings_bias"] and fine["llc"] == pytest.approx(1.5, rel=0.1)


# Reduced-rank regression y = B A x, one case per branch of Aoyagi & Watanabe's formula (and the
# regular case), padded into one shape (M, H, N at most 3) so that one program samples them all:
# masked weights leave the loss unchanged, so they add nothing to lambda.
RRR_CASES = [(3, 3, 3, 1), (2, 2, 2, 1), (1, 2, 3, 1), (3, 2, 1, 1), (1, 2, 1, 1), (2, 2, 2, 2),
             (2, 2, 2, 0)]
# w* = 0 (r = 0, the last case): every direction is singular there and the chains, started at
# the most singular point, explore slowest; it has read 4% to 13% low across seeds of the chains
TOLERANCE = np.array([0.1] * 6 + [0.15])
RRR_N = 1000  # examples, whitened (their covariance exactly I: the loss is
# ||B A - B0 A0||_F^2 plus the noise's terms), outputs with noise of standard deviation 0.1


def _rrr_loss(w, batch, mask):
    x, y = batch
    A, B = w["A"] * mask["A"], w["B"] * mask["B"]
    return jnp.mean(jnp.sum((y - x @ A.T @ B.T) ** 2, axis=-1))


def _rrr_case(M, H, N, r, size=3):
    """(w* = (A0, B0), (x, y), masks) padded to size: the true map has orthonormal singular
    vectors and singular values 1 in its first r hidden units; the others are 0 in A0 and B0."""
    rng = np.random.default_rng([M, H, N, r])
    A0, B0 = np.zeros((size, size), np.float32), np.zeros((size, size), np.float32)
    if r:
        A0[:r, :M] = np.linalg.qr(rng.normal(size=(M, r)))[0].T
        B0[:N, :r] = np.linalg.qr(rng.normal(size=(N, r)))[0]
    z = rng.normal(size=(RRR_N, M))
    z -= z.mean(0)
    x = np.zeros((RRR_N, size), np.float32)
    x[:, :M] = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / RRR_N)).T
    y = x @ A0.T @ B0.T
    y[:, :N] += 0.1 * rng.normal(size=(RRR_N, N))
    mA, mB = np.zeros((size, size), np.float32), np.zeros((size, size), np.float32)
    mA[:H, :M], mB[:N, :H] = 1, 1
    return {"A": A0, "B": B0}, (x, y), {"A": mA, "B": mB}


RRR = """
import json, sys, jax, numpy as np
sys.path.insert(0, {tests!r})
import test_llc as t
from toysuper import llc
jax.config.update("jax_numpy_rank_promotion", "raise")  # as tests/conftest.py
stack = lambda parts: jax.tree.map(lambda *a: np.stack(a), *parts)
w, data, masks = (stack(p) for p in zip(*[t._rrr_case(*c) for c in t.RRR_CASES]))
keys = jax.random.split(jax.random.PRNGKey(0), len(t.RRR_CASES))
r = llc.summary(llc.estimate(t._rrr_loss, data, w, keys, aux=masks, models=True))  # the defaults
print(json.dumps([jax.device_count()] + [np.asarray(r[k]).tolist() for k in (
    "llc", "diverged_chains", "negative_chains", "above_half_d", "drifted_chains")]))
"""


def test_reduced_rank_regression_meets_aoyagi_watanabe_on_every_branch():
    """The default procedure (eps from the curvature, gamma = sqrt(n beta / RHO), chain length,
    refinement rounds) at w* = the true parameter, within 10% of the closed form on each branch
    (1 even, 1 odd, 2, 3, 4 and the regular case), and within 15% at w* = 0. The longest
    estimate of the suite, so it runs where llc.estimate splits the models over two CPU devices
    (a process of its own): on two cores, half the time; each model's chains as on one device
    (test_models_split_over_two_devices_give_the_estimates_of_one)."""
    llc_, diverged, negative, above, drifted = _two_devices(RRR)
    expected = np.array([llc_theory.rrr(*c).lam for c in RRR_CASES])
    assert np.all(np.abs(np.array(llc_) / expected - 1) < TOLERANCE), (llc_, expected)
    assert not np.any(diverged) and not np.any(negative)
    assert not np.any(above) and not np.any(drifted)


def test_kgon_measurements_read_their_variant_from_llc_kgons():
    import types

    import pandas as pd

    from toysuper.measures import MEASURES

    kg = pd.DataFrame({"variant": ["6", "5+", "5-"], "population_loss": [0.048, 0.062, 0.069],
                       "llc_calibrated": [8.4, 8.6, 7.1], "llc": [6.5, 7.0, 5.8],
                       "hessian_rank": [17, 17, 14]})
    res = types.SimpleNamespace(derived={"llc_kgons": kg})
    assert MEASURES["kgon_population_loss"].fn(res, variant="5-") == 0.069
    assert MEASURES["kgon_llc"].fn(res, variant="5+") == 8.6
    assert MEASURES["kgon_llc_fixed"].fn(res, variant="6") == 6.5
    assert MEASURES["kgon_half_hessian_rank"].fn(res, variant="5-") == 7.0
    with pytest.raises(ValueError, match="no single row"):
        MEASURES["kgon_llc"].fn(res, variant="4+")


def test_kgon_jump_share_counts_models_whose_six_feature_plateau_ends_lower_and_more_complex():
    import types

    import pandas as pd

    from toysuper.measures import MEASURES

    snap = pd.DataFrame({"model": [0, 0, 0, 1, 1, 1, 2, 2],
                         "step": [1, 2, 3, 1, 2, 3, 1, 2],
                         "k": [2, 6, 5, 6, 6, 5, 2, 5],
                         "loss": [0.2, 0.07, 0.06, 0.07, 0.069, 0.06, 0.2, 0.06],
                         "llc": [-3.0, 5.5, 6.7, 5.6, 5.7, 5.0, -4.0, 6.7]})
    res = types.SimpleNamespace(derived={"llc_snapshots": snap})
    # model 0 jumps 6 -> 5 with loss down and LLC up; model 1's LLC falls; model 2 has no k = 6
    assert MEASURES["kgon_jump_share"].fn(res) == 0.5


def _two_devices(script: str, with_count: bool = False) -> list:
    """The JSON list a script prints last, run with this file importable in a Python process
    with two CPU devices; its first entry, the device count, checked to be 2 and dropped unless
    `with_count`."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env.pop("JAX_NUM_CPU_DEVICES", None)
    out = subprocess.run([sys.executable, "-c", script.format(tests=str(Path(__file__).parent))],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if with_count:
        return got
    assert got[0] == 2, got
    return got[1:]


SPLIT = """
import json, sys, jax, numpy as np
sys.path.insert(0, {tests!r})
import test_llc as t
from toysuper import llc
sets = [t._regression(3, seed) for seed in (0, 1, 2)]
X, y, w = (np.stack([s[j] for s in sets]) for j in range(3))
keys = jax.random.split(jax.random.PRNGKey(5), 3)
c = llc.estimate(t._mse, (X, y), w, keys, t.SHORT._replace(rounds=2), models=True)
print(json.dumps([jax.device_count(), c.lambdas.tolist(), c.loss[:, :, -1].tolist()]))
"""


def test_models_split_over_two_devices_give_the_estimates_of_one():
    """llc.estimate splits the model axis over every device (3 models padded to 4 on 2): each
    model's chains, keyed by its own key, come out as on one device."""
    devices, lambdas, last = _two_devices(SPLIT, with_count=True)
    sets = [_regression(3, seed) for seed in (0, 1, 2)]
    X, y, w = (np.stack([s[j] for s in sets]) for j in range(3))
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    one = llc.estimate(_mse, (X, y), w, keys, SHORT._replace(rounds=2), models=True)
    assert devices == 2 and jax.device_count() == 1
    np.testing.assert_allclose(lambdas, one.lambdas, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(last, one.loss[:, :, -1], rtol=1e-5, atol=1e-7)
