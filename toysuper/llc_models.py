"""The local learning coefficient of stored toy models (toysuper/llc.py on a results directory),
and the regular k-gon solutions of Chen et al. (2023) it is checked on.

Derived tables `llc` (per model: the estimate, its standard error across chains, n beta and the
diagnostics) and `llc_traces` (per model, chain and SGLD step: the minibatch loss at w_t and at
w*, and the drift ||w_t - w*|| / max(||w*||, 2 sqrt(d / gamma))), made together by one run of
the chains (the last round of llc's default procedure).

The LLC is a property of a model and a data set of size n. A finite-data model (data.dataset_size
= T > 0) is measured on its own training set, n = T (drawn again from its key, as it was
trained). Any other model is measured on N fresh samples from its evaluation key folded with
TAG, so seeds of one sweep cell are measured on the same data (common random numbers).

The sampler's settings are module constants (SAMPLER, N), not experiment settings yet: the
estimate is a derived table, recomputed by `toysuper plot`, so changing them here relabels
stored results without training.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pandas as pd

from toysuper import config, llc, train

# Folded into a model's evaluation key for its LLC data set and chains, apart from the
# evaluation blocks (fold_in(eval_key, block)) and the attack's draws.
TAG = 0x6C6C63
# Examples in the LLC data set of an infinite-data model (Chen et al. use n = 1000).
N = 1000
# SGLD settings for toy models: llc's default procedure (eps from the curvature at w* and where
# the chains go, gamma = sqrt(n beta / 144), chain length from the localization's relaxation
# time, then eps halved and the batch doubled until the estimate stops moving; docs/llc.md).
SAMPLER = llc.Sampler()
# Models estimated together (vmapped): chains x (data set + batch + parameters) stays small.
GROUP = 16


def _loss_one(shape, params, x_rows, imp):
    """The model's training loss (train._loss) on examples given as rows."""
    return train._loss(shape, params, x_rows.T if shape.columns else x_rows, imp)


@functools.lru_cache(maxsize=None)
def loss_fn(shape):
    """One function object per Shape, so that llc.estimate's compiled program is reused."""
    return functools.partial(_loss_one, shape)


def _data_one(shape, hp, size):
    """A model's LLC data set as rows: its training set, or `size` fresh samples."""
    x = (train.dataset(shape, hp) if shape.dataset
         else train.draw(shape, jax.random.fold_in(hp.eval_key, TAG), hp, size))
    return x.T if shape.columns else x


@functools.lru_cache(maxsize=None)
def _data(shape, size):
    return jax.jit(jax.vmap(functools.partial(_data_one, shape, size=size)))


def measure(res, sampler: llc.Sampler | None = None, size: int = N, ids=None):
    """(per-model table, per-step traces) of models `ids` (default all) of `res`, with `sampler`
    (default SAMPLER)."""
    sampler = SAMPLER if sampler is None else sampler
    sweep = config.expand(res.config)
    ids = list(res.models["model"]) if ids is None else list(ids)
    groups: dict = {}
    for i in ids:
        groups.setdefault(train.Shape.of(sweep[i]), []).append(i)
    rows, traces = [], []
    for shape, some in groups.items():
        for lo in range(0, len(some), GROUP):
            part = some[lo:lo + GROUP]
            hp = train.inputs([sweep[i] for i in part], len(part))
            X = _data(shape, size)(hp)
            params = {"params": {k: np.stack([res.params(i)[k] for i in part])
                                 for k in res.params(part[0])}}
            keys = jax.vmap(lambda k: jax.random.fold_in(k, TAG + 1))(hp.eval_key)
            chains = llc.estimate(loss_fn(shape), X, params, keys, sampler, aux=hp.imp, models=True)
            summary = llc.summary(chains)
            for j, model in enumerate(part):
                row = {"model": model, **{k: v[j].item() for k, v in summary.items()},
                       "n": int(X.shape[1])}
                row["verdict"] = llc.verdict(row)
                rows.append(row)
                c, t = chains.loss.shape[1:]
                traces.append(pd.DataFrame({
                    "model": model, "chain": np.repeat(np.arange(c), t),
                    "step": np.tile(np.arange(t), c), "loss": chains.loss[j].ravel(),
                    "base": chains.base[j].ravel(), "drift": chains.drift[j].ravel()}))
    table = pd.DataFrame(rows).sort_values("model", ignore_index=True)
    for col in ("diverged_chains", "drifted_chains", "negative_chains", "chains", "draws",
                "burn_in", "batch", "rounds"):
        table[col] = table[col].astype(int)
    for col in ("chains_disagree", "above_half_d", "unsettled", "settings_bias"):
        table[col] = table[col].astype(bool)
    return table, pd.concat(traces, ignore_index=True).sort_values(
        ["model", "chain", "step"], ignore_index=True)


