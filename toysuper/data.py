"""Synthetic sparse features (SCIENCE.md, "Data"), drawn for one model.

Each feature x_i is active with its own probability p_i; an active feature's magnitude follows
the model's magnitude law. Laws are registered by name so that other magnitude distributions,
and later correlated or anticorrelated sets, slot in as one entry each.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _uniform(key, shape):
    return jax.random.uniform(key, shape)


def _signed(key, shape):
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)


# data.law -> magnitude of an active feature.
LAWS = {
    "uniform": _uniform,  # U[0, 1], the paper's default
    "signed": _signed,    # U[-1, 1], the computation (abs) task
}


def sample(key, p_N, batch: int, law: str = "uniform"):
    """A batch x n array of sparse features for one model with densities p_N."""
    k_on, k_mag = jax.random.split(key)
    shape = (batch, p_N.shape[-1])
    on = jax.random.uniform(k_on, shape) < p_N[None, :]
    return jnp.where(on, LAWS[law](k_mag, shape), 0.0)
