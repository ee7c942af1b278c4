"""The worst small perturbation of one model's input: projected gradient ascent on its loss.

Written for one model and one example x[n]; toysuper/adversarial.py maps it over examples and
models to measure stored models (docs/adversarial.md), and `perturb` over a training batch for
adversarial training (train.adversarial_steps).

What is attacked is the model's own loss on the perturbed input,
    L(x + d) = sum_i I_i (target_i(x + d) - x'_i(x + d))^2,
the training loss of one example: an autoencoder is asked to reproduce what it is given, so a
perturbation costs only what the model fails to pass through (a feature it represents alone,
with W^T W the identity on it, passes any perturbation through at no cost). The radius r of the
ball ||d|| <= r is the caller's: adversarial.py uses eps times the input's own norm.

Ascent: each step moves d by s_t r along the gradient's direction, then projects it back onto
the ball. A step of fixed length, whatever the gradient's size, keeps moving where a ReLU
model's loss is flat or steep; lengths fall geometrically from FIRST r to LAST r, so early
steps cross the ball and late ones settle on a maximum. The largest loss seen is kept, since
ascent on a loss that is not concave need not rise at every step. Restart 0 starts at d = 0, so
its first step follows the clean gradient (the fast gradient method); the others start at
uniform random points of the sphere ||d|| = r, where the worst perturbation of a loss convex
in d lies.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from toysuper import models

# Step lengths, as fractions of the radius, at the first and the last step. Measured on the
# section 2 ReLU models (docs/adversarial.md): 1 -> 0.01 reaches a slightly higher loss than
# 0.5 -> 0.005 or 0.3 -> 0.01 at 100 steps; more restarts matter more than more steps.
FIRST, LAST = 1.0, 0.01


def example_loss(kind: str, n: int, m: int, params, x, imp):
    """sum_i I_i (target_i(x) - x'_i)^2 of one example x[n]: train._loss for a batch of one."""
    spec = models.MODELS[kind]
    out = spec.build(n, m).apply(params, x)
    return jnp.sum(imp * (spec.target(x) - out) ** 2)


def _direction(v):
    """v / ||v||, and 0 for v = 0 (a flat loss gives no direction to step in)."""
    norm = jnp.linalg.norm(v)
    return v / jnp.where(norm > 0, norm, 1.0)


def _project(d, r):
    """The point of the ball ||d|| <= r nearest to d."""
    norm = jnp.linalg.norm(d)
    return jnp.where(norm > r, d * (r / jnp.where(norm > 0, norm, 1.0)), d)


def sphere(key, n: int, r, count: int):
    """`count` independent uniform points of the sphere ||d|| = r in n dimensions, [count, n]."""
    g = jax.random.normal(key, (count, n))
    return r * g / jnp.linalg.norm(g, axis=1, keepdims=True)


def ascend(loss, x, r, d0, steps: int):
    """(the largest loss(x + d) seen, that d) along `steps` projected steps from d0."""
    value_and_grad = jax.value_and_grad(lambda d: loss(x + d))
    sizes = r * jnp.geomspace(FIRST, LAST, steps).astype(x.dtype)

    def step(carry, size):
        d, best, best_d = carry
        value, g = value_and_grad(d)  # the loss at d, before this step moves it
        better = value > best
        best, best_d = jnp.where(better, value, best), jnp.where(better, d, best_d)
        return (_project(d + size * _direction(g), r), best, best_d), None

    start = (d0, jnp.full((), -jnp.inf, x.dtype), d0)
    (d, best, best_d), _ = jax.lax.scan(step, start, sizes)
    last = loss(x + d)  # where the last step landed
    better = last > best
    return jnp.where(better, last, best), jnp.where(better, d, best_d)


def worst(loss, x, r, key, steps: int, restarts: int):
    """(the largest loss(x + d) found with ||d|| <= r, that d): the best of `restarts` ascents,
    the first from d = 0, the rest from random points of the sphere drawn with `key`."""
    n = x.shape[0]
    starts = jnp.concatenate([jnp.zeros((1, n), x.dtype), sphere(key, n, r, restarts - 1)])
    values, ds = jax.vmap(lambda d0: ascend(loss, x, r, d0, steps))(starts)
    best = jnp.argmax(values)
    return values[best], ds[best]


def random_losses(loss, x, r, key, count: int):
    """loss(x + d) for `count` random perturbations d of the same norm r (uniform directions)."""
    return jax.vmap(lambda d: loss(x + d))(sphere(key, x.shape[0], r, count))


def perturb(kind: str, n: int, m: int, params, x, imp, eps, key, steps: int, columns: bool):
    """Adversarial training's inputs: a batch x (examples as rows, or as columns) with each
    example x_j moved by the worst perturbation of norm <= eps ||x_j|| that `steps` ascent
    steps find from one random point of the sphere (the usual start of PGD training).

    No gradient flows through the perturbation: the model learns at the attacked inputs, as if
    they had been drawn. eps = 0 leaves the batch as it is.
    """
    params = jax.lax.stop_gradient(params)
    loss = functools.partial(example_loss, kind, n, m, params, imp=imp)
    axis = 1 if columns else 0

    def one(xi, k):
        r = eps * jnp.linalg.norm(xi)
        _, d = ascend(loss, xi, r, sphere(k, n, r, 1)[0], steps)
        return xi + d

    keys = jax.random.split(key, x.shape[axis])
    return jax.lax.stop_gradient(jax.vmap(one, in_axes=(axis, 0), out_axes=axis)(x, keys))
