"""Strict JAX for every test: implicit rank promotion is an error (as equinox and big_vision test).

One persistent compilation cache for the whole session: the same programs are compiled again
and again by the processes a test starts (the multi-host launchers and their workers, the CLI in
a subprocess, the notebooks' kernels) and after a test clears the in-process caches. The cache
stores XLA's compiled executable, so a program loaded from it computes exactly what a fresh
compile does; it saves the compile, nothing else. JAX_COMPILATION_CACHE_DIR, when already set,
is used as it is (a developer may keep one across runs); otherwise a temporary folder serves
this session and is removed at its end. The size limit turns on JAX's file lock, so that one
process never reads an entry another is still writing.
"""

import os
import shutil
import tempfile

_OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    # set before JAX is imported (it reads these at import) and inherited by every subprocess;
    # under pytest-xdist the workers inherit the controller's folder, so they share it too
    _OWN_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="toysuper-jax-cache-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(8 * 2 ** 30))

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
# Start JAX now, on its default single CPU device, so that a test calling the CLI in-process
# (which would give JAX one device per core if it started first) cannot change the device
# count for the tests after it. Several devices are tested in subprocesses (test_scale.py).
jax.devices()


def pytest_unconfigure(config):
    if _OWN_CACHE and not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture
def tiny():
    """A small experiment as a dict: 5 features in 2 dimensions, a few hundred steps."""
    return {
        "name": "tiny",
        "model": {"kind": "relu", "n_features": 5, "n_hidden": 2},
        "data": {"importance": {"decay": 0.9}},
        "train": {"steps": 200, "batch": 256, "log_every": 50, "eval_batch": 1024, "lr": 3e-3},
        "sweep": {"data.density": [1.0, 0.3, 0.1]},
    }


@pytest.fixture
def chunky(tiny):
    """`tiny` with 20 features at batch 1024: groups of 8 models (train.group_size), so that
    run.chunk_size = 8 cuts a sweep into several chunks."""
    return dict(tiny, model={"kind": "relu", "n_features": 20, "n_hidden": 5},
                train=dict(tiny["train"], batch=1024, steps=100))
