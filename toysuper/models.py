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
import numpy as np

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


def tied_baselines(n: int, m: int, const, gain) -> dict:
    """{baseline name: parameters} of a tied model (x' = out(W^T hidden(W x) + b)).

    constant: W = 0, every output at its constant b_i = const_i. top-k exact: the k = min(m, n)
    features of largest `gain` (what reproducing one exactly saves over its constant) each on its
    own hidden dimension (a unit column of W), the rest at their constant.
    """
    k = min(m, n)
    top = np.argsort(-gain, kind="stable")[:k]
    W = np.zeros((m, n))
    W[np.arange(k), top] = 1.0
    b = const.copy()
    b[top] = 0.0
    return {"constant": {"W": np.zeros((m, n)), "b": const}, "top-k exact": {"W": W, "b": b}}


def paired_baselines(n: int, m: int, const, gain) -> dict:
    """{baseline name: parameters} of the computation model: as tied_baselines, but each of the
    k = min(m // 2, n) computed features on a pair of neurons, ReLU(x_i) and ReLU(-x_i), which
    W2 adds back up to |x_i|."""
    k = min(m // 2, n)
    top = np.argsort(-gain, kind="stable")[:k]
    W1, W2 = np.zeros((m, n)), np.zeros((n, m))
    W1[2 * np.arange(k), top], W1[2 * np.arange(k) + 1, top] = 1.0, -1.0
    W2[top, 2 * np.arange(k)], W2[top, 2 * np.arange(k) + 1] = 1.0, 1.0
    b = const.copy()
    b[top] = 0.0
    return {"constant": {"W1": np.zeros((m, n)), "W2": np.zeros((n, m)), "b": const},
            "top-k exact": {"W1": W1, "W2": W2, "b": b}}


class Spec(NamedTuple):
    """Everything about one model kind. Code elsewhere reads these fields and never a kind's name
    (a figure or table about one kind's science aside), so a kind is added by one entry in MODELS."""

    build: Callable[[int, int], nn.Module]  # (n_features, n_hidden) -> module
    target: Callable = _identity
    doc: str = ""
    embed: str = "W"         # the parameter holding the m x n embedding
    neurons: bool = False    # a ReLU on the hidden layer: its neurons are a privileged basis
    relu_out: bool = True    # a ReLU on the output: an output whose input is never positive is dead
    # one matrix W reads and writes every feature: each non-bias parameter's columns are the
    # features' directions, which weight growth (train.weight_decay < 0, train._decay) pulls to
    # unit norm, and the analytic attacks of adversarial.py read
    tied: bool = True
    # (n, m, const [n], gain [n]) -> {"constant": params, "top-k exact": params}: the trivial
    # exact solutions a trained model must beat (toysuper/optima.py)
    baselines: Callable = tied_baselines
    law: str = ""            # the data.law its task needs ("": any), and why (for the error)
    law_reason: str = ""
    readable: bool = True    # an SAE can read its hidden states (source.kind = "model", sources.py)
    title: str = ""          # its name in figures ("": the kind's name)
    line: str = "-"          # its line style in every figure (colour means density)
    marker: str = "o"        # its scatter marker in every figure


# In figures, kinds come in this order.
MODELS = {
    "linear": Spec(lambda n, m: TiedModel(n, m), doc="x' = W^T W x + b", relu_out=False,
                   title="linear model", line="--", marker="s"),
    "relu": Spec(lambda n, m: TiedModel(n, m, nn.relu), doc="x' = ReLU(W^T W x + b)",
                 title="ReLU output model", line="-", marker="o"),
    "privileged": Spec(lambda n, m: TiedModel(n, m, nn.relu, nn.relu), neurons=True,
                       doc="h = ReLU(W x), x' = ReLU(W^T h + b)",
                       title="ReLU hidden layer", line=":", marker="^"),
    # not readable: its signed features write ReLU(W_i) or ReLU(-W_i) by sign, two directions a
    # feature, which the SAE scores (sources.true_features) do not model
    "abs": Spec(UntiedModel, target=jnp.abs, embed="W1", neurons=True, tied=False,
                baselines=paired_baselines, law="signed",
                law_reason="computes |x|, which is x itself for magnitudes >= 0",
                readable=False, doc="h = ReLU(W1 x), y = ReLU(W2 h + b), target |x|",
                title="computation model (|x|)", line="-.", marker="D"),
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
