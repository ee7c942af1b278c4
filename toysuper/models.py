"""The toy networks of docs/data_and_models.md, each written for one network.

A network maps x[n] to x'[n], or a batch to a batch: x[B, n] with examples as rows, or with
`columns=True` x[n, B] with examples as columns. Which is faster depends on the model's size
(train.Shape.columns picks):
XLA:CPU's matrix products run ~1.4x faster on rows, but elementwise work vectorises over the
last axis, and a last axis of n = 2 features makes the phase models' steps 3x slower than one
of B examples. Sweeps of models are added in train.py. Every model has
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


def _times(W, x, columns):
    """W x for every example of x (rows or columns)."""
    return W @ x if columns else x @ W.T


def _bias(b, x, columns):
    if x.ndim == 1:
        return b
    return b[:, None] if columns else b[None, :]


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
    def __call__(self, x, columns=False):
        W = self.param("W", nn.initializers.xavier_normal(), (self.m, self.n))
        b = self.param("b", nn.initializers.zeros, (self.n,))
        h = self.hidden(_times(W, x, columns))
        return self.out(_times(W.T, h, columns) + _bias(b, x, columns))


class UntiedModel(nn.Module):
    """y = ReLU(W2 ReLU(W1 x) + b): the computation model, free to read and write differently."""

    n: int
    m: int

    @nn.compact
    def __call__(self, x, columns=False):
        W1 = self.param("W1", nn.initializers.xavier_normal(), (self.m, self.n))
        W2 = self.param("W2", nn.initializers.xavier_normal(), (self.n, self.m))
        b = self.param("b", nn.initializers.zeros, (self.n,))
        h = nn.relu(_times(W1, x, columns))
        return nn.relu(_times(W2, h, columns) + _bias(b, x, columns))


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


# kinds with a ReLU on the hidden layer, whose neurons are a privileged basis
NEURON_KINDS = tuple(k for k, spec in MODELS.items() if spec.neurons)


def embedding(kind: str, params: dict):
    """The m x n embedding of a model of `kind` from its flat parameters {'W': ..., 'b': ...}."""
    return params[MODELS[kind].embed]
