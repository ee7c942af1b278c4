"""Loss against width: a power law loss ~ m^-a fitted per sweep cell (docs/width_scaling.md).

Liu, Liu & Gore (2025) train the ReLU output model on features whose densities fall as a power
law. Mind the two conventions: the paper's text writes p_i ~ i^-alpha_paper; the lab (like the
paper's code) writes p_i ~ i^-(1 + alpha_lab), so alpha_paper = 1 + alpha_lab. With weak
superposition (positive weight decay) only the m most frequent features are kept and the loss
falls as m^-(alpha_paper - 1) = m^-alpha_lab, the mass of the features left out; with strong
superposition (weight decay <= 0) every feature is kept, overlapping, and the paper finds the
exponent about 1 when frequencies are flat and about 2 (alpha_paper - 1) when they are skewed
(its Figure 5e). The `scaling` table fits the exponent a for each cell of a sweep over
model.n_hidden: every swept setting but the width and the restarts fixed, the kept
(lowest-loss) model of each width, least squares on log loss against log m, with the fit's 95%
confidence interval (Student t on the slope's standard error, widths - 2 degrees of freedom).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import stats

from toysuper import config, metrics, needs, optima, settings

WIDTH = "model.n_hidden"
NEEDS = (needs.rule(
    "a sweep over model.n_hidden with at least 3 widths (e.g. [sweep] model.n_hidden = "
    "{logspace = [10, 100], num = 6}, rounded to integers)",
    lambda s: len({x.get(WIDTH) for x in s}) >= 3,
    lambda s: f"model.n_hidden = {sorted({x.get(WIDTH) for x in s})}"),)


def alpha(density) -> float:
    """alpha_lab of a power-law density setting ({power = alpha}, or its JSON text in a table),
    p_i ~ i^-(1 + alpha_lab); NaN for any other density."""
    if isinstance(density, str) and density.startswith("{"):
        density = json.loads(density)
    return float(density["power"]) if isinstance(density, dict) and "power" in density else np.nan


def fit(m, loss) -> tuple[float, float, float]:
    """(a, c, r^2) of log loss = c - a log m, least squares."""
    a, c, r2, _ = fit_se(m, loss)
    return a, c, r2


def fit_se(m, loss) -> tuple[float, float, float, float]:
    """(a, c, r^2, standard error of a) of log loss = c - a log m, least squares; the standard
    error is NaN with fewer than 3 widths (no residual degrees of freedom)."""
    x, y = np.log(np.asarray(m, float)), np.log(np.asarray(loss, float))
    slope, c = np.polyfit(x, y, 1)
    resid = y - (slope * x + c)
    r2 = 1 - (resid ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-300)
    dof = len(x) - 2
    se = (np.sqrt((resid ** 2).sum() / dof / ((x - x.mean()) ** 2).sum()) if dof > 0
          else np.nan)
    return float(-slope), float(c), float(r2), float(se)


def ci95(a: float, se: float, widths: int) -> tuple[float, float]:
    """The 95% confidence interval of a fitted exponent a with standard error se over `widths`."""
    half = stats.t.ppf(0.975, widths - 2) * se if widths > 2 else np.nan
    return a - half, a + half


def kept_widths(res) -> pd.DataFrame:
    """The kept (lowest-loss) model of every width with a finite loss, with its alpha_lab and the
    top-m exact solution's loss (`exact_loss`): the points every fit here is drawn through."""
    models = res.models.set_index("model").loc[optima.kept_models(res)].reset_index()
    models = models[np.isfinite(models["loss"])]
    exact = optima_table(res).set_index("model")["exact_loss"]
    return models.assign(alpha_lab=models["density"].map(alpha),
                         exact_loss=exact.reindex(models["model"]).to_numpy())


def optima_table(res) -> pd.DataFrame:
    """The derived table `optima`, as stored or computed now (tables.get, which imports us)."""
    if "optima" not in res.derived:
        res.derived["optima"] = optima.table(res)
    return res.derived["optima"]


def table(res) -> pd.DataFrame:
    """scaling.parquet: per cell of the non-width settings, alpha in both conventions
    (`alpha_lab`, `alpha_paper` = 1 + alpha_lab), the fitted exponent a with its standard error
    and 95% confidence interval, its r^2, the same fit on the top-m exact solution's loss
    (`exact_exponent`, with its interval), the widths fitted, and the share of features
    represented (||W_i|| > metrics.REPRESENTED) at the smallest and largest width, and at the
    largest the features represented per hidden dimension."""
    swept = [k for k in res.config.get("sweep", {})
             if k not in settings.RESTARTS and k not in (WIDTH, config.CASES)]
    columns = [settings.column(k) for k in swept]
    # the top-m exact solution (optima.py) is the weak-superposition limit: the m most frequent
    # features kept without interference, the rest dropped; its exponent is the one to expect
    models = kept_widths(res)
    exact = models.set_index("model")["exact_loss"]
    feats = res.features.assign(represented=res.features["norm"] > metrics.REPRESENTED)
    share = feats.groupby("model")["represented"].mean()
    rows = []
    for cell, group in (models.groupby(columns, sort=True, dropna=False) if columns
                        else [((), models)]):
        group = group.sort_values("n_hidden")
        cell = cell if isinstance(cell, tuple) else (cell,)
        k = len(group)
        a, c, r2, se = fit_se(group["n_hidden"], group["loss"]) if k >= 2 else (np.nan,) * 4
        a_exact, c_exact, _, se_exact = (fit_se(group["n_hidden"], exact[group["model"]])
                                         if k >= 2 else (np.nan,) * 4)
        lo, hi = ci95(a, se, k)
        lo_exact, hi_exact = ci95(a_exact, se_exact, k)
        first, last = group.iloc[0], group.iloc[-1]
        alpha_lab = alpha(first["density"])
        # weight decay and start name a regime in the figures, swept or not
        rows.append({"weight_decay": float(first["weight_decay"]),
                     "weight_init": first["weight_init"],
                     **dict(zip(columns, cell)), "alpha_lab": alpha_lab,
                     "alpha_paper": 1 + alpha_lab,
                     "exponent": a, "exponent_se": se, "exponent_ci_lo": lo,
                     "exponent_ci_hi": hi, "log_prefactor": c, "r2": r2,
                     "exact_exponent": a_exact, "exact_ci_lo": lo_exact,
                     "exact_ci_hi": hi_exact,
                     "exact_log_prefactor": c_exact, "widths": k,
                     "m_min": int(first["n_hidden"]), "m_max": int(last["n_hidden"]),
                     "represented_min_m": float(share[first["model"]]),
                     "represented_max_m": float(share[last["model"]]),
                     # ~1 in the weak regime (a direction for about m features), > 1 in
                     # superposition, < 1 when decay drops features the width had room for
                     "kept_per_dim_max_m": float(share[last["model"]] * last["n_features"]
                                                 / last["n_hidden"])})
    return pd.DataFrame(rows)
