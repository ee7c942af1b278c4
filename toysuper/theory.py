"""Analytic phase diagrams of the extra feature (docs/phase_change.md, Wattenberg's derivation).

Every feature has density p; the last ("extra") feature has relative importance r, the others 1.
Each candidate solution is an explicit (W, b) of the ReLU-output model whose expected loss has a
closed form under the paper's data (active magnitude U[0, 1]). The theoretical phase of a cell
(p, r) is the phase of the candidate with the lowest loss; ties go to the earlier candidate.

A dropped feature's best constant output is its mean p/2, leaving its variance p/3 - p^2/4
(E x^2 = p/3). Two features in an antipodal pair (W = [1, -1], b = 0) lose min(x_a, x_b)^2
when both are active, E = 1/6, so (I_a + I_b) p^2 / 6; alone each is reproduced exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

PHASES = ("not represented", "dedicated", "superposition")


class Candidate(NamedTuple):
    name: str
    phase: str         # what the extra feature does in this solution
    loss: callable     # (p, r) -> expected loss, broadcasting over arrays
    weights: callable  # (p) -> (W m x n, b n), the explicit solution

    def __call__(self, p, r):
        """Expected loss; `losses` broadcasts p and r, so every candidate returns one shape."""
        return self.loss(np.asarray(p, float), np.asarray(r, float))


def _dropped(p):
    """Expected squared error of a feature replaced by its mean: Var x = p/3 - p^2/4."""
    return p / 3 - p ** 2 / 4


def _pair(p):
    """Expected squared error per unit importance of an antipodal pair: p^2/6 for each member."""
    return p ** 2 / 6


def _solution(rows, bias_on, p, n):
    W = np.array(rows, float).reshape(-1, n)
    b = np.zeros(n)
    b[list(bias_on)] = p / 2
    return W, b


# n -> candidate solutions. Features are 0..n-1, the extra one last.
CANDIDATES = {
    2: (
        Candidate("extra dropped", "not represented",
                  lambda p, r: r * _dropped(p),
                  lambda p: _solution([[1, 0]], [1], p, 2)),
        Candidate("other dropped, extra dedicated", "dedicated",
                  lambda p, r: _dropped(p),
                  lambda p: _solution([[0, 1]], [0], p, 2)),
        Candidate("antipodal pair", "superposition",
                  lambda p, r: (1 + r) * _pair(p),
                  lambda p: _solution([[1, -1]], [], p, 2)),
    ),
    3: (
        Candidate("extra dropped", "not represented",
                  lambda p, r: r * _dropped(p),
                  lambda p: _solution([[1, 0, 0], [0, 1, 0]], [2], p, 3)),
        Candidate("other dropped, extra dedicated", "dedicated",
                  lambda p, r: _dropped(p),
                  lambda p: _solution([[1, 0, 0], [0, 0, 1]], [1], p, 3)),
        Candidate("others paired, extra dedicated", "dedicated",
                  lambda p, r: 2 * _pair(p),
                  lambda p: _solution([[1, -1, 0], [0, 0, 1]], [], p, 3)),
        Candidate("extra in an antipodal pair", "superposition",
                  lambda p, r: (1 + r) * _pair(p),
                  lambda p: _solution([[1, 0, 0], [0, 1, -1]], [], p, 3)),
    ),
}


def candidates(n: int) -> tuple[Candidate, ...]:
    if n not in CANDIDATES:
        raise ValueError(f"the analytic phase diagram exists for n_features in {sorted(CANDIDATES)}, "
                         f"not n_features = {n}")
    return CANDIDATES[n]


def losses(n: int, p, r) -> np.ndarray:
    """Expected loss of every candidate: array [candidate, *broadcast(p, r).shape]."""
    p, r = np.broadcast_arrays(np.asarray(p, float), np.asarray(r, float))
    return np.stack([c(p, r) for c in candidates(n)])


def best(n: int, p, r) -> np.ndarray:
    """Index of the lowest-loss candidate for each (p, r)."""
    return np.argmin(losses(n, p, r), axis=0)


def phase(n: int, p, r) -> np.ndarray:
    """The extra feature's theoretical phase (a string from PHASES) for each (p, r)."""
    names = np.array([c.phase for c in candidates(n)], dtype=object)
    return names[best(n, p, r)]


def phase_map(n: int, densities, importances) -> np.ndarray:
    """Phase over a grid: array [len(densities), len(importances)] of PHASES strings."""
    p, r = np.meshgrid(np.asarray(densities, float), np.asarray(importances, float), indexing="ij")
    return phase(n, p, r)


def superposition_edge(n: int, r) -> np.ndarray:
    """The largest density at which the extra feature is in superposition, for each r (0 if never).

    Solves the quadratic boundary of the antipodal pair against the better of the two other
    one-feature losses, both of the form a p - c p^2: the pair wins below p = a / (c + (1+r)/6).
    """
    r = np.asarray(r, float)
    # Against "extra dropped": r (p/3 - p^2/4); against "other dropped": p/3 - p^2/4.
    # The pair must beat both, so its edge is the smaller of the two crossings.
    s = np.minimum(r, 1.0)
    edge = (s / 3) / (s / 4 + (1 + r) / 6)
    if n == 3:
        # ...and also "others paired" (p^2/3), which the pair beats only when (1+r)/6 < 1/3.
        edge = np.where(r < 1, edge, 0.0)
    return edge
