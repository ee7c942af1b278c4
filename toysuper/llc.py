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
single L_n(w*) shared by every draw (or one batch's loss at w*) would leave in. The estimate is
the mean over chains; its standard error is the spread across chains / sqrt(chains).

The default procedure (`estimate`, docs/llc.md "Choosing the settings"), per call:
  1. eps: unless given, STEP / (n beta h + gamma), h the largest eigenvalue of the Hessian of
     the loss at w* (power iteration on the first CURVATURE examples), so that SGLD's
     discretisation inflates the stiffest direction's spread by about STEP / 4;
  2. a first round of chains at (eps, batch, burn_in, draws);
  3. refinement rounds, at most `rounds` in all: eps halved, the batch doubled (up to n) and
     burn-in and draws doubled (the same Langevin time); the procedure stops when no model's
     estimate moved by more than MOVED of itself and 2 combined standard errors, and reports the
     last round. Its step-halving and batch-doubling shifts are kept (`moved`), so an estimate
     still moving at the last round is flagged as biased by its settings.

Written for one chain of one model (`_chain`), mapped over chains (jax.vmap of keys) and over
models (jax.vmap of w*, data and per-model constants), the models split over every device as
training splits them (a "models" mesh); one program compiles per loss function,
array shape and (chains, draws, burn_in, batch). Diagnostics (`summary`): a chain diverged (a
non-finite loss), drifted (moved further from w* than `scale`: ||w*||, or the distance the
localization alone lets flat directions wander, 2 sqrt(d / gamma), whichever is larger: a
rule that holds at w* = 0), or is negative (found weights below L(w*): w* is not a minimum); the
chains disagree (spread above SPREAD of the mean), did not settle (the first and second half of
their draws differ beyond their error: too short), the estimate exceeds d/2, or moved with the
last refinement (step or batch bias). docs/llc.md has the measured known answers.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from toysuper.errors import ConfigError

# eps = STEP / (n beta h + gamma): for a quadratic loss SGLD's stationary variance along the
# stiffest direction is 1 / (1 - eps a / 4) times the posterior's (a = n beta h + gamma), so
# STEP = 0.1 keeps that inflation near 2.5% there, less in softer directions.
STEP = 0.1
# Examples the curvature's power iteration reads (the first ones of the data set), and its
# iterations: the top eigenvalue is needed only to within tens of percent.
CURVATURE = 4096
POWER_STEPS = 30
# The default localization gamma = sqrt(n beta / RHO). A direction along which the loss is
# quartic (a product of two weights that are both 0 at w*) reaches n beta K ~ 1 at a distance
# (n beta)^(-1/4) from w*, the localization at gamma^(-1/2): the estimate reaches lambda only when
# the second is the wider, n beta / gamma^2 >> 1 (measured on reduced-rank regression: at 1.45
# it is 15-35% low, at 144 within 6%, docs/llc.md). A smaller gamma costs steps: the chains
# relax along such directions in 2 / (eps gamma) steps.
RHO = 144.0
# The pilot run that measures the curvature where the chains go, and its retries at a tenth of
# the step when it diverges.
PILOT = 200
PILOT_TRIES = 3
# The first round runs a quarter of a relaxation time of burn-in and TAUS of draws, at most MAX_STEPS
# steps: the direction only the localization holds relaxes in 2 / (eps gamma) steps, and a chain
# started at w* under-estimates until it has explored it.
TAUS = 1
MAX_STEPS = 20_000
# A refinement "moved" the estimate when it changed by more than this share of it and by more
# than 2 combined standard errors: the known answers are met within 10% (tests/test_llc.py).
MOVED = 0.05
# A chain whose mean distance from w* over its draws exceeds DRIFT x scale, scale =
# max(||w*||, 2 sqrt(d / gamma)), samples weights no longer near w*: as far from w* as w* is
# from zero weights, or twice as far as the localization alone lets flat directions wander (the
# Gaussian exp(-gamma/2 ||w - w*||^2) has root mean squared radius sqrt(d / gamma): a chain in a
# flat valley sits near it, so once was a coin toss). At w* = 0 the second term is the scale, so
# the rule stays relative there; at gamma = 0 and w* = 0 it is absolute.
DRIFT = 1.0
# Chains disagree when their standard deviation exceeds this fraction of their mean estimate.
# For a regular model a chain's draws of n beta (L - L*) follow about chi^2_d / 2 (mean d/2,
# variance d/2); chains of 2,000 draws spread by about 5-10% of the mean.
SPREAD = 0.3
# An estimate is flagged above d/2 only beyond its own error: by 3 standard errors and by this
# share of d/2, SGLD's discretisation bias at STEP.
ABOVE = 0.05


class Sampler(NamedTuple):
    """SGLD settings of an LLC estimate (module docstring for the procedure). chains, draws,
    burn_in and batch shape the compiled program; eps, gamma and n_beta are its inputs."""

    eps: float | None = None  # step size (devinterp's lr); None: STEP / (n beta h + gamma)
    gamma: float | None = None  # localization strength; None: sqrt(n beta / RHO)
    chains: int = 4           # independent chains per model (different noise and batches)
    draws: int = 2000         # recorded steps per chain after burn-in (first round)
    burn_in: int = 500        # steps before the first recorded draw (first round)
    batch: int = 100          # examples per step (first round); the whole data set when >= n
    n_beta: float | None = None  # inverse temperature times n; None: n / log n
    rounds: int = 3           # rounds in all: 1 runs these settings once, with no checks

    @property
    def steps(self) -> int:
        return self.burn_in + self.draws


class Chains(NamedTuple):
    """Per-chain output of the last round, with leading axes [models..., chains] (NumPy)."""

    loss: np.ndarray       # [..., chains, steps] minibatch loss at w_t (burn-in included)
    base: np.ndarray       # [..., chains, steps] the same minibatch's loss at w*
    drift: np.ndarray      # [..., chains, steps] ||w_t - w*|| / scale (module docstring)
    lambdas: np.ndarray    # [..., chains] each chain's estimate
    n_beta: np.ndarray     # [...] the n beta used
    dims: int = 0          # parameters d per model: lambda <= d/2 at any local minimum
    eps: np.ndarray | float = np.nan   # [...] the step size of the last round
    gamma: float = np.nan
    batch: int = 0         # the last round's batch, burn-in and draws
    burn_in: int = 0
    draws: int = 0
    rounds: int = 1        # rounds run
    moved: np.ndarray | float = np.nan  # [...] last refinement's change / previous estimate
    biased: np.ndarray | bool = False   # [...] the last refinement moved it (settings bias)


def default_n_beta(n: int) -> float:
    """n beta at beta* = 1 / log n: n / log n."""
    if n < 2:
        raise ConfigError(f"an LLC estimate needs a data set of at least 2 examples, not {n}")
    return n / math.log(n)


def default_gamma(n_beta: float) -> float:
    """The default localization: sqrt(n beta / RHO)."""
    return math.sqrt(n_beta / RHO)


def check(sampler: Sampler, n: int) -> None:
    """Refuse settings no estimate can come from, in the user's words."""
    for name in ("chains", "draws", "batch", "rounds"):
        v = getattr(sampler, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"llc {name} = {v!r} must be a positive integer")
    if not isinstance(sampler.burn_in, int) or sampler.burn_in < 0:
        raise ConfigError(f"llc burn_in = {sampler.burn_in!r} must be a non-negative integer")
    if sampler.eps is not None and not np.all(np.asarray(sampler.eps) > 0):
        raise ConfigError(f"llc eps = {sampler.eps!r} must be a positive step size, or None to "
                          "choose it from the curvature at w*")
    if sampler.gamma is not None and not sampler.gamma >= 0:
        raise ConfigError(f"llc gamma = {sampler.gamma!r} must be >= 0 (0: no localization), "
                          "or None for sqrt(n beta / RHO)")
    if sampler.n_beta is not None and not sampler.n_beta > 0:
        raise ConfigError(f"llc n_beta = {sampler.n_beta!r} must be positive, or None for n / log n")
    default_n_beta(n)


def _norm(tree):
    return jnp.sqrt(sum(jnp.sum(a * a) for a in jax.tree.leaves(tree)))


def _scale(w_star, gamma, dims):
    """The drift's unit (module docstring): max(||w*||, 2 sqrt(d / gamma)), 1 if both are 0."""
    local = jnp.where(gamma > 0, 2 * jnp.sqrt(dims / jnp.maximum(gamma, 1e-30)), 0.0)
    s = jnp.maximum(_norm(w_star), local)
    return jnp.where(s > 0, s, 1.0)


def _chain(loss, sampler: Sampler, eps, gamma, n_beta, w_star, data, aux, key, start=None):
    """One SGLD chain from `start` (w* by default): (loss trace, baseline trace, relative drift
    trace, estimate, last weights)."""
    n = jax.tree.leaves(data)[0].shape[0]
    full = sampler.batch >= n
    dims = sum(a.size for a in jax.tree.leaves(w_star))
    scale = _scale(w_star, gamma, dims)

    def f(w, batch):
        return loss(w, batch) if aux is None else loss(w, batch, aux)

    base_full = f(w_star, data) if full else None

    def step(w, k):
        k_batch, k_noise = jax.random.split(k)
        if full:
            batch = data
        else:  # drawn with replacement, fresh each step: a permutation per step would sort
            # all n indices, and at batch << n the two differ by a batch/n share of repeats
            idx = jax.random.randint(k_batch, (sampler.batch,), 0, n)
            batch = jax.tree.map(lambda a: a[idx], data)
        value, grad = jax.value_and_grad(f)(w, batch)
        base = base_full if full else f(w_star, batch)
        leaves, tree = jax.tree.flatten(w)
        noise = jax.tree.unflatten(tree, [
            jax.random.normal(kk, a.shape, a.dtype)
            for kk, a in zip(jax.random.split(k_noise, len(leaves)), leaves)])
        new = jax.tree.map(
            lambda a, g, a0, z: a - 0.5 * eps * (n_beta * g + gamma * (a - a0)) + jnp.sqrt(eps) * z,
            w, grad, w_star, noise)
        drift = _norm(jax.tree.map(jnp.subtract, w, w_star)) / scale
        return new, (value, base, drift)

    last, (values, bases, drifts) = jax.lax.scan(step, w_star if start is None else start,
                                                 jax.random.split(key, sampler.steps))
    kept = values[sampler.burn_in:] - bases[sampler.burn_in:]
    return values, bases, drifts, n_beta * kept.mean(), last


@functools.lru_cache(maxsize=None)
def _program(loss, sampler: Sampler, shared_data: bool, has_aux: bool, warm: bool):
    """The compiled chains over [models] x [chains] for one loss function and one Sampler's
    static part (chains, steps, batch): eps, gamma and n beta are per-model inputs, so that
    settings differing in them share a program. warm: each chain starts where the previous
    round's left it ([models, chains, ...]) instead of at w*."""
    def one_model(w_star, data, aux, key, eps, gamma, n_beta, start):
        keys = jax.random.split(key, sampler.chains)
        run = functools.partial(_chain, loss, sampler, eps, gamma, n_beta, w_star, data,
                                aux if has_aux else None)
        return jax.vmap(run)(keys, start) if warm else jax.vmap(run)(keys)
    axes = (0, None if shared_data else 0, 0 if has_aux else None, 0, 0, 0, 0, 0 if warm else None)
    return jax.jit(jax.vmap(one_model, in_axes=axes))


def _top_eigenvalue(loss, w_star, data, aux):
    """The largest eigenvalue of the Hessian of the loss at w* (power iteration on
    Hessian-vector products; the magnitude, so a saddle's negative curvature counts too)."""
    flat, unravel = ravel_pytree(w_star)

    def f(v):
        w = unravel(v)
        return loss(w, data) if aux is None else loss(w, data, aux)

    def hvp(u):
        return jax.jvp(jax.grad(f), (flat,), (u,))[1]

    u0 = jnp.ones_like(flat) / jnp.sqrt(flat.size)

    def it(_, u):
        h = hvp(u)
        return h / jnp.maximum(jnp.linalg.norm(h), 1e-30)

    u = jax.lax.fori_loop(0, POWER_STEPS, it, u0)
    return jnp.abs(jnp.vdot(u, hvp(u)))


@functools.lru_cache(maxsize=None)
def _curvature_program(loss, shared_data: bool, has_aux: bool, per_chain: bool):
    def one(w, data, aux):
        return _top_eigenvalue(loss, w, data, aux if has_aux else None)
    if per_chain:  # w: [chains, ...] of one model
        one = jax.vmap(one, in_axes=(0, None, None))
    return jax.jit(jax.vmap(one, in_axes=(0, None if shared_data else 0, 0 if has_aux else None)))


def curvature(loss, data, w, aux=None, shared_data: bool = False,
              per_chain: bool = False) -> np.ndarray:
    """Per model (leading axis of w; [models, chains] with per_chain): the largest Hessian
    eigenvalue of the loss at w on the first CURVATURE examples of the model's data."""
    lead = 0 if shared_data else 1
    n = jax.tree.leaves(data)[0].shape[lead]
    head = jax.tree.map(lambda a: a[:CURVATURE] if shared_data else a[:, :CURVATURE], data) \
        if n > CURVATURE else data
    return np.asarray(_curvature_program(loss, shared_data, aux is not None, per_chain)(
        w, head, aux), np.float64)


def step_size(h, n_beta, gamma) -> np.ndarray:
    """The default eps: STEP / (n beta h + gamma)."""
    return STEP / (np.asarray(n_beta) * np.asarray(h) + gamma)


def refine(sampler: Sampler, n: int) -> Sampler:
    """The next round's settings: eps halved and the batch doubled (up to n). Its chains start
    where the previous round's ended (already spread over the posterior), so no burn-in and
    the same number of draws: half the Langevin time, each step twice as fine."""
    return sampler._replace(eps=np.asarray(sampler.eps) / 2, batch=min(2 * sampler.batch, n),
                            burn_in=0)


def _spread(args, shared: tuple, width: int):
    """The model axis of `args` split over every device, as training splits its models: padded
    (repeating the last model) to a multiple of the device count and sharded on a "models" mesh;
    the `shared` entries (one data set for all) are replicated. One device: left as they are."""
    devices = jax.devices()
    if len(devices) == 1:
        return args
    mesh = Mesh(np.array(devices), ("models",))
    pad = -width % len(devices)

    def put(a, split):
        if not split:
            return jax.device_put(a, NamedSharding(mesh, PartitionSpec()))
        a = jnp.asarray(a)
        if pad:
            a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])
        return jax.device_put(a, NamedSharding(mesh, PartitionSpec("models")))

    return tuple(None if x is None else jax.tree.map(lambda a, sp=not sh: put(a, sp), x)
                 for x, sh in zip(args, shared))


