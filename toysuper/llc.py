"""The local learning coefficient (LLC) of a model at its weights w*, estimated by SGLD.

Singular learning theory measures a solution's effective dimension by its learning coefficient
lambda: near w*, the volume of weights whose loss is within t of L(w*) scales as t^lambda. A
regular model with d parameters has lambda = d/2; every degenerate direction lowers it. The
estimator of Lau et al. (2023),

    lambda_hat = n beta (E_w[L_n(w)] - L_n(w*)),

takes the expectation over the tempered posterior exp(-n beta L_n(w) - gamma/2 ||w - w*||^2)
localised at w* (gamma > 0 keeps it near w*), sampled by stochastic gradient Langevin dynamics:

    w <- w - (eps/2) (n beta grad L_batch(w) + gamma (w - w*)) + N(0, eps I),

started at w*, with a fresh minibatch each step (devinterp's convention: the noise has variance
eps, the drift half the step). n is the data set's size and n beta defaults to n / log n
(beta* = 1 / log n, the temperature at which lambda_hat is consistent).

Each draw records the minibatch loss at w_t (before the step) and, on the same minibatch, at w*;
a chain's estimate is n beta times the mean over its post-burn-in draws of their difference.
Scoring w* on the very batches w_t is scored on cancels the batches' own variation, which a
single L_n(w*) shared by every draw (or one batch's loss at w*) would leave in: a shared
baseline shifts every draw of a chain by one number, and its error times n beta becomes the
estimate's error. The estimate is the mean over chains; its standard error is the spread
across chains / sqrt(chains).

Written for one chain of one model (`_chain`), mapped over chains (jax.vmap of keys) and over
models (jax.vmap of w*, data and per-model constants); `estimate` compiles once per loss
function, array shape and (chains, draws, burn_in, batch). Diagnostics (`summary`): a chain
diverged (a non-finite loss), drifted (moved further than DRIFT x ||w*|| from w*: no longer a
local estimate), or is negative (found weights below L(w*): w* is not a minimum of the loss);
the chains of an estimate disagree when their spread exceeds SPREAD of its mean, and an
estimate above d/2 (d parameters), beyond its error, cannot be a local minimum's.
docs/llc.md has the measured known answers.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from toysuper.errors import ConfigError

# A chain whose mean distance from w* over its draws exceeds this fraction of ||w*|| samples
# weights that are no longer "near w*": as far from w* as w* is from zero weights (the model
# that represents nothing), where a k-gon can have become another structure, so its estimate is
# not the LLC of w*. The localization alone holds a chain within about sqrt(d / gamma) of w*
# (1.3 for the d = 18 parameters of an n = 6, m = 2 model at gamma = 10, in flat directions
# only, against ||w*|| ~ 2 to 3 for its k-gons): the k-gons' chains sit at 0.2-0.5 ||w*|| at
# gamma = 10, and at 0.65-1.6 at gamma = 1, where the 6-gon's estimate exceeds d/2 (docs/llc.md).
DRIFT = 1.0
# Chains disagree when their standard deviation exceeds this fraction of their mean estimate.
# For a regular model a chain's draws of n beta (L - L*) follow about chi^2_d / 2 (mean d/2,
# variance d/2); chains of 2,000 draws then spread by about 5-10% of the mean (measured, d = 10,
# docs/llc.md), so a spread above 30% means the chains sample different regions, or too few draws.
SPREAD = 0.3
# An estimate is flagged above d/2 only beyond its own error: by 3 standard errors and by this
# share of d/2, SGLD's discretisation bias at the step sizes used (1 / (1 - eps a / 4) - 1, a
# the largest n beta curvature, kept at a few percent).
ABOVE = 0.05


class Sampler(NamedTuple):
    """SGLD settings of an LLC estimate. chains, draws, burn_in and batch shape the compiled
    program (each combination compiles once); eps, gamma and n_beta are its inputs."""

    eps: float = 1e-4       # step size (devinterp's lr): drift eps/2, noise variance eps
    gamma: float = 100.0    # localization strength, pulling w towards w*
    chains: int = 4         # independent chains per model (different noise and batches)
    draws: int = 1000       # recorded steps per chain after burn-in
    burn_in: int = 200      # steps before the first recorded draw (recorded in the traces too)
    batch: int = 100        # examples per step; the whole data set when >= its size
    n_beta: float | None = None  # inverse temperature times n; None: n / log n

    @property
    def steps(self) -> int:
        return self.burn_in + self.draws


class Chains(NamedTuple):
    """Per-chain output, with leading axes [models..., chains] (NumPy after `estimate`)."""

    loss: np.ndarray       # [..., chains, steps] minibatch loss at w_t (burn-in included)
    base: np.ndarray       # [..., chains, steps] the same minibatch's loss at w*
    drift: np.ndarray      # [..., chains, steps] ||w_t - w*|| / ||w*|| (absolute when w* = 0)
    lambdas: np.ndarray    # [..., chains] each chain's estimate
    n_beta: np.ndarray     # [...] the n beta used
    dims: int = 0          # parameters d per model: lambda <= d/2 at any local minimum


def default_n_beta(n: int) -> float:
    """n beta at beta* = 1 / log n: n / log n."""
    if n < 2:
        raise ConfigError(f"an LLC estimate needs a data set of at least 2 examples, not {n}")
    return n / math.log(n)


def check(sampler: Sampler, n: int) -> None:
    """Refuse settings no estimate can come from, in the user's words."""
    for name in ("chains", "draws", "batch"):
        v = getattr(sampler, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"llc {name} = {v!r} must be a positive integer")
    if not isinstance(sampler.burn_in, int) or sampler.burn_in < 0:
        raise ConfigError(f"llc burn_in = {sampler.burn_in!r} must be a non-negative integer")
    if not sampler.eps > 0:
        raise ConfigError(f"llc eps = {sampler.eps!r} must be a positive step size")
    if not sampler.gamma >= 0:
        raise ConfigError(f"llc gamma = {sampler.gamma!r} must be >= 0 (0: no localization)")
    if sampler.n_beta is not None and not sampler.n_beta > 0:
        raise ConfigError(f"llc n_beta = {sampler.n_beta!r} must be positive, or None for n / log n")
    default_n_beta(n)


