"""The toy networks of SCIENCE.md, each written for one network and one example.

Batches of examples and sweeps of models are added with `jax.vmap` in train.py. Every model has
an embedding `W` (m x n, the matrix the metrics read) and an output bias `b` (n); a model's
`target` is what its output should reproduce (x itself, or |x| for the computation task).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import jax.numpy as jnp


class TiedModel(nn.Module):
    """x' = out(W^T W x + b), W Xavier-normal and b = 0 at init, as in the reference notebook."""

    n: int
    m: int
    out: Callable = lambda z: z

    @nn.compact
    def __call__(self, x_N):
        W = self.param("W", nn.initializers.xavier_normal(), (self.m, self.n))
        b = self.param("b", nn.initializers.zeros, (self.n,))
        return self.out(W.T @ (W @ x_N) + b)


class Spec(NamedTuple):
    build: Callable[[int, int], nn.Module]  # (n_features, n_hidden) -> module
    target: Callable = lambda x: x
    doc: str = ""


MODELS = {
    "linear": Spec(lambda n, m: TiedModel(n, m), doc="x' = W^T W x + b"),
    "relu": Spec(lambda n, m: TiedModel(n, m, nn.relu), doc="x' = ReLU(W^T W x + b)"),
}


def embedding(params) -> jnp.ndarray:
    """The m x n matrix whose columns are the features' directions in the hidden space."""
    return params["params"]["W"]
