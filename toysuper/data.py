"""Synthetic sparse features (docs/data_and_models.md), drawn for one model.

Each feature x_i is active with its own probability p_i; an active feature's magnitude follows
the model's magnitude law. Laws map a uniform draw on [0, 1) to a magnitude, registered by name
so that another distribution slots in as one entry. Correlated and anticorrelated sets of
features share one uniform draw per sample (see `sample`).

Two samplers draw the same law (train.sampler):

  "fast"       one 32-bit draw per entry from a counter-based hash: entry (row, feature) of a
               batch hashes its own index with the batch's key, so no generator state is carried
               and every entry costs a few integer multiplies. The draw u decides activity
               (u < p_i) and, given activity, u / p_i is uniform on [0, 1): one draw serves both.
  "reference"  two threefry uniforms per entry, one for activity and one for magnitude, as the
               reference notebook does. Threefry is a cryptographic-strength generator and costs
               about 15 ns per number on our 2-core CPU, 40x the hash; kept to reproduce results
               trained before "fast" existed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# data.law -> magnitude of an active feature, as a function of v ~ U[0, 1).
LAWS = {
    "uniform": lambda v: v,          # U[0, 1], the paper's default
    "signed": lambda v: 2 * v - 1,   # U[-1, 1], the computation (abs) task
    "uniform_0_2": lambda v: 2 * v,  # U[0, 2], the width-scaling study (docs/width_scaling.md)
}
SAMPLERS = ("fast", "reference")
# data.law -> (E[v], E[|v|], E[v^2]) of an active feature's magnitude v: baselines and
# initialisations built from a feature's mean and variance read them here.
MOMENTS = {"uniform": (1 / 2, 1 / 2, 1 / 3), "signed": (0.0, 1 / 2, 1 / 3),
           "uniform_0_2": (1.0, 1.0, 4 / 3)}

_M1, _M2 = np.uint32(0x7FEB352D), np.uint32(0x846CA68B)


def _mix(h):
    """A 32-bit bijection with strong avalanche (C. Wellons' "lowbias32" constants)."""
    h = h ^ (h >> 16)
    h = h * _M1
    h = h ^ (h >> 15)
    h = h * _M2
    return h ^ (h >> 16)


def bits(key, shape, columns: bool = False):
    """uint32 pseudo-random bits of `shape`, entry k = mix(mix(mix(k ^ a) ^ b) ^ a'), key = (a, b).

    A counter-based generator: each entry depends only on its index and the key, so any
    slice of a batch is the same whatever else is drawn with it. The index k of entry (row,
    feature) is row * n + feature in either layout: with `columns` the array is n x B, its
    transpose, and holds the same numbers, so the layout (a speed choice) never changes a model.
    (a, b) are two threefry words of the key (one threefry call per batch, not per entry), so
    distinct batches use unrelated words; three keyed rounds decorrelate neighbouring indices
    and keys (tests/test_data.py checks uniformity, serial and cross-key independence).
    """
    a, b = _key_words(key)
    size = int(np.prod(shape))
    if size >= 2 ** 32:
        raise ValueError(f"a batch of {size} entries exceeds the fast sampler's 2^32 counter")
    if columns:  # shape (n, B): entry (i, r) is example r's feature i, counter r * n + i
        n, B = shape
        rows = jnp.arange(B, dtype=jnp.uint32)[None, :] * np.uint32(n)
        h = jnp.arange(n, dtype=jnp.uint32)[:, None] + rows
    else:
        h = jnp.arange(size, dtype=jnp.uint32).reshape(shape)
    h = _mix(h ^ a)
    h = _mix(h ^ b)
    return _mix(h ^ (a * np.uint32(0x9E3779B9) + np.uint32(1)))


def _key_words(key):
    """Two well-mixed words from a key: raw keys such as PRNGKey(seed) = (0, seed) are not."""
    k = jax.random.bits(key, (2,), jnp.uint32)
    return k[0], k[1]


_TWO_M24 = np.float32(2.0 ** -24)
_TWO_M32 = np.float32(2.0 ** -32)
_BELOW_ONE = np.float32(1 - 2.0 ** -24)


def uniform(h):
    """U[0, 1) in float32 from 32 bits: the top 24 on the 2^-24 grid, the low 8 refining it.

    Below 2^-8 the result is exact on the 2^-32 grid, so `u < p` and `u / p` stay exact for
    small densities, where a 24-bit uniform would resolve u / p only to 2^-24 / p. Above it the
    sum rounds to nearest, which moves P(u < p) by at most half a float32 ulp of p (relative
    2^-25). Rounding up to 1.0 (probability 2^-25) is clipped to the largest float below 1.
    Limits: magnitudes at density p take about p 2^32 distinct values (43,000 at p = 1e-5),
    and a density below 2^-32 is never active.
    """
    u = (h >> 8).astype(jnp.float32) * _TWO_M24 + (h & np.uint32(255)).astype(jnp.float32) * _TWO_M32
    return jnp.minimum(u, _BELOW_ONE)


def sample(key, p_N, batch: int, law: str = "uniform", group_N=None, low_N=None,
           sampler: str = "fast", columns: bool = False):
    """A batch x n array of sparse features for one model (n x batch with `columns`).

    Feature i is active when u[group_i] falls in [low_i, low_i + p_i), u uniform on [0, 1):
    each feature reads its own u by default (independent features). Members of a correlated
    set read the set's first member's u from 0, so they are active together (the sparser
    only when the denser is); members of an anticorrelated set read it in disjoint intervals,
    so at most one is active. Every feature keeps its marginal density p_i exactly. Magnitudes
    are independent in every case. See `layout` for group and low, the module for `sampler`.
    """
    n = p_N.shape[-1]
    shape, p = ((n, batch), p_N[:, None]) if columns else ((batch, n), p_N[None, :])
    low = None if low_N is None else (low_N[:, None] if columns else low_N[None, :])
    if sampler == "reference":  # drawn batch x n whatever the layout, as the notebook does
        k_on, k_mag = jax.random.split(key)
        u, mag = (jax.random.uniform(k, (batch, n)) for k in (k_on, k_mag))
        u, mag = (u.T, mag.T) if columns else (u, mag)
    elif sampler == "fast" and group_N is None:
        # one draw: active iff u < p; given that, u / p is uniform on [0, 1)
        u = uniform(bits(key, shape, columns))
        mag = jnp.minimum(u / jnp.maximum(p, 1e-30), _BELOW_ONE)
        return jnp.where(u < p, LAWS[law](mag), 0.0)
    elif sampler == "fast":
        # a set's members share u, so their magnitudes need draws of their own
        u = uniform(bits(key, shape, columns))
        mag = uniform(bits(jax.random.fold_in(key, 1), shape, columns))
    else:
        raise ValueError(f"sampler {sampler!r} is not one of {SAMPLERS}")
    if group_N is None:
        on = u < p
    else:
        u = u[group_N] if columns else u[:, group_N]
        on = (u >= low) & (u < low + p)
    return jnp.where(on, LAWS[law](mag), 0.0)


def magnitudes(key, shape, law: str = "uniform", sampler: str = "fast", columns: bool = False):
    """Magnitudes of active features alone (every entry active), for stratified evaluation."""
    if sampler == "reference":  # drawn batch x n, as `sample` does
        v = jax.random.uniform(key, shape[::-1] if columns else shape)
        v = v.T if columns else v
    else:
        v = uniform(bits(key, shape, columns))
    return LAWS[law](v)


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
