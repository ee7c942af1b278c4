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
With `preacts=True` a network also returns its pre-activations ({"hidden", "output"}), from which
dead units (a ReLU whose input is never positive) are found (toysuper/optima.py).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from toysuper import data


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
    def __call__(self, x, columns=False, preacts=False):
        W = self.param("W", nn.initializers.xavier_normal(), (self.m, self.n))
        b = self.param("b", nn.initializers.zeros, (self.n,))
        pre_h = _times(W, x, columns)
        pre_out = _times(W.T, self.hidden(pre_h), columns) + _bias(b, x, columns)
        out = self.out(pre_out)
        return (out, {"hidden": pre_h, "output": pre_out}) if preacts else out


class UntiedModel(nn.Module):
    """y = ReLU(W2 ReLU(W1 x) + b): the computation model, free to read and write differently."""

    n: int
    m: int

    @nn.compact
    def __call__(self, x, columns=False, preacts=False):
        W1 = self.param("W1", nn.initializers.xavier_normal(), (self.m, self.n))
        W2 = self.param("W2", nn.initializers.xavier_normal(), (self.n, self.m))
        b = self.param("b", nn.initializers.zeros, (self.n,))
        pre_h = _times(W1, x, columns)
        pre_out = _times(W2, nn.relu(pre_h), columns) + _bias(b, x, columns)
        out = nn.relu(pre_out)
        return (out, {"hidden": pre_h, "output": pre_out}) if preacts else out


class Spec(NamedTuple):
    build: Callable[[int, int], nn.Module]  # (n_features, n_hidden) -> module
    target: Callable = _identity
    doc: str = ""
    embed: str = "W"         # the parameter holding the m x n embedding
    neurons: bool = False    # a ReLU on the hidden layer: its neurons are a privileged basis
    relu_out: bool = True    # a ReLU on the output: an output whose input is never positive is dead


MODELS = {
    "linear": Spec(lambda n, m: TiedModel(n, m), doc="x' = W^T W x + b", relu_out=False),
    "relu": Spec(lambda n, m: TiedModel(n, m, nn.relu), doc="x' = ReLU(W^T W x + b)"),
    "privileged": Spec(lambda n, m: TiedModel(n, m, nn.relu, nn.relu), neurons=True,
                       doc="h = ReLU(W x), x' = ReLU(W^T h + b)"),
    "abs": Spec(UntiedModel, target=jnp.abs, embed="W1", neurons=True,
                doc="h = ReLU(W1 x), y = ReLU(W2 h + b), target |x|"),
}


# kinds with a ReLU on the hidden layer, whose neurons are a privileged basis
NEURON_KINDS = tuple(k for k, spec in MODELS.items() if spec.neurons)


def target_moments(kind: str, law: str, p):
    """(E[target_i], E[target_i^2]) at densities p (NumPy or JAX arrays) under data.law `law`."""
    mean, mean_abs, square = data.MOMENTS[law]
    return (mean_abs if MODELS[kind].target is jnp.abs else mean) * p, square * p


def embedding(kind: str, params: dict):
    """The m x n embedding of a model of `kind` from its flat parameters {'W': ..., 'b': ...}."""
    return params[MODELS[kind].embed]
