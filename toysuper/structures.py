"""Naming the geometric structures features form (docs/geometry.md).

In uniform superposition features arrange as regular polytopes in orthogonal subspaces (tegum
products): k features spanning d dimensions, each with dimensionality D_i = d/k. A model's
learned features are linked when their directions interfere; each connected component of that
graph is one structure, named from its size k, the dimension d it spans and its members' D_i.

Settings (module constants, documented here and in the README); a feature with ||W_i|| below
metrics.REPRESENTED is "not learned" and joins no structure.
  LINK     features i and j interfere when |cos(W_i, W_j)| exceeds this. Every regular
           structure is connected through links of |cos| >= 0.31 (pentagon neighbours; the
           tetrahedron's 1/3), and ideal orthogonal subspaces have 0; trained models leave
           0.1-0.2 between subspaces, which a threshold of 0.1 would wrongly join.
  RANK     a component spans the dimensions whose singular values exceed RANK times its largest.
  MATCH    a component gets a polytope's name only when every member's D_i is within MATCH of
           d/k; otherwise it is "other".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from toysuper import metrics

LINK = 0.2
RANK = 0.1
MATCH = 0.1

# (features k, dimensions d) -> name; every member's dimensionality is then d/k
POLYTOPES = {(1, 1): "dedicated", (2, 1): "digon", (3, 2): "triangle", (4, 3): "tetrahedron",
             (5, 2): "pentagon", (8, 3): "square antiprism"}
NAMES = tuple(POLYTOPES.values()) + ("other", "not learned")


def components(W) -> list[np.ndarray]:
    """Connected components (arrays of feature indices) of the learned features' interference graph."""
    W = np.asarray(W, float)
    learned = np.flatnonzero(metrics.norms(W) >= metrics.REPRESENTED)
    unit = W[:, learned] / metrics.norms(W)[learned]
    linked = np.abs(unit.T @ unit) > LINK
    seen, found = np.zeros(len(learned), bool), []
    for start in range(len(learned)):
        if seen[start]:
            continue
        group, frontier = {start}, [start]
        while frontier:
            nxt = np.flatnonzero(linked[frontier].any(axis=0))
            frontier = [j for j in nxt if j not in group]
            group.update(frontier)
        seen[list(group)] = True
        found.append(learned[sorted(group)])
    return found


def span(W) -> int:
    """The number of dimensions the columns of W span (singular values above RANK x the largest)."""
    s = np.linalg.svd(np.asarray(W, float), compute_uv=False)
    return int((s > RANK * s.max()).sum()) if s.size and s.max() > 0 else 0


def label(W) -> np.ndarray:
    """The structure each feature belongs to, one of NAMES."""
    W = np.asarray(W, float)
    dims = metrics.dimensionality(W)
    names = np.full(W.shape[1], "not learned", dtype=object)
    for comp in components(W):
        k, d = len(comp), span(W[:, comp])
        name = POLYTOPES.get((k, d))
        if name is None or np.any(np.abs(dims[comp] - d / k) > MATCH):
            name = "other"
        names[comp] = name
    return names


# Stacks of models with at most this many features are labelled in one batched pass (below);
# wider models one at a time, whose n x n x m component masks would not be small.
BATCHED_MAX_N = 16


def labels(Ws) -> np.ndarray:
    """`label` of every model in a stack [K, m, n] -> names [K, n], batched for small n.

    The same rules as `label`: components come from the transitive closure of the link graph
    (boolean matrix squaring), and each feature's component span from the singular values of
    W with the other features' columns zeroed, which leaves a component's own unchanged.
    """
    Ws = np.asarray(Ws, float)
    K, m, n = Ws.shape
    # a diverged model (run.on_diverge = "keep") has non-finite weights: no structure to read
    diverged = ~np.isfinite(Ws).all(axis=(1, 2))
    if diverged.any():
        names = labels(np.where(diverged[:, None, None], 0.0, Ws))
        names[diverged] = "diverged"
        return names
    if n > BATCHED_MAX_N or K == 0:
        return np.array([label(W) for W in Ws], dtype=object).reshape(K, n)
    norms = metrics.norms(Ws)
    learned = norms >= metrics.REPRESENTED
    unit = Ws / np.where(norms > 0, norms, np.inf)[:, None, :]
    both = learned[:, :, None] & learned[:, None, :]
    reach = ((np.abs(np.swapaxes(unit, 1, 2) @ unit) > LINK) & both) | (np.eye(n, dtype=bool) & both)
    for _ in range(int(np.ceil(np.log2(max(n, 2))))):
        reach = (reach.astype(float) @ reach.astype(float)) > 0
    k = reach.sum(axis=-1)  # [K, n]: size of each feature's component
    s = np.linalg.svd(Ws[:, None, :, :] * reach[:, :, None, :], compute_uv=False)  # [K, n, r]
    top = s.max(axis=-1, keepdims=True)
    d = np.where(top[..., 0] > 0, (s > RANK * top).sum(axis=-1), 0)
    ratio = d / np.maximum(k, 1)
    dims = metrics.dimensionality(Ws)
    off = (reach & (np.abs(dims[:, None, :] - ratio[:, :, None]) > MATCH)).any(axis=-1)
    names = np.full((K, n), "other", dtype=object)
    for (kk, dd), name in POLYTOPES.items():
        names[(k == kk) & (d == dd) & ~off] = name
    names[~learned] = "not learned"
    return names


def table(res) -> pd.DataFrame:
    """structures.parquet: one row per (model, feature), the structure the feature belongs to.

    Labelled a batch of models at a time (models of one sweep can differ in shape).
    """
    frames = []
    for (n, _), ids in res.models.groupby(["n_features", "n_hidden"], sort=False)["model"]:
        ids = ids.to_numpy()
        Ws = np.stack([res.W(int(i)) for i in ids])
        frames.append(pd.DataFrame({"model": np.repeat(ids, n), "feature": np.tile(np.arange(n), len(ids)),
                                    "structure": labels(Ws).ravel()}))
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["model", "feature"], ignore_index=True)
