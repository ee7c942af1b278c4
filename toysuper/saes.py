"""Sparse autoencoders (SAEs), each written for one SAE on one batch; sae_train.py vmaps them.

An SAE reads an activation x (m numbers) and writes it back through d latents:

    pre = W_enc (x - b_dec) + b_enc          f = act(pre)          x_hat = W_dec f + b_dec

The kinds differ in `act` and in the penalty that keeps f sparse:

  relu_l1    f = ReLU(pre); penalty l1_coefficient * sum_i f_i ||W_dec[:, i]||: the L1 of the latents weighted
             by their decoder norms, so shrinking a decoder column cannot buy a smaller penalty
             (Anthropic's April 2024 recipe); the decoder is free.
  topk       f = the k largest of ReLU(pre), the rest 0; no penalty: k is the sparsity.
  batchtopk  the k * B largest ReLU(pre) of a batch of B, so examples share a budget of k on
             average; at evaluation a fixed threshold (the running mean of the smallest kept
             activation, learnt in training) replaces the batch rule, so an example's code does
             not depend on the rest of its batch.
  jumprelu   f = pre * H(pre - theta_i), theta_i = exp(log_theta_i) learnt; penalty
             l0 * sum_i H(pre - theta_i), the L0 itself. H has no useful derivative, so theta's
             gradient comes from a straight-through estimator: H's jump is smoothed by a
             rectangle of width `bandwidth` (Rajamanoharan et al. 2024).
  matryoshka topk latents, and the reconstructions from the first d/8, d/4 and d/2 latents
             alone are penalised too (nested dictionaries, Bussmann et al. 2025), so the first
             latents learn the most general features.
The kinds with a built-in sparsity (topk, batchtopk) and jumprelu keep unit decoder columns
(the decoder is W_dec over its column norms), so a latent's activation is its magnitude along
its direction; relu_l1 pays for decoder norm through its penalty instead.

KIND registers each kind, and a kind owns everything that is its own: how it encodes a batch,
what it adds to the loss, whether k is its sparsity, its extra parameters (which ones have a
latent axis, so that a resampled latent restarts them), what it does after each step (BatchTopK's
threshold), the knob figures sweep it by and its colour. A new kind (gated, p-anneal, ...) is
one entry here; tests/test_sae_kinds.py adds one that way.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


def _no_extra(d: int, threshold):
    return {}


def _as_is(params, f, t):
    return params


class Kind(NamedTuple):
    encode: Callable        # (params, pre[B, d], hp, train: bool, k) -> f[B, d]
    penalty: Callable       # (params, x, pre, f, hp) -> scalar added to the mean squared error
    unit_decoder: bool      # decoder columns normalised to unit length in the forward pass
    doc: str = ""
    knob: tuple = ("k", "k")  # (saes.parquet column, axis label): the sparsity setting it is
    #                           swept by in figures
    colour: str = "#7f7f7f"
    uses_k: bool = False    # k, latents per example, is its sparsity (sae.k shapes its arrays)
    extra: Callable = _no_extra  # (d, sae.threshold) -> its own parameters beyond W_enc, b_enc,
    #                              W_dec, b_dec, at initialisation
    per_latent: tuple = ()  # those of its own parameters with one entry per latent
    after_step: Callable = _as_is  # (params, f, step) -> params: updates outside the gradient
    trivial_terms: Callable = lambda d: 1  # d -> how many reconstruction errors its loss sums:
    #                                        the trivial solution (decoder bias alone) pays the
    #                                        activations' variance on each


def _relu(params, pre, hp, train, k):
    return jax.nn.relu(pre)


def _topk(params, pre, hp, train, k):
    vals, idx = jax.lax.top_k(pre, k)  # per example: its k largest pre-activations
    rows = jnp.arange(pre.shape[0])[:, None]
    return jnp.zeros_like(pre).at[rows, idx].set(jax.nn.relu(vals))


def _batchtopk(params, pre, hp, train, k):
    act = jax.nn.relu(pre)
    if not train:  # evaluation: the learnt threshold, one example at a time
        return jnp.where(act > params["threshold"], act, 0.0)
    flat = act.reshape(-1)
    vals, idx = jax.lax.top_k(flat, k * pre.shape[0])
    return jnp.zeros_like(flat).at[idx].set(vals).reshape(pre.shape)


def _running_threshold(params, f, t):
    """BatchTopK's evaluation threshold: a running mean of the smallest activation the batch
    rule kept."""
    kept = jnp.where(f > 0, f, jnp.inf).min()
    return {**params, "threshold": jnp.where(t == 0, kept, 0.99 * params["threshold"] + 0.01 * kept)}


# H(z - theta) and z * H(z - theta) with straight-through gradients for theta: H's jump is
# smoothed by a rectangle of width eps, so d/dtheta H = -K / eps and d/dtheta z H = -theta K / eps,
# K = 1 where |z - theta| < eps / 2. z's own gradient is H's (0 for the step itself). eps is an
# argument (a per-SAE value under vmap) that gets no gradient.


def _kernel(z, theta, eps):
    return (jnp.abs(z - theta[None, :]) < eps / 2).astype(z.dtype) / eps


@jax.custom_vjp
def _step(z, theta, eps):
    return (z > theta[None, :]).astype(z.dtype)


def _step_fwd(z, theta, eps):
    return _step(z, theta, eps), (z, theta, eps)


def _step_bwd(res, g):
    z, theta, eps = res
    return jnp.zeros_like(z), -(g * _kernel(z, theta, eps)).sum(axis=0), jnp.zeros_like(eps)


_step.defvjp(_step_fwd, _step_bwd)


@jax.custom_vjp
def _jump(z, theta, eps):
    return z * (z > theta[None, :])


def _jump_fwd(z, theta, eps):
    return _jump(z, theta, eps), (z, theta, eps)


def _jump_bwd(res, g):
    z, theta, eps = res
    return (g * (z > theta[None, :]), -(g * theta[None, :] * _kernel(z, theta, eps)).sum(axis=0),
            jnp.zeros_like(eps))


_jump.defvjp(_jump_fwd, _jump_bwd)


def _jumprelu(params, pre, hp, train, k):
    return _jump(pre, jnp.exp(params["log_threshold"]), hp.bandwidth)


def _l1_penalty(params, x, pre, f, hp):
    norms = jnp.linalg.norm(params["W_dec"], axis=0)
    return hp.l1 * jnp.mean(jnp.sum(f * norms[None, :], axis=1))


def _l0_penalty(params, x, pre, f, hp):
    return hp.l0 * jnp.mean(jnp.sum(_step(pre, jnp.exp(params["log_threshold"]), hp.bandwidth), axis=1))


def _none(params, x, pre, f, hp):
    return jnp.zeros((), pre.dtype)


def _prefixes(d: int) -> list[int]:
    """Matryoshka's nested dictionaries: the first d/8, d/4 and d/2 latents (distinct, < d)."""
    return sorted({max(1, d // 8), max(1, d // 4), max(1, d // 2)} - {d})


def _nested(params, x, pre, f, hp):
    """Matryoshka: the mean squared error of reconstructions from the first d/8, d/4 and d/2
    latents alone, so early latents must stand on their own (general features first)."""
    d = f.shape[1]
    W = params["W_dec"] / jnp.maximum(jnp.linalg.norm(params["W_dec"], axis=0, keepdims=True), 1e-12)
    total = jnp.zeros((), x.dtype)
    for p in _prefixes(d):
        x_hat = f[:, :p] @ W[:, :p].T + params["b_dec"][None, :]
        total = total + jnp.mean(jnp.sum((x - x_hat) ** 2, axis=1))
    return total


KIND = {
    "relu_l1": Kind(_relu, _l1_penalty, False, "ReLU latents, decoder-norm-weighted L1 penalty",
                    knob=("l1_coefficient", "L1 coefficient"), colour="#1f77b4"),
    "jumprelu": Kind(_jumprelu, _l0_penalty, True,
                     "latents above a learnt threshold, L0 penalty (straight-through)",
                     knob=("l0_coefficient", "L0 coefficient"), colour="#2ca02c",
                     extra=lambda d, threshold: {"log_threshold": jnp.full(d, jnp.log(threshold))},
                     per_latent=("log_threshold",)),
    "topk": Kind(_topk, _none, True, "the k largest latents of each example", colour="#d62728",
                 uses_k=True),
    "batchtopk": Kind(_batchtopk, _none, True,
                      "the k x B largest latents of a batch; a learnt threshold at evaluation",
                      knob=("k", "k (mean per example)"), colour="#9467bd", uses_k=True,
                      # learnt by a running mean (after_step), not by gradients
                      extra=lambda d, threshold: {"threshold": jnp.zeros(())},
                      after_step=_running_threshold),
    "matryoshka": Kind(_topk, _nested, True,
                       "topk whose first d/8, d/4 and d/2 latents must also reconstruct alone",
                       colour="#8c564b", uses_k=True, trivial_terms=lambda d: 1 + len(_prefixes(d))),
}

# the kinds' names, in the order figures show them; KIND is read live, so a kind registered
# after import (a test's, a user's) is known to settings and figures alike
KINDS = KIND.keys()


def init(key, m: int, d: int, kind: str, threshold: float, b_dec, norm=1.0):
    """One SAE's parameters: random decoder columns of length `norm`, encoder its transpose,
    b_dec given (the data mean: the decoder bias alone is then the trivial solution), b_enc 0."""
    W_dec = jax.random.normal(key, (m, d))
    W_dec = norm * W_dec / jnp.linalg.norm(W_dec, axis=0, keepdims=True)
    return {"W_enc": W_dec.T, "b_enc": jnp.zeros(d), "W_dec": W_dec, "b_dec": b_dec,
            **KIND[kind].extra(d, threshold)}


def decoder(params, kind: str):
    """The decoder as used: unit columns for the kinds that keep them (see the module doc)."""
    W = params["W_dec"]
    if KIND[kind].unit_decoder:
        W = W / jnp.maximum(jnp.linalg.norm(W, axis=0, keepdims=True), 1e-12)
    return W


def forward(params, x, kind: str, k: int, hp, train: bool):
    """(x_hat, pre, f) for a batch x[B, m]."""
    pre = (x - params["b_dec"][None, :]) @ params["W_enc"].T + params["b_enc"][None, :]
    f = KIND[kind].encode(params, pre, hp, train, k)
    return f @ decoder(params, kind).T + params["b_dec"][None, :], pre, f


def aux_loss(params, x, x_hat, pre, dead, kind: str, aux_k: int):
    """AuxK (Gao et al. 2024, appendix A.2): the mean squared error of reconstructing the main
    reconstruction's error e = x - x_hat from the top aux_k dead latents alone (no decoder bias).
    e is a fixed target (no gradient through x_hat), so only the dead latents learn from it; 0
    while no latent is dead."""
    e = jax.lax.stop_gradient(x - x_hat)
    act = jnp.where(dead[None, :], jax.nn.relu(pre), 0.0)
    vals, idx = jax.lax.top_k(act, min(aux_k, pre.shape[1]))
    z = jnp.zeros_like(act).at[jnp.arange(act.shape[0])[:, None], idx].set(vals)
    err = jnp.mean(jnp.sum((e - z @ decoder(params, kind).T) ** 2, axis=1))
    return jnp.where(dead.any(), err, 0.0)


def loss(params, x, kind: str, k: int, hp, dead=None, aux_k: int = 0):
    """(total, (mse, penalty, f, pre)) on a training batch: mean over examples of
    ||x - x_hat||^2, plus the kind's penalty, plus hp.aux times the AuxK loss when aux_k > 0
    (`dead`: which latents count as dead)."""
    x_hat, pre, f = forward(params, x, kind, k, hp, train=True)
    mse = jnp.mean(jnp.sum((x - x_hat) ** 2, axis=1))
    penalty = KIND[kind].penalty(params, x, pre, f, hp)
    if aux_k:
        penalty = penalty + hp.aux * aux_loss(params, x, x_hat, pre, dead, kind, aux_k)
    return mse + penalty, (mse, penalty, f, pre)