def table(res) -> pd.DataFrame:
    """llc.parquet: per model, its LLC estimate, standard error, n beta and diagnostics."""
    per_model, steps = measure(res)
    res.derived.setdefault("llc_traces", steps)  # one run of the chains makes both tables
    return per_model


def traces(res) -> pd.DataFrame:
    """llc_traces.parquet: per (model, chain, step), the SGLD minibatch loss at w_t and at w*."""
    per_model, steps = measure(res)
    res.derived.setdefault("llc", per_model)
    return steps


# --- the k-gons of Chen et al. (2023): n = 6 features, m = 2, x' = ReLU(W^T W x + b) --------

def one_hot_config(n: int = 6, m: int = 2, size: int = N) -> dict:
    """Settings for Chen et al.'s data: exactly one feature active, magnitude U[0, 1] (an
    anticorrelated set of all n features at density 1/n), a fixed set of `size` samples."""
    return {"name": "kgons", "model": {"kind": "relu", "n_features": n, "n_hidden": m},
            "data": {"density": 1.0 / n, "anticorrelated": [list(range(n))],
                     "dataset_size": size}}


def fit_kgon(shape, hp, X, k: int, steps: int = 3000, polish: int = 3000, lr: float = 0.01,
             rest: float = 0.05):
    """A k-gon made a critical point of the loss on rows X: first (norm, bias, rest) with the
    directions fixed (from 1, 0 and `rest`: an output ReLU at exactly 0 passes no gradient),
    then every parameter by gradient descent from there, so that the
    gradient at w* is ~0 (an estimate at a non-critical point is biased, often negative).
    rest > 0 gives Chen et al.'s k+ critical point (the unrepresented features' output biases
    positive), rest < 0 their k- (those outputs dead, their biases and weights then free)."""
    loss = loss_fn(shape)

    def shaped(theta):
        angles = 2 * jnp.pi * jnp.arange(k) / k
        W = jnp.zeros((2, shape.n)).at[:, :k].set(theta[0] * jnp.stack([jnp.cos(angles),
                                                                          jnp.sin(angles)]))
        b = jnp.full(shape.n, theta[2]).at[:k].set(theta[1])
        return {"params": {"W": W, "b": b}}

    def descend(f, x, count):
        grad = jax.jit(jax.grad(f))
        return jax.lax.fori_loop(0, count, lambda _, v: jax.tree.map(
            lambda a, g: a - lr * g, v, grad(v)), x)

    theta = descend(lambda t: loss(shaped(t), X, hp.imp), jnp.array([1.0, 0.0, rest]), steps)
    params = descend(lambda p: loss(p, X, hp.imp), shaped(theta), polish)
    grad_norm = math.sqrt(sum(float(jnp.sum(g * g)) for g in jax.tree.leaves(
        jax.grad(lambda p: loss(p, X, hp.imp))(params))))
    return jax.tree.map(np.asarray, params), float(loss(params, X, hp.imp)), grad_norm


def quadratic_llc(shape, hp, X, params, n_beta: float, gamma: float) -> tuple[float, int]:
    """(The LLC of the quadratic approximation of the loss on rows X at `params`, under the
    localization gamma: sum_i n beta h_i / (2 (n beta h_i + gamma)) over the Hessian's
    eigenvalues h_i > 0 (the estimate a sampler of that Gaussian would give), and the number of
    eigenvalues above 1e-4 of the largest: the rank, twice the regular LLC.)"""
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    H = jax.hessian(lambda v: loss_fn(shape)(unravel(v), X, hp.imp))(flat)
    h = np.linalg.eigvalsh(np.asarray(H, np.float64))
    pos = np.clip(h, 0.0, None)
    return float(np.sum(n_beta * pos / (2 * (n_beta * pos + gamma)))), int((h > 1e-4 * h.max()).sum())
