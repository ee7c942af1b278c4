"""The toy networks of SCIENCE.md, each written for one network.

A network maps x[n] to x'[n], or a batch x[n, B] (examples as columns) to x'[n, B]. Features
come first because the batch is the long axis: laid out last, it is what elementwise work
vectorises over, which for the phase models (n = 2) is 3x faster than a last axis of 2 features;
and a batch's products are single GEMMs. Sweeps of models are added in train.py. Every model has
an embedding (m x n, its columns the features' directions in the hidden space, the matrix the
feature metrics read; its rows the hidden neurons' input weights) and an output bias `b` (n).
A model's `target` is what its output should reproduce: x itself, or |x| for the computation task.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import jax.numpy as jnp


def _identity(z):
    return z


def _column(b, x):
    """The bias as a column when x is a batch of columns."""
    return b[:, None] if x.ndim == 2 else b


class TiedModel(nn.Module):
    """x' = out(W^T hidden(W x) + b), W Xavier-normal and b = 0 at init, as in the reference notebook.

    `hidden = relu` gives the privileged-basis model: a ReLU on the hidden layer makes its m
    neurons, the rows of W, a basis the model can be read in.
    """

    n: int
    m: int
    out: Callable = _identity
    hidden: Callable = _identity

    @nn.compact
    def __call__(self, x):
        W = self.param("W", nn.initializers.xavier_normal(), (self.m, self.n))
        b = self.param("b", nn.initializers.zeros, (self.n,))
        return self.out(W.T @ self.hidden(W @ x) + _column(b, x))


class UntiedModel(nn.Module):
    """y = ReLU(W2 ReLU(W1 x) + b): the computation model, free to read and write differently."""

    n: int
    m: int

    @nn.compact
    def __call__(self, x):
        W1 = self.param("W1", nn.initializers.xavier_normal(), (self.m, self.n))
        W2 = self.param("W2", nn.initializers.xavier_normal(), (self.n, self.m))
        b = self.param("b", nn.initializers.zeros, (self.n,))
        return nn.relu(W2 @ nn.relu(W1 @ x) + _column(b, x))


class Spec(NamedTuple):
    build: Callable[[int, int], nn.Module]  # (n_features, n_hidden) -> module
    target: Callable = _identity
    doc: str = ""
    embed: str = "W"         # the parameter holding the m x n embedding
    neurons: bool = False    # a ReLU on the hidden layer: its neurons are a privileged basis


MODELS = {
    "linear": Spec(lambda n, m: TiedModel(n, m), doc="x' = W^T W x + b"),
    "relu": Spec(lambda n, m: TiedModel(n, m, nn.relu), doc="x' = ReLU(W^T W x + b)"),
    "privileged": Spec(lambda n, m: TiedModel(n, m, nn.relu, nn.relu), neurons=True,
                       doc="h = ReLU(W x), x' = ReLU(W^T h + b)"),
    "abs": Spec(UntiedModel, target=jnp.abs, embed="W1", neurons=True,
                doc="h = ReLU(W1 x), y = ReLU(W2 h + b), target |x|"),
}


def embedding(kind: str, params: dict):
    """The m x n embedding of a model of `kind` from its flat parameters {'W': ..., 'b': ...}."""
    return params[MODELS[kind].embed]