def _run(loss, data, w_star, keys, s: Sampler, aux, shared_data, width, n_beta, start=None):
    """One round's chains of every model; the model axis split over every device."""
    static = s._replace(eps=None, gamma=None, n_beta=None, rounds=None)
    args = (w_star, data, aux, keys, jnp.broadcast_to(jnp.asarray(s.eps, jnp.float32), (width,)),
            jnp.full(width, s.gamma, jnp.float32), n_beta, start)
    args = _spread(args, (False, shared_data, False, False, False, False, False, False), width)
    out = _program(loss, static, shared_data, aux is not None, start is not None)(*args)
    return jax.tree.map(lambda a: a[:width], out)


def _fold(key, r):
    return jax.vmap(lambda k: jax.random.fold_in(k, r))(key)


def pilot(loss, data, w_star, key, s: Sampler, aux, shared_data, width, nb, n_beta):
    """The default eps per model: STEP / (n beta h + gamma), h the largest Hessian eigenvalue at
    w* and at the end of a pilot run (PILOT steps at that eps): the curvature at w* can be far
    below the curvature where the chains go (0 at w* = 0 for a product of weights). A pilot
    that diverges is rerun at a tenth of its step, at most PILOT_TRIES times."""
    h = curvature(loss, data, w_star, aux, shared_data)
    eps = step_size(h, n_beta, s.gamma)
    short = s._replace(burn_in=0, draws=PILOT)
    for t in range(PILOT_TRIES):
        out = _run(loss, data, w_star, _fold(key, PILOT + t), short._replace(eps=eps), aux,
                   shared_data, width, nb)
        bad = ~np.isfinite(np.asarray(out[0])).all(axis=(-2, -1))
        if not bad.any():
            break
        eps = np.where(bad, eps / 10, eps)
    h_chain = curvature(loss, data, out[4], aux, shared_data, per_chain=True)
    h_chain = np.where(np.isfinite(h_chain), h_chain, 0.0).max(axis=-1)
    return np.minimum(eps, step_size(np.maximum(h, h_chain), n_beta, s.gamma))


