"""Where each model's random numbers come from: keys derived from its seed and its own settings.

A model's key depends only on its seed and a hash of its [model] and [data] settings, never on
which other models share its sweep, chunk, device or host, nor on any speed setting.
"""

from __future__ import annotations

import json
import zlib

import jax
import jax.numpy as jnp
import numpy as np

from toysuper import settings

# Tags the evaluation stream so it never coincides with a training stream of seed 0.
_EVAL_TAG = 0x6576616C


def salt(s: dict) -> int:
    """A stable 32-bit hash of a model's salted settings (settings.Setting.salt)."""
    own = {k: v for k, v in s.items() if settings.salted(k, v)}
    return zlib.crc32(json.dumps(own, sort_keys=True).encode())


def model_keys(seeds, salts) -> np.ndarray:
    """uint32[M, 2] keys: each model's seed folded with a hash of its own settings."""
    make = jax.vmap(lambda s, h: jax.random.fold_in(jax.random.PRNGKey(s), h))
    return np.asarray(make(jnp.asarray(seeds, jnp.uint32), jnp.asarray(salts, jnp.uint32)))


def eval_keys(salts) -> np.ndarray:
    """uint32[M, 2] evaluation keys from a hash of the data settings alone, not the seed.

    Seeds of one sweep cell are then scored on the same sample, so picking the lowest-loss seed
    compares the models rather than their samples (common random numbers): near a phase
    boundary, where candidate losses differ by a few percent, sampling noise would otherwise
    decide the pick.
    """
    make = jax.vmap(lambda h: jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(0), h), _EVAL_TAG))
    return np.asarray(make(jnp.asarray(salts, jnp.uint32)))


def salt_of(s: dict, prefixes: tuple = ("source.", "data.", "sae.")) -> int:
    """A stable 32-bit hash of an SAE's settings under `prefixes` (the source, [data] and [sae]
    by default; train and run settings never salt, as for toy models)."""
    own = {k: v for k, v in s.items() if k.startswith(prefixes)}
    return zlib.crc32(json.dumps(own, sort_keys=True).encode())
