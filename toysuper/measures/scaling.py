"""Measurements for claims: loss against width (Liu, Liu & Gore 2025; docs/width_scaling.md).

A cell is named by its alpha in the lab's convention (p_i ~ i^-(1 + alpha_lab); the paper's
alpha_paper = 1 + alpha_lab) and its weight decay; the start (train.weight_init) is the
experiment's, one per results directory.
"""

from __future__ import annotations

import numpy as np

from toysuper import metrics, scaling
from toysuper.measures.registry import measure


def _cell(res, alpha_lab: float, weight_decay: float, m_from: int = 0):
    """The kept model of every width >= m_from of the cell, by width."""
    kept = scaling.kept_widths(res)
    cell = kept[np.isclose(kept["alpha_lab"], alpha_lab)
                & np.isclose(kept["weight_decay"], weight_decay)
                & (kept["n_hidden"] >= m_from)]
    return cell.sort_values("n_hidden")


@measure("width_exponent", "a of loss ~ m^-a, least squares over the kept model of every width "
         ">= m_from of the cell (alpha_lab, weight_decay); of = 'trained' or 'exact' (the top-m "
         "exact solution's loss)")
def width_exponent(res, alpha_lab: float, weight_decay: float, m_from: int = 0,
                   of: str = "trained") -> float:
    cell = _cell(res, alpha_lab, weight_decay, m_from)
    if len(cell) < 2:
        return float("nan")
    loss = cell["loss"] if of == "trained" else cell["exact_loss"]
    return scaling.fit(cell["n_hidden"], loss)[0]


@measure("width_exponent_ci_half", "half the width of the 95% confidence interval of "
         "width_exponent (Student t on the slope's standard error)")
def width_exponent_ci_half(res, alpha_lab: float, weight_decay: float, m_from: int = 0) -> float:
    cell = _cell(res, alpha_lab, weight_decay, m_from)
    if len(cell) < 3:
        return float("nan")
    a, _, _, se = scaling.fit_se(cell["n_hidden"], cell["loss"])
    lo, hi = scaling.ci95(a, se, len(cell))
    return (hi - lo) / 2


@measure("features_kept_per_dim", "features with ||W_i|| > 0.5 per hidden dimension, kept model "
         "of width m of the cell (alpha_lab, weight_decay); m = 0: the largest width")
def features_kept_per_dim(res, alpha_lab: float, weight_decay: float, m: int = 0) -> float:
    cell = _cell(res, alpha_lab, weight_decay)
    if cell.empty:
        return float("nan")
    row = cell.iloc[-1] if m == 0 else cell[cell["n_hidden"] == m].iloc[0]
    norms = res.features.loc[res.features["model"] == row["model"], "norm"]
    return float((norms > metrics.REPRESENTED).sum() / row["n_hidden"])


@measure("features_kept_share_min", "the smallest share, over every width of the weight decay's "
         "cells (every alpha), of features with ||W_i|| > 0.5 in the kept model")
def features_kept_share_min(res, weight_decay: float) -> float:
    kept = scaling.kept_widths(res)
    ids = kept.loc[np.isclose(kept["weight_decay"], weight_decay), "model"]
    feats = res.features[res.features["model"].isin(ids)]
    if feats.empty:
        return float("nan")
    return float((feats["norm"] > metrics.REPRESENTED).groupby(feats["model"]).mean().min())
