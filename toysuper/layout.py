"""How a chunk of members is laid over the machine, for every family.

The member axis of a chunk is split evenly over every visible device (`jax.shard_map` on a
one-axis Mesh, across hosts too after `jax.distributed.initialize()`); on each device, members
are vmapped in groups (`group_size`) and the groups run one after another (`jax.lax.map`). A
group's batch is sized to stay in cache: on a CPU a sweep vmapped whole streams every
elementwise pass through memory, and 20 MB arrays at the ~5 GB/s of our 2-core machine cost
more than the matrix products. Each member is computed by the same group program whatever
shares its chunk or device, so its result does not depend on them.
"""

from __future__ import annotations

import collections
import math
import os
from typing import NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# How often each shape's programs were traced; tests assert one trace per sweep shape.
TRACES: collections.Counter = collections.Counter()

# A group of members vmapped together holds about this many batch entries (batch x n_features
# per toy model): 1 MiB per float32 array, so a step's few live arrays stay in L2/L3 cache.
GROUP_ENTRIES = 2 ** 18
# At least two: a group of one model trained ~10% slower on XLA:CPU in workload (a) of
# benchmarks/speed.py (unbatched dots).
MIN_GROUP, MAX_GROUP = 2, 64
# On accelerators: up to 2^26 entries (256 MiB per float32 array) and 16,384 members per group.
ACCELERATOR_ENTRIES = 2 ** 26


def group_size(entries: int) -> int:
    """Members vmapped together on a device, each with `entries` batch entries per step; a power
    of two from MIN_GROUP to MAX_GROUP.

    On a GPU or TPU there is no cache to stay within and the device wants wide programs, so
    groups are sized by ACCELERATOR_ENTRIES (a guess, not yet measured on a GPU).
    """
    cpu = jax.devices()[0].platform == "cpu"
    total, most = (GROUP_ENTRIES, MAX_GROUP) if cpu else (ACCELERATOR_ENTRIES, 2 ** 14)
    fit = max(1, total // entries)
    return int(min(max(2 ** int(math.log2(fit)), MIN_GROUP), most))


def width_quantum(group: int) -> int:
    """A chunk's member axis is a multiple of this: whole groups of `group` on every device."""
    return group * len(jax.devices())


def use_all_cpu_cores() -> None:
    """One JAX CPU device per core, so that sweeps split their models over the cores.

    Call before JAX first runs anything (the `toysuper` command does). XLA:CPU runs a single
    device's small products and elementwise loops mostly on one thread; with a device per core
    each core trains its own share of the models. Left alone when the user chose a count
    (XLA_FLAGS or JAX_NUM_CPU_DEVICES) or JAX has already started.
    """
    if ("xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
            or "JAX_NUM_CPU_DEVICES" in os.environ):
        return
    try:  # the cores this process may use (a batch job's share, not the whole machine)
        jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
    except RuntimeError:  # JAX already running: keep its devices
        pass


def mesh() -> Mesh:
    """Every visible device (all hosts' after jax.distributed.initialize) on one axis, "models"."""
    return Mesh(np.array(jax.devices()), ("models",))


class Programs(NamedTuple):
    init: callable
    segment: callable
    evaluate: callable


def over_models(shape, one, mapped: int, n_args: int, group: int, name: str):
    """one(shape, *args) over a chunk: the first `mapped` of its n_args args have a member axis,
    which is split over the devices and, on each, run in groups of `group` members (vmapped);
    the rest are shared. Traces are counted in TRACES[(shape, name)]."""
    split = PartitionSpec("models")

    def local(*args):  # the members on one device
        TRACES[(shape, name)] += 1
        per_model, shared = args[:mapped], args[mapped:]
        return jax.lax.map(lambda a: one(shape, *a, *shared), per_model, batch_size=group)
    specs = (split,) * mapped + (PartitionSpec(),) * (n_args - mapped)
    # check_vma off: the per-member code knows nothing of devices and needs no collectives
    return jax.shard_map(local, mesh=mesh(), in_specs=specs, out_specs=split, check_vma=False)


def place(hp):
    """Per-member inputs as global arrays split over the mesh (each host holds all of hp)."""
    sharding = NamedSharding(mesh(), PartitionSpec("models"))
    return jax.tree.map(
        lambda a: jax.make_array_from_callback(a.shape, sharding, lambda idx, a=a: a[idx]),
        jax.tree.map(np.asarray, hp))


def to_host(tree):
    """NumPy copies of (possibly multi-host) arrays, gathered in full on every host."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(lambda a: np.array(a, copy=True), tree)
