"""Strict JAX for every test: implicit rank promotion is an error (as equinox and big_vision test)."""

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")
# Start JAX now, on its default single CPU device, so that a test calling the CLI in-process
# (which would give JAX one device per core if it started first) cannot change the device
# count for the tests after it. Several devices are tested in subprocesses (test_scale.py).
jax.devices()


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
