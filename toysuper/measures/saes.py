"""Measurements for claims: SAEs (sae_intro, sae_dictionary, sae_absorption; docs/saes.md).

Each reads saes.parquet beside the literature's scores (the derived tables sae_metrics and
chanin_absorption, sae_metrics.py) and the lab's absorption table, restricted to the SAEs of one
setting: `kind`, its sparsity knob `knob` (k, the L1 or the L0 coefficient), `init`,
`resample_every` and a range of d_sae / n. Means are over the SAEs selected (seeds, widths).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from toysuper import sae_scores, tables
from toysuper.measures.registry import measure

KNOB = {"relu_l1": "l1_coefficient", "jumprelu": "l0_coefficient", "topk": "k", "batchtopk": "k",
        "matryoshka": "k"}


def frame(res) -> pd.DataFrame:
    """Trained SAEs with knob, ratio (d_sae / n), l0_ratio (L0 / true L0), the sae_metrics
    columns and, with a hierarchy, the mean over pairs of the lab's absorption and Chanin's."""
    df = res.saes[~res.saes["diverged"]].copy()
    df["knob"] = [float(r[KNOB[r["kind"]]]) for _, r in df.iterrows()]
    df["ratio"] = df["width"] / df["source_n_features"]
    df["l0_ratio"] = df["l0"] / df["true_l0"]
    df = df.merge(tables.get(res, "sae_metrics"), on="sae", how="left")
    if "absorption" in res.derived:
        lab = res.derived["absorption"].groupby("sae")[
            ["absorption", "silent_alone", "silent_with_child"]].mean()
        chanin = tables.get(res, "chanin_absorption").copy()
        chanin["excess_cos"] = chanin["child_parent_cos"] - chanin["true_child_parent_cos"]
        per = chanin.groupby("sae")[["chanin_absorption", "absorbed", "parent_silent", "excess_cos"]].mean()
        df = df.join(lab, on="sae").join(per, on="sae")
    return df


def select(df, kind=None, knob=None, init=None, resample_every=None, min_ratio=0.0,
           max_ratio=math.inf) -> pd.DataFrame:
    """The SAEs of one setting (None: any)."""
    keep = (df["ratio"] >= min_ratio) & (df["ratio"] <= max_ratio)
    for col, v in (("kind", kind), ("init", init), ("resample_every", resample_every)):
        if v is not None:
            keep &= df[col] == v
    if knob is not None:
        keep &= np.isclose(df["knob"], float(knob))
    out = df[keep]
    if out.empty:
        raise ValueError(f"no SAE has kind={kind}, knob={knob}, init={init}, "
                         f"resample_every={resample_every}, d_sae/n in [{min_ratio}, {max_ratio}]")
    return out


@measure("sae_mean", "mean of a column (saes.parquet, sae_metrics, absorption) over the SAEs of a "
                     "setting (kind, knob, init, resample_every, d_sae/n range)")
def sae_mean(res, column: str, **setting) -> float:
    return float(select(frame(res), **setting)[column].mean())


@measure("sae_range", "max minus min over the setting's d_sae/n cells of a column's cell mean "
                      "(0: flat); with `low` the min, with `high` the max")
def sae_range(res, column: str, which: str = "spread", **setting) -> float:
    cells = select(frame(res), **setting).groupby("ratio")[column].mean()
    return float({"spread": cells.max() - cells.min(), "low": cells.min(), "high": cells.max()}[which])


@measure("sae_within_angle", "share of a setting's SAEs whose every true feature has its matched "
                             "latent within `angle` degrees (worst_angle)")
def sae_within_angle(res, angle: float = 8.0, **setting) -> float:
    return float((select(frame(res), **setting)["worst_angle"] <= angle).mean())


@measure("sae_within_angle_gain", "share of seeds within `angle` degrees with the `a` setting "
                                  "minus with the `b` setting (each a table of kind, knob, ...)")
def sae_within_angle_gain(res, a: dict, b: dict, angle: float = 8.0) -> float:
    df = frame(res)
    return float((select(df, **a)["worst_angle"] <= angle).mean()
                 - (select(df, **b)["worst_angle"] <= angle).mean())


@measure("sae_ratio", "mean of a column over setting `a` divided by its mean over setting `b` "
                      "(each a table of kind, knob, init, d_sae/n range)")
def sae_ratio(res, column: str, a: dict, b: dict) -> float:
    df = frame(res)
    return float(select(df, **a)[column].mean() / select(df, **b)[column].mean())


@measure("sae_extreme_ratio", "the `a` settings' smallest mean of a column over the `b` settings' "
                              "largest (> 1: every a above every b)")
def sae_extreme_ratio(res, column: str, a: list, b: list) -> float:
    df = frame(res)
    return float(min(select(df, **s)[column].mean() for s in a)
                 / max(select(df, **s)[column].mean() for s in b))


@measure("sae_trend", "Spearman rank correlation, over a kind's knob values, between the knob and "
                      "the mean of a column (1: rises with the knob, -1: falls)")
def sae_trend(res, column: str, kind: str, **setting) -> float:
    cells = select(frame(res), kind=kind, **setting).groupby("knob")[column].mean()
    return float(spearmanr(cells.index, cells.to_numpy()).statistic)


@measure("sae_budget_matched", "share of a setting's SAEs whose L0 is within sae_scores.BUDGET of "
                               "the true L0 (a fair comparison of kinds)")
def sae_budget_matched(res, **setting) -> float:
    df = select(frame(res), **setting)
    return float(sae_scores.budget_matched(df["l0"], df["true_l0"]).mean())