def chain_length(s: Sampler) -> Sampler:
    """The first round's burn-in and draws: at least a quarter and TAUS relaxation times of the
    softest direction, which only the localization holds (2 / (eps gamma) steps), within
    MAX_STEPS in all (the smallest eps of the models sets it)."""
    if not s.gamma > 0:
        return s
    tau = 2.0 / (float(np.min(s.eps)) * s.gamma)
    burn_in = int(min(max(s.burn_in, math.ceil(tau / 4)), MAX_STEPS // (1 + 4 * TAUS)))
    draws = int(min(max(s.draws, math.ceil(TAUS * tau)), MAX_STEPS - burn_in))
    return s._replace(burn_in=burn_in, draws=draws)


def settled(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(relative change of the mean estimate, whether it stayed within MOVED and 2 combined
    standard errors) between two rounds' per-chain estimates [models, chains]."""
    m0, m1 = before.mean(-1), after.mean(-1)
    k = before.shape[-1]
    se = np.sqrt((before.var(-1, ddof=1) + after.var(-1, ddof=1)) / k) if k > 1 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = (m1 - m0) / np.abs(m0)
    still = np.abs(m1 - m0) <= np.maximum(MOVED * np.abs(m0), 2 * se)
    return moved, still


def estimate(loss: Callable, data, w_star, key, sampler: Sampler | None = None, *,
             aux=None, models: bool = False, shared_data: bool = False) -> Chains:
    """SGLD chains and per-chain LLC estimates at w_star, by the default procedure (module
    docstring): eps from the curvature unless given, then up to `sampler.rounds` rounds.

    loss(params, batch) -> scalar mean loss over the batch (loss(params, batch, aux) when `aux`
    is given); data: an array (or pytree of arrays) with a leading example axis of size n;
    w_star: the parameters (a pytree); key: a jax PRNG key; sampler: Sampler() by default.

    models=True: w_star, data, aux and key carry a leading model axis (stacked), and every model
    is estimated in one vmapped program; shared_data=True: one data set for all of them. `loss`
    should be one function object across calls (not a fresh lambda or partial each time), so the
    compiled programs are reused.
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
    s = sampler._replace(batch=min(sampler.batch, n))
    if s.gamma is None:
        s = s._replace(gamma=default_gamma(n_beta))
    if s.eps is None:
        s = s._replace(eps=pilot(loss, data, w_star, key, s, aux, shared_data, width, nb, n_beta))
        s = chain_length(s)
    out = _run(loss, data, w_star, key, s, aux, shared_data, width, nb)
    moved, still = np.full(width, np.nan), np.ones(width, bool)
    rounds = 1
    for r in range(1, sampler.rounds):
        s = refine(s, n)
        new = _run(loss, data, w_star, _fold(key, r), s, aux, shared_data, width, nb, out[4])
        moved, still = settled(np.asarray(out[3], np.float64), np.asarray(new[3], np.float64))
        out, rounds = new, r + 1
        if still.all():
            break
    out = out[:4]
    dims = sum(int(np.prod(a.shape[1:])) for a in jax.tree.leaves(w_star))
    eps = np.broadcast_to(np.asarray(s.eps, np.float64), (width,)).copy()
    chains = Chains(*(np.asarray(a, np.float64) for a in out), np.asarray(nb, np.float64), dims,
                    eps, float(s.gamma), s.batch, s.burn_in, s.draws, rounds, moved, ~still)
    if models:
        return chains
    return chains._replace(**{f: getattr(chains, f)[0] for f in (
        "loss", "base", "drift", "lambdas", "n_beta", "eps", "moved", "biased")})


def summary(chains: Chains, sampler: Sampler | None = None) -> dict:
    """Per model (arrays over any leading model axes): the estimate, its standard error across
    chains, the chains' spread, the settings of the last round and the diagnostic flags (module
    docstring). `sampler` is read only for chains made without their settings recorded."""
    burn_in = chains.burn_in if chains.draws else (sampler.burn_in if sampler else 0)
    lam = chains.lambdas
    finite = np.isfinite(chains.loss).all(axis=-1) & np.isfinite(chains.base).all(axis=-1)
    diverged = ~finite | ~np.isfinite(lam)
    drift = np.where(np.isfinite(chains.drift), chains.drift, np.inf)[..., burn_in:]
    drifted = drift.mean(axis=-1) > DRIFT
    negative = lam < 0
    k = lam.shape[-1]
    mean = lam.mean(axis=-1)
    std = lam.std(axis=-1, ddof=1) if k > 1 else np.full(mean.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = std / np.abs(mean)
    se = std / math.sqrt(k)
    # halves of each chain's draws: a trend between them means the chains had not settled
    kept = (chains.loss - chains.base)[..., burn_in:] * chains.n_beta[..., None, None]
    half = kept.shape[-1] // 2
    first, second = kept[..., :half].mean(-1), kept[..., half:].mean(-1)
    diff = (second - first).mean(-1)
    diff_se = (second - first).std(-1, ddof=1) / math.sqrt(k) if k > 1 else np.zeros(diff.shape)
    unsettled = (np.abs(diff) > np.maximum(2 * MOVED * np.abs(mean), 3 * diff_se)) & np.isfinite(mean)
    moved = np.broadcast_to(np.asarray(chains.moved, np.float64), mean.shape)
    return {
        "llc": mean,
        "llc_se": se,
        "llc_spread": spread,
        "n_beta": chains.n_beta,
        # the settings of the last round
        "eps": np.broadcast_to(np.asarray(chains.eps, np.float64), mean.shape),
        "gamma": np.full(mean.shape, chains.gamma),
        "chains": np.full(mean.shape, k),
        "draws": np.full(mean.shape, chains.draws),
        "burn_in": np.full(mean.shape, burn_in),
        "batch": np.full(mean.shape, chains.batch),
        "rounds": np.full(mean.shape, chains.rounds),
        "moved": moved,  # the last refinement's relative change (nan: one round)
        "mean_drift": drift.mean(axis=(-2, -1)),  # over chains and post-burn-in draws
        "max_drift": drift.max(axis=(-2, -1)),
        "diverged_chains": diverged.sum(axis=-1),
        "drifted_chains": drifted.sum(axis=-1),
        "negative_chains": negative.sum(axis=-1),
        "chains_disagree": ~(spread <= SPREAD),  # nan (one chain, or a diverged one) included
        "unsettled": unsettled,
        # the last halving of eps and doubling of the batch still moved the estimate
        "settings_bias": np.broadcast_to(np.asarray(chains.biased, bool), mean.shape),
        # no local minimum has lambda above d/2 (a regular one has d/2): the chains left w*
        "above_half_d": (mean > chains.dims / 2 * (1 + ABOVE) + 3 * np.nan_to_num(se))
        if chains.dims else np.zeros(mean.shape, bool),
    }


def verdict(row: dict) -> str:
    """One line on an estimate's health: 'ok' or what is wrong with it."""
    said = [f"{int(row[c])} chain(s) {what}" for c, what in (
        ("diverged_chains", "diverged (non-finite loss)"),
        ("drifted_chains", f"drifted (mean distance from w* above {DRIFT} x max(||w*||, "
                           "2 sqrt(d/gamma)))"),
        ("negative_chains", "negative (w* is not a local minimum?)")) if row[c]]
    if row.get("above_half_d"):
        said.append("estimate above d/2, impossible at a minimum (chains left w*?)")
    if row["chains_disagree"]:
        said.append(f"chains disagree (spread {row['llc_spread']:.2g} of the mean)")
    if row.get("unsettled"):
        said.append("chains not settled (their draws' halves differ: longer chains)")
    if row.get("settings_bias"):
        said.append(f"settings bias (halving eps and doubling the batch moved it by "
                    f"{row['moved']:+.0%})")
    return "; ".join(said) or "ok"
