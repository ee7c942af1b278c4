"""How well an SAE recovers the true features, from its decoder and its evaluation sums.

Directions are compared by |cos| between a latent's decoder column and a true feature's
direction (both unit length):
  mcc        mean |cos| over a one-to-one matching of latents to features that maximises the
             total (Hungarian, scipy's linear_sum_assignment); min(d, n) pairs. In few dimensions
             random directions already score high (five random directions in 2-D against the
             five evenly spaced ones of a pentagon: about 0.92; against five random ones: 0.87),
             so small sources are judged by angles (`worst_angle`) as well.
  mmcs       mean over true features of their best |cos| over all latents.
  recovered  share of true features with some latent at |cos| >= 0.99 (recovered_90: >= 0.9).
And from the evaluation sample: the loss against the trivial solution (the decoder bias alone at
the mean activation, loss = the activations' total variance), the fraction of variance explained,
L0 against the true L0, dead latents (firing on none of the sample) and shrinkage
(sum <x_hat, h> / sum ||h||^2: 1 when reconstructions keep their length, below 1 when shrunk).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

# an SAE loses to the trivial solution when its loss is above the activations' variance by
# more than this fraction (the evaluation sample is shared, so the comparison is paired)
TRIVIAL_MARGIN = 0.001


def unit(A: np.ndarray) -> np.ndarray:
    """Columns scaled to unit length; zero columns stay zero."""
    norms = np.linalg.norm(A, axis=0, keepdims=True)
    return A / np.where(norms > 0, norms, 1)


def cosines(decoder: np.ndarray, features: np.ndarray) -> np.ndarray:
    """|cos| [d, n] between the decoder's columns [m, d] and the true features [m, n]."""
    return np.abs(unit(decoder).T @ unit(features))


def match(decoder, features) -> tuple[np.ndarray, np.ndarray]:
    """(latent matched to each feature or -1, its |cos| or 0): the one-to-one matching of
    latents to features with the largest total |cos|."""
    C = cosines(decoder, features)
    rows, cols = linear_sum_assignment(C, maximize=True)
    latent = np.full(C.shape[1], -1)
    latent[cols] = rows
    return latent, np.where(latent >= 0, C[np.maximum(latent, 0), np.arange(C.shape[1])], 0.0)


def mcc(decoder, features) -> float:
    latent, cos = match(decoder, features)
    return float(cos[latent >= 0].mean())


def mmcs(decoder, features) -> float:
    return float(cosines(decoder, features).max(axis=0).mean())


def recovered(decoder, features, at: float = 0.99) -> float:
    return float((cosines(decoder, features).max(axis=0) >= at).mean())


def random_mcc(m: int, n: int, d: int, draws: int = 200, seed: int = 0) -> float:
    """The mcc of d random unit directions against n random ones in m dimensions (mean of draws):
    what an SAE that learnt nothing scores, to read an mcc against."""
    rng = np.random.default_rng(seed)
    return float(np.mean([mcc(rng.standard_normal((m, d)), rng.standard_normal((m, n)))
                          for _ in range(draws)]))


def chance_mcc(features: np.ndarray, d: int, draws: int = 200, seed: int = 0) -> float:
    """The mcc of d random unit directions against these true features (mean of draws): chance
    for a given source, such as a toy model's evenly spaced pentagon."""
    rng = np.random.default_rng(seed)
    return float(np.mean([mcc(rng.standard_normal((features.shape[0], d)), features)
                          for _ in range(draws)]))


def scores(decoder, features, sums: dict, examples: int) -> dict:
    """One SAE's row of saes.parquet from its decoder [m, d], true features [m, n] and its
    evaluation sums (sae_train.Scores as a dict of NumPy values over `examples` activations)."""
    C = cosines(decoder, features)
    latent, cos = match(decoder, features)
    best = C.max(axis=0)
    mean = sums["h_sum"] / examples
    variance = sums["h_sq"] / examples - float(mean @ mean)
    mse, penalty = sums["mse"] / examples, sums["penalty"] / examples
    loss = mse + penalty
    return {
        "loss": loss, "mse": mse, "penalty": penalty, "trivial_loss": variance,
        "loss_ratio": loss / variance if variance > 0 else np.nan,
        "beats_trivial": bool(loss <= variance * (1 + TRIVIAL_MARGIN)),
        "fve": 1 - mse / variance if variance > 0 else np.nan,
        "l0": sums["l0"] / examples, "true_l0": sums["true_l0"] / examples,
        "dead": int((sums["fires"] == 0).sum()), "dead_share": float((sums["fires"] == 0).mean()),
        "shrinkage": sums["dot"] / sums["h_sq"] if sums["h_sq"] > 0 else np.nan,
        "mcc": float(cos[latent >= 0].mean()), "mmcs": float(best.mean()),
        "recovered": float((best >= 0.99).mean()), "recovered_90": float((best >= 0.9).mean()),
        # the largest angle between a true feature and its matched latent, in degrees
        "worst_angle": float(np.degrees(np.arccos(np.clip(cos[latent >= 0].min(), -1, 1)))),
    }


def latents(decoder, features, fires, examples: int) -> dict:
    """Columns of latents.parquet for one SAE: per latent its firing frequency, decoder norm,
    best-aligned feature and |cos|, and the feature the matching gave it (-1: none)."""
    C = cosines(decoder, features)
    latent, cos = match(decoder, features)
    matched = np.full(C.shape[0], -1)
    matched[latent[latent >= 0]] = np.flatnonzero(latent >= 0)
    return {"latent": np.arange(C.shape[0]), "frequency": np.asarray(fires) / examples,
            "dead": np.asarray(fires) == 0, "decoder_norm": np.linalg.norm(decoder, axis=0),
            "best_feature": C.argmax(axis=1), "best_cos": C.max(axis=1),
            "matched_feature": matched,
            "matched_cos": np.where(matched >= 0, C[np.arange(C.shape[0]), np.maximum(matched, 0)], 0.0)}


def absorption(pairs: np.ndarray) -> dict:
    """From the evaluation's pair counts [pairs, 4] (sae_train.Scores.pairs), per (parent,
    child): how often the parent's latent is silent when the child fires, when the parent fires
    alone, and `absorption`, their difference (the silence the child causes; 0 when none)."""
    pairs = np.asarray(pairs, float).reshape(-1, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        with_child = pairs[:, 1] / pairs[:, 0]
        alone = pairs[:, 3] / pairs[:, 2]
    return {"silent_with_child": with_child, "silent_alone": alone,
            "absorption": np.clip(with_child - alone, 0, None)}
