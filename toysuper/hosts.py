"""Several processes (hosts) training one sweep: they must agree on what is left to train.

After `jax.distributed.initialize()` every process runs the same `toysuper.run`, and all train
every chunk together, or their collectives wait forever. Process 0 alone reads and writes the
results directory; it decides which chunks are finished, and a refusal (another configuration
in the directory) stops every process.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.experimental import multihost_utils

from toysuper import store
from toysuper.errors import ConfigError


def writer() -> bool:
    """Whether this process writes results (process 0)."""
    return jax.process_index() == 0


def finished_chunks(out, cfg, force, plan) -> dict:
    """{chunk index: its stored arrays, or None when it must be trained}, agreed by all processes.

    Processes other than 0 hold no finished chunk's arrays (an empty tuple marks one): they only
    need to skip it.
    """
    error, done = None, {}
    if writer():
        try:
            store.prepare(out, cfg, force)
            done = {c.index: store.load_part(out, c.index, np.array(c.ids)) for c in plan}
        except ConfigError as e:
            error = e
    if jax.process_count() > 1:
        mask = (np.full(len(plan), -1, np.int32) if error else
                np.array([done[c.index] is not None for c in plan], np.int32))
        mask = np.asarray(multihost_utils.broadcast_one_to_all(mask))  # also a barrier
        if (mask < 0).any():
            raise error or ConfigError(f"process 0 refused '{out}' (see its message)")
        if not writer():
            done = {c.index: (() if mask[i] else None) for i, c in enumerate(plan)}
    if error:
        raise error
    return done
