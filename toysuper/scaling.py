"""Loss against width: a power law loss ~ m^-a fitted per sweep cell (docs/width_scaling.md).

Liu, Liu & Gore (2025) train the ReLU output model on features whose densities fall as a power
law, p_i ~ i^-(1 + alpha), at widths m from 10 to 100: with weak superposition (positive
weight decay) only the m most frequent features are kept and the loss falls as m^-alpha, the
mass of the features left out; with strong superposition (weight decay <= 0) every feature is
kept, overlapping, and the loss falls as 1/m whatever alpha. The `scaling` table fits the
exponent a for each cell of a sweep over model.n_hidden: every swept setting but the width and
the restarts fixed, the kept (lowest-loss) model of each width, least squares on log loss
against log m.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from toysuper import config, metrics, needs, optima, settings

WIDTH = "model.n_hidden"
NEEDS = (needs.rule(
    "a sweep over model.n_hidden with at least 3 widths (e.g. [sweep] model.n_hidden = "
    "{logspace = [10, 100], num = 6}, rounded to integers)",
    lambda s: len({x.get(WIDTH) for x in s}) >= 3,
    lambda s: f"model.n_hidden = {sorted({x.get(WIDTH) for x in s})}"),)


def alpha(density) -> float:
    """alpha of a power-law density setting ({power = alpha}, or its JSON text in a table); NaN
    for any other density."""
    if isinstance(density, str) and density.startswith("{"):
        density = json.loads(density)
    return float(density["power"]) if isinstance(density, dict) and "power" in density else np.nan


def fit(m, loss) -> tuple[float, float, float]:
    """(a, c, r^2) of log loss = c - a log m, least squares."""
    x, y = np.log(np.asarray(m, float)), np.log(np.asarray(loss, float))
    slope, c = np.polyfit(x, y, 1)
    resid = y - (slope * x + c)
    r2 = 1 - (resid ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-300)
    return float(-slope), float(c), float(r2)


def optima_table(res) -> pd.DataFrame:
    """The derived table `optima`, as stored or computed now (tables.get, which imports us)."""
    if "optima" not in res.derived:
        res.derived["optima"] = optima.table(res)
    return res.derived["optima"]


def table(res) -> pd.DataFrame:
    """scaling.parquet: per cell of the non-width settings, the fitted exponent a, its r^2, the
    same fit on the top-m exact solution's loss (`exact_exponent`), the widths fitted, and the
    share of features represented (||W_i|| > metrics.REPRESENTED) at the smallest and largest
    width, and at the largest the features represented per hidden dimension."""
    swept = [k for k in res.config.get("sweep", {})
             if k not in settings.RESTARTS and k not in (WIDTH, config.CASES)]
    columns = [settings.column(k) for k in swept]
    models = res.models.set_index("model").loc[optima.kept_models(res)].reset_index()
    models = models[np.isfinite(models["loss"])]
    # the top-m exact solution (optima.py) is the weak-superposition limit: the m most frequent
    # features kept without interference, the rest dropped; its exponent is the one to expect
    exact = optima_table(res).set_index("model")["exact_loss"]
    feats = res.features.assign(represented=res.features["norm"] > metrics.REPRESENTED)
    share = feats.groupby("model")["represented"].mean()
    rows = []
    for cell, group in (models.groupby(columns, sort=True, dropna=False) if columns
                        else [((), models)]):
        group = group.sort_values("n_hidden")
        cell = cell if isinstance(cell, tuple) else (cell,)
        a, c, r2 = fit(group["n_hidden"], group["loss"]) if len(group) >= 2 else (np.nan,) * 3
        a_exact, c_exact, _ = (fit(group["n_hidden"], exact[group["model"]]) if len(group) >= 2
                               else (np.nan,) * 3)
        first, last = group.iloc[0], group.iloc[-1]
        # weight decay and start name a regime in the figures, swept or not
        rows.append({"weight_decay": float(first["weight_decay"]),
                     "weight_init": first["weight_init"],
                     **dict(zip(columns, cell)), "alpha": alpha(first["density"]),
                     "exponent": a, "log_prefactor": c, "r2": r2, "exact_exponent": a_exact,
                     "exact_log_prefactor": c_exact, "widths": len(group),
                     "m_min": int(first["n_hidden"]), "m_max": int(last["n_hidden"]),
                     "represented_min_m": float(share[first["model"]]),
                     "represented_max_m": float(share[last["model"]]),
                     # ~1 in the weak regime (a direction for about m features), > 1 in
                     # superposition, < 1 when decay drops features the width had room for
                     "kept_per_dim_max_m": float(share[last["model"]] * last["n_features"]
                                                 / last["n_hidden"])})
    return pd.DataFrame(rows)
