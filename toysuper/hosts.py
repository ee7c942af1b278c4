"""Several processes (hosts) training one sweep: they must agree on what is left to train.

After `jax.distributed.initialize()` (toysuper/launch.py) every process runs the same
`toysuper.run`, and all train every chunk together, or their collectives wait for a process
that never comes. Process 0 alone reads and writes the results directory; it decides which
chunks are finished, and a refusal (another configuration in the directory, another run
holding it) stops every process.
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
from jax.experimental import multihost_utils

from toysuper import store
from toysuper.errors import ConfigError


def writer() -> bool:
    """Whether this process writes results (process 0)."""
    return jax.process_index() == 0


def finished_chunks(out, cfg, force, plan, lock=None, fam=None) -> dict:
    """{chunk index: its stored arrays, or None when it must be trained}, agreed by all processes.

    Process 0 takes `lock` (a store.Lock) before it touches the directory. Processes other than
    0 hold no finished chunk's arrays (an empty tuple marks one): they only need to skip it.
    """
    error, done = None, {c.index: None for c in plan}
    if writer():
        try:
            if lock is not None:
                lock.acquire()
            store.prepare(out, cfg, force)
            done = {c.index: store.load_part(out, c.index, np.array(c.ids),
                                             fam.part_shapes(c.shape, len(c.ids)) if fam else None)
                    for c in plan}
        except ConfigError as e:
            error = e
        except OSError as e:  # a read-only or full disk, a folder not ours: before any training
            error = ConfigError(f"cannot write into '{out}' ({e.strerror or type(e).__name__}"
                                f"{f': {e.filename}' if e.filename else ''}); choose another "
                                f"--out or free the disk")
    if jax.process_count() > 1:
        # every process calls the broadcast with an array of the same shape; only process 0's
        # values count, so the others send zeros (they have read nothing)
        mine = np.array([done[c.index] is not None for c in plan], np.int32)
        if error:
            mine[:] = -1
        mask = np.asarray(multihost_utils.broadcast_one_to_all(mine))  # also a barrier
        if (mask < 0).any():
            raise error or ConfigError(f"process 0 refused '{out}' (see its message)")
        if not writer():
            done = {c.index: (() if mask[i] else None) for i, c in enumerate(plan)}
    if error:
        raise error
    return done


# What a collective raises when another process died or was cut off mid-run (gloo's closed
# connection, the coordination service's missing heartbeat)
LOST = (jax.errors.JaxRuntimeError,)


def index() -> int:
    return jax.process_index()


def count() -> int:
    return jax.process_count()


def lost_message(e: Exception) -> str:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return (f"process {index()} of {count()} stopped: another process of this run died or was "
            f"cut off ({first[:300]}); finished chunks are kept: start every process again to "
            f"resume")


def written() -> None:
    """Wait, on every process, until process 0 has written the results.

    Processes other than 0 would otherwise exit at once and wait in JAX's shutdown barrier,
    which gives up (and fails the run) after a fixed time, however long the writing takes.
    """
    if count() > 1:
        multihost_utils.sync_global_devices("toysuper: results written")


def abandon(code: int):
    """Exit now, without JAX's shutdown barrier: for a process that fails alone, the others
    wait in a collective and never reach that barrier. Its heartbeats stop with it, so JAX
    stops the others within their heartbeat timeout (toysuper/launch.py)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