def _norm(tree):
    return jnp.sqrt(sum(jnp.sum(a * a) for a in jax.tree.leaves(tree)))


def _chain(loss, sampler: Sampler, eps, gamma, n_beta, w_star, data, aux, key):
    """One SGLD chain from w*: (loss trace, baseline trace, relative drift trace, estimate)."""
    n = jax.tree.leaves(data)[0].shape[0]
    full = sampler.batch >= n
    scale = jnp.where(_norm(w_star) > 0, _norm(w_star), 1.0)

    def f(w, batch):
        return loss(w, batch) if aux is None else loss(w, batch, aux)

    def step(w, k):
        k_batch, k_noise = jax.random.split(k)
        if full:
            batch = data
        else:  # drawn with replacement, fresh each step: a permutation per step would sort
            # all n indices, and at batch << n the two differ by a batch/n share of repeats
            idx = jax.random.randint(k_batch, (sampler.batch,), 0, n)
            batch = jax.tree.map(lambda a: a[idx], data)
        value, grad = jax.value_and_grad(f)(w, batch)
        base = f(w_star, batch)
        leaves, tree = jax.tree.flatten(w)
        noise = jax.tree.unflatten(tree, [
            jax.random.normal(kk, a.shape, a.dtype)
            for kk, a in zip(jax.random.split(k_noise, len(leaves)), leaves)])
        new = jax.tree.map(
            lambda a, g, a0, z: a - 0.5 * eps * (n_beta * g + gamma * (a - a0)) + jnp.sqrt(eps) * z,
            w, grad, w_star, noise)
        drift = _norm(jax.tree.map(jnp.subtract, w, w_star)) / scale
        return new, (value, base, drift)

    _, (values, bases, drifts) = jax.lax.scan(step, w_star, jax.random.split(key, sampler.steps))
    kept = values[sampler.burn_in:] - bases[sampler.burn_in:]
    return values, bases, drifts, n_beta * kept.mean()


@functools.lru_cache(maxsize=None)
def _program(loss, sampler: Sampler, shared_data: bool, has_aux: bool):
    """The compiled estimate over [models] x [chains] for one loss function and one Sampler's
    static part (chains, steps, batch): eps, gamma and n beta are per-model inputs, so that
    settings differing in them share a program."""
    def one_model(w_star, data, aux, key, eps, gamma, n_beta):
        keys = jax.random.split(key, sampler.chains)
        run = functools.partial(_chain, loss, sampler, eps, gamma, n_beta, w_star, data,
                                aux if has_aux else None)
        return jax.vmap(run)(keys)
    axes = (0, None if shared_data else 0, 0 if has_aux else None, 0, 0, 0, 0)
    return jax.jit(jax.vmap(one_model, in_axes=axes))


