"""Per-feature and per-model geometry of a trained W (SCIENCE.md, "Metrics").

Functions take one m x n matrix W (columns are features) and return NumPy arrays; apply them
per model. A feature with W_i = 0 has no direction: its unit vector is taken as 0, which makes
its superposition and dimensionality 0 (not learned), as the definitions intend.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def norms(W) -> np.ndarray:
    """||W_i|| for every feature i."""
    return np.linalg.norm(W, axis=0)


def _unit(W):
    n = norms(W)
    return W / np.where(n > EPS, n, np.inf)


def overlaps(W) -> np.ndarray:
    """(W^_i . W_j)^2 as an n x n matrix, row i the feature whose direction is used."""
    return (_unit(W).T @ W) ** 2


def superposition(W) -> np.ndarray:
    """sum over j != i of (W^_i . W_j)^2."""
    o = overlaps(W)
    return o.sum(axis=1) - np.diag(o)


def dimensionality(W) -> np.ndarray:
    """D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2 (j = i included); 0 for an unlearned feature."""
    denom = overlaps(W).sum(axis=1)
    return np.where(denom > EPS, norms(W) ** 2 / np.where(denom > EPS, denom, 1.0), 0.0)


def dims_per_feature(W) -> float:
    """D* = m / ||W||_F^2."""
    return W.shape[0] / float(np.sum(np.asarray(W) ** 2))
