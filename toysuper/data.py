"""Synthetic sparse features (SCIENCE.md, "Data"), drawn for one model.

Each feature x_i is active with its own probability p_i; an active feature's magnitude follows
the model's magnitude law. Laws are registered by name so that other magnitude distributions
slot in as one entry each. Correlated and anticorrelated sets of features share one uniform
draw per sample (see `sample`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _uniform(key, shape):
    return jax.random.uniform(key, shape)


def _signed(key, shape):
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)


# data.law -> magnitude of an active feature.
LAWS = {
    "uniform": _uniform,  # U[0, 1], the paper's default
    "signed": _signed,    # U[-1, 1], the computation (abs) task
}


def sample(key, p_N, batch: int, law: str = "uniform", group_N=None, low_N=None):
    """A batch x n array of sparse features for one model with densities p_N.

    Feature i is active when u[:, group_i] falls in [low_i, low_i + p_i), u uniform on [0, 1):
    each feature reads its own u by default (independent features). Members of a correlated
    set read the set's first member's u from 0, so they are active together (the sparser
    only when the denser is); members of an anticorrelated set read it in disjoint intervals,
    so at most one is active. Every feature keeps its marginal density p_i exactly. Magnitudes
    are independent in every case. See `layout` for group and low.
    """
    k_on, k_mag = jax.random.split(key)
    shape = (batch, p_N.shape[-1])
    u = jax.random.uniform(k_on, shape)
    if group_N is None:
        on = u < p_N[None, :]
    else:
        u = u[:, group_N]
        on = (u >= low_N[None, :]) & (u < low_N[None, :] + p_N[None, :])
    return jnp.where(on, LAWS[law](k_mag, shape), 0.0)


def layout(n: int, p_N, correlated=(), anticorrelated=()):
    """(group, low) n-vectors for `sample` from lists of correlated and anticorrelated sets.

    Sets are lists of feature indices; an anticorrelated set's densities must sum to at most 1.
    """
    group, low = np.arange(n), np.zeros(n)
    for members in correlated:
        group[list(members)] = members[0]
    for members in anticorrelated:
        group[list(members)] = members[0]
        low[list(members)] = np.concatenate([[0.0], np.cumsum(np.asarray(p_N)[list(members)])[:-1]])
    return group.astype(np.int32), low