def estimate(loss: Callable, data, w_star, key, sampler: Sampler | None = None, *,
             aux=None, models: bool = False, shared_data: bool = False) -> Chains:
    """SGLD chains and per-chain LLC estimates at w_star.

    loss(params, batch) -> scalar mean loss over the batch (loss(params, batch, aux) when `aux`
    is given); data: an array (or pytree of arrays) with a leading example axis of size n;
    w_star: the parameters (a pytree); key: a jax PRNG key; sampler: Sampler() by default.

    models=True: w_star, data, aux and key carry a leading model axis (stacked), and every model
    is estimated in one vmapped program; shared_data=True: one data set for all of them. `loss`
    should be one function object across calls (not a fresh lambda or partial each time), so the
    compiled program is reused.
    """
    sampler = Sampler() if sampler is None else sampler
    lead = 1 if models and not shared_data else 0
    n = jax.tree.leaves(data)[0].shape[lead]
    check(sampler, n)
    n_beta = float(sampler.n_beta) if sampler.n_beta is not None else default_n_beta(n)
    if not models:  # one model: a model axis of one, its data shared
        w_star, key = jax.tree.map(lambda a: jnp.asarray(a)[None], (w_star, key))
        aux = None if aux is None else jax.tree.map(lambda a: jnp.asarray(a)[None], aux)
        shared_data = True
    width = jax.tree.leaves(w_star)[0].shape[0]
    nb = jnp.full(width, n_beta, jnp.float32)
    static = sampler._replace(eps=None, gamma=None, n_beta=None)
    values, bases, drifts, lambdas = _program(loss, static, shared_data, aux is not None)(
        w_star, data, aux, key, jnp.full(width, sampler.eps, jnp.float32),
        jnp.full(width, sampler.gamma, jnp.float32), nb)
    dims = sum(int(np.prod(a.shape[1:])) for a in jax.tree.leaves(w_star))
    out = Chains(*(np.asarray(a, np.float64) for a in (values, bases, drifts, lambdas)),
                 np.asarray(nb, np.float64), dims)
    return out if models else Chains(*(a[0] for a in out[:5]), dims)


def summary(chains: Chains, sampler: Sampler) -> dict:
    """Per model (arrays over any leading model axes): the estimate, its standard error across
    chains, the chains' spread and the diagnostic flags (module docstring)."""
    lam = chains.lambdas
    finite = np.isfinite(chains.loss).all(axis=-1) & np.isfinite(chains.base).all(axis=-1)
    diverged = ~finite | ~np.isfinite(lam)
    drift = np.where(np.isfinite(chains.drift), chains.drift, np.inf)[..., sampler.burn_in:]
    drifted = drift.mean(axis=-1) > DRIFT
    negative = lam < 0
    k = lam.shape[-1]
    mean = lam.mean(axis=-1)
    std = lam.std(axis=-1, ddof=1) if k > 1 else np.full(mean.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = std / np.abs(mean)
    return {
        "llc": mean,
        "llc_se": std / math.sqrt(k),
        "llc_spread": spread,
        "n_beta": chains.n_beta,
        "mean_drift": drift.mean(axis=(-2, -1)),  # over chains and post-burn-in draws
        "max_drift": drift.max(axis=(-2, -1)),
        "diverged_chains": diverged.sum(axis=-1),
        "drifted_chains": drifted.sum(axis=-1),
        "negative_chains": negative.sum(axis=-1),
        "chains_disagree": ~(spread <= SPREAD),  # nan (one chain, or a diverged one) included
        # no local minimum has lambda above d/2 (a regular one has d/2): the chains left w*
        "above_half_d": (mean > chains.dims / 2 * (1 + ABOVE) + 3 * np.nan_to_num(std / math.sqrt(k)))
        if chains.dims else np.zeros(mean.shape, bool),
    }


def verdict(row: dict) -> str:
    """One line on an estimate's health: 'ok' or what is wrong with it."""
    said = [f"{int(row[c])} chain(s) {what}" for c, what in (
        ("diverged_chains", "diverged (non-finite loss)"),
        ("drifted_chains", f"drifted (mean distance from w* above {DRIFT} ||w*||)"),
        ("negative_chains", "negative (w* is not a local minimum?)")) if row[c]]
    if row.get("above_half_d"):
        said.append("estimate above d/2, impossible at a minimum (chains left w*?)")
    if row["chains_disagree"]:
        said.append(f"chains disagree (spread {row['llc_spread']:.2g} of the mean)")
    return "; ".join(said) or "ok"
