"""Per-feature and per-model geometry of a trained W (docs/data_and_models.md, "Metrics").

Functions take one m x n matrix W (columns are features), or a stack [..., m, n] of them, and
return NumPy arrays. A feature with W_i = 0 has no direction: its unit vector is taken as 0,
which makes its superposition and dimensionality 0 (not learned), as the definitions intend.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12
# A feature counts as represented (learned) when ||W_i|| is at least this: half of the unit
# norm an exactly reproduced feature has. Phases, structures and figures all use this one rule.
REPRESENTED = 0.5


def norms(W) -> np.ndarray:
    """||W_i|| for every feature i."""
    return np.linalg.norm(W, axis=-2)


def _unit(W):
    n = norms(W)
    return W / np.where(n > EPS, n, np.inf)[..., None, :]


def overlaps(W) -> np.ndarray:
    """(W^_i . W_j)^2 as an n x n matrix, row i the feature whose direction is used."""
    return (np.swapaxes(_unit(W), -1, -2) @ W) ** 2


def superposition(W) -> np.ndarray:
    """sum over j != i of (W^_i . W_j)^2."""
    o = overlaps(W)
    return o.sum(axis=-1) - np.diagonal(o, axis1=-2, axis2=-1)


def dimensionality(W) -> np.ndarray:
    """D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2 (j = i included); 0 for an unlearned feature."""
    denom = overlaps(W).sum(axis=-1)
    return np.where(denom > EPS, norms(W) ** 2 / np.where(denom > EPS, denom, 1.0), 0.0)


def dims_per_feature(W):
    """D* = m / ||W||_F^2 (a float for one W, an array for a stack); inf for W = 0, which
    represents no feature at all."""
    W = np.asarray(W)
    with np.errstate(divide="ignore"):
        d = W.shape[-2] / np.sum(W ** 2, axis=(-2, -1))
    return float(d) if W.ndim == 2 else d
