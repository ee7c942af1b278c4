"""Closed-form learning coefficients, the known answers the LLC estimator (toysuper/llc.py) is
held to.

Reduced-rank regression (Aoyagi & Watanabe 2005, "Stochastic complexities of reduced rank
regression in Bayesian estimation", Neural Networks 18, main theorem): the two-layer linear network
y = B A x with x in R^M, A: H x M, B: N x H, fitted to a true map B0 A0 of rank r <= min(M, N, H),
has the learning coefficient (real log canonical threshold) lambda and multiplicity m

  1. N + r <= M + H, M + r <= N + H and H + r <= M + N:
       M + H + N + r even: lambda = (2 (H + r)(M + N) - (M - N)^2 - (H + r)^2) / 8,   m = 1
       M + H + N + r odd:  lambda = (2 (H + r)(M + N) - (M - N)^2 - (H + r)^2 + 1) / 8, m = 2
  2. M + H < N + r:  lambda = (H M - H r + N r) / 2
  3. N + H < M + r:  lambda = (H N - H r + M r) / 2
  4. M + N < H + r:  lambda = M N / 2

(m = 1 outside the odd branch of case 1). At H = r = min(M, N) every branch gives M N / 2, half
the dimension of the map B A itself: the regular case. Ordinary regression with d parameters
is regular, lambda = d / 2.
"""

from __future__ import annotations

from typing import NamedTuple

from toysuper.errors import ConfigError


class Coefficient(NamedTuple):
    lam: float     # the learning coefficient lambda
    mult: int      # its multiplicity m
    branch: str    # which branch of the formula: "1 even", "1 odd", "2", "3", "4"


def rrr(M: int, H: int, N: int, r: int) -> Coefficient:
    """Aoyagi & Watanabe's learning coefficient of y = B A x (A: H x M, B: N x H) at a true map of
    rank r (module docstring)."""
    for name, v in (("M", M), ("H", H), ("N", N)):
        if not isinstance(v, int) or v < 1:
            raise ConfigError(f"reduced-rank regression {name} = {v!r} must be a positive integer")
    if not isinstance(r, int) or not 0 <= r <= min(M, H, N):
        raise ConfigError(f"reduced-rank regression rank r = {r!r} must be an integer in "
                          f"[0, min(M, H, N) = {min(M, H, N)}]")
    if N + r <= M + H and M + r <= N + H and H + r <= M + N:
        odd = (M + H + N + r) % 2
        lam = (2 * (H + r) * (M + N) - (M - N) ** 2 - (H + r) ** 2 + odd) / 8
        return Coefficient(lam, 2 if odd else 1, "1 odd" if odd else "1 even")
    if M + H < N + r:
        return Coefficient((H * M - H * r + N * r) / 2, 1, "2")
    if N + H < M + r:
        return Coefficient((H * N - H * r + M * r) / 2, 1, "3")
    return Coefficient(M * N / 2, 1, "4")  # M + N < H + r: the only case left


def regression(d: int) -> float:
    """A regular model's learning coefficient: d / 2 for d parameters."""
    if not isinstance(d, int) or d < 1:
        raise ConfigError(f"regression dimension d = {d!r} must be a positive integer")
    return d / 2


class KGon(NamedTuple):
    loss: float    # the population loss of the critical point
    lam: float     # its local learning coefficient


# The regular k-gons of Chen et al. (2023, "Dynamical versus Bayesian phase transitions in a toy
# model of superposition", Lemma 3.1 and its table for c = 6 features in 2 dimensions, one
# feature active at U[0, 1]): the critical points' losses and local learning coefficients. "5+":
# the sixth feature unrepresented with a positive output bias (its ReLU live: W_6 enters the
# loss quadratically, d = 18 parameters less the rotation, 17/2); "5-": that bias negative (the
# output dead: W_6 and b_6 free, 14/2).
KGONS = {"6": KGon(0.04819, 8.5), "5+": KGon(0.06180, 8.5), "5-": KGon(0.06874, 7.0)}
