"""Measurements for claims: superposition and adversarial vulnerability (Elhage et al. 2022,
section 6; docs/adversarial.md).

All read the derived table `adversarial` (toysuper/adversarial.py) joined to models.parquet,
with per_dim = 1/D* (features per dimension). `column` names the vulnerability read:
  vulnerability               the lab's PGD attack: (attacked - clean) / clean mean loss
  analytic_vulnerability      the paper's analytic attack and metric, (L' - L) / (L'_0 - L_0)
  analytic_all_vulnerability  the same averaged over every input, zeros included
or any other column of the table or of models.parquet (per_dim, loss). `eps` picks the attack
radius; `kind` the model kind; adversarially trained sweeps are read by `trained` (the
training radius train.adversarial_eps, 0 for clean training) and averaged over their seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from toysuper import optima, tables
from toysuper.errors import ConfigError
from toysuper.measures.registry import measure


def _rows(res, eps: float) -> pd.DataFrame:
    """One row per model at attack radius eps: the adversarial table beside models.parquet."""
    adv = tables.get(res, "adversarial")
    at = adv[np.isclose(adv["eps"], eps)]
    if at.empty:
        raise ConfigError(f"eps = {eps!r}: no attack at that radius; the table has "
                          f"{sorted(adv['eps'].unique())}")
    m = res.models.drop(columns=[c for c in ("eps",) if c in res.models])
    m = m.assign(density=m["density"].astype(float), per_dim=1 / m["dims_per_feature"].astype(float),
                 trained=np.where(m["adversarial_steps"] > 0, m["adversarial_eps"], 0.0))
    return at.merge(m, on="model")


def _kept(res, eps: float, kind: str) -> pd.DataFrame:
    rows = _rows(res, eps)
    rows = rows[rows["model"].isin(optima.kept_models(res)) & (rows["kind"] == kind)]
    if rows.empty:
        raise ConfigError(f"kind = {kind!r}: no kept model of that kind")
    return rows.sort_values("density", ascending=False)


def _value(rows: pd.DataFrame, column: str, density: float) -> float:
    at = rows[np.isclose(rows["density"], density)]
    if at.empty:
        raise ConfigError(f"density = {density!r}: no model there; the sweep has "
                          f"{sorted(rows['density'].unique())}")
    return float(at[column].mean())


@measure("vulnerability_rise", "kept models of a kind: the largest (at = 'max') or the sparsest "
         "(at = 'sparsest') density's vulnerability over the densest one's")
def vulnerability_rise(res, eps: float, column: str = "analytic_vulnerability",
                       kind: str = "relu", at: str = "max") -> float:
    rows = _kept(res, eps, kind)
    dense = float(rows[column].iloc[0])
    if at not in ("max", "sparsest"):
        raise ConfigError(f"at = {at!r}: use 'max' or 'sparsest'")
    top = float(rows[column].max() if at == "max" else rows[column].iloc[-1])
    return top / dense if dense > 0 else float("nan")


@measure("kept_vulnerability", "kept model of a kind at a density: its vulnerability (column)")
def kept_vulnerability(res, eps: float, density: float, column: str = "analytic_vulnerability",
                       kind: str = "relu") -> float:
    return _value(_kept(res, eps, kind), column, density)


@measure("mean_kept_vulnerability", "mean over the kept models of a kind of a vulnerability column")
def mean_kept_vulnerability(res, eps: float, column: str = "analytic_vulnerability",
                            kind: str = "linear") -> float:
    return float(_kept(res, eps, kind)[column].mean())


@measure("vulnerability_tracks_per_dim", "Spearman rank correlation over every model of a kind "
         "(every seed) of a vulnerability column with features per dimension 1/D*")
def vulnerability_tracks_per_dim(res, eps: float, column: str = "analytic_vulnerability",
                                 kind: str = "relu") -> float:
    rows = _rows(res, eps)
    rows = rows[rows["kind"] == kind]
    return float(stats.spearmanr(rows["per_dim"], rows[column]).statistic)


@measure("increase_over_linear", "kept models at a density: the ReLU model's attacked-minus-clean "
         "loss under the PGD attack over the linear model's (the linear model as reference)")
def increase_over_linear(res, eps: float, density: float) -> float:
    relu, linear = _kept(res, eps, "relu"), _kept(res, eps, "linear")
    up = _value(relu, "attacked_loss", density) - _value(relu, "clean_loss", density)
    down = _value(linear, "attacked_loss", density) - _value(linear, "clean_loss", density)
    return up / down


@measure("trained_mean", "mean over the seeds at a density of a column (per_dim, loss, a "
         "vulnerability) for the models trained at radius `trained` (0: clean training)")
def trained_mean(res, density: float, trained: float, column: str = "per_dim",
                 eps: float = 0.1) -> float:
    rows = _rows(res, eps)
    return _value(rows[np.isclose(rows["trained"], trained)], column, density)


@measure("trained_ratio", "trained_mean at radius `trained` over trained_mean with clean training")
def trained_ratio(res, density: float, trained: float, column: str = "per_dim",
                  eps: float = 0.1) -> float:
    return (trained_mean(res, density, trained, column, eps)
            / trained_mean(res, density, 0.0, column, eps))


@measure("per_dim_ratio", "kept models of a kind with min_density <= density <= max_density: "
         "the ratio of a vulnerability column to 1/D* farthest from 1 (in log); 1 where the "
         "vulnerability equals features per dimension")
def per_dim_ratio(res, eps: float, min_density: float = 0.0, max_density: float = 1.0,
                  column: str = "analytic_vulnerability", kind: str = "relu") -> float:
    rows = _kept(res, eps, kind)
    rows = rows[(rows["density"] >= min_density) & (rows["density"] <= max_density)]
    if rows.empty:
        raise ConfigError(f"no kept {kind} model with {min_density} <= density <= {max_density}")
    ratio = (rows[column] / rows["per_dim"]).to_numpy(float)
    return float(ratio[np.argmax(np.abs(np.log(ratio)))])


@measure("attack_over_random", "kept models of a kind: the smallest ratio of the PGD attack's "
         "vulnerability to that of random perturbations of the same norm")
def attack_over_random(res, eps: float, kind: str = "relu") -> float:
    rows = _kept(res, eps, kind)
    return float((rows["vulnerability"] / rows["random_vulnerability"]).min())
