"""Empirical phase of the extra feature, per sweep cell, beside the analytic theory.

A cell is one combination of the swept settings other than restarts (settings.RESTARTS). Two
selection rules, both stored: "best" keeps the cell's lowest-loss model, since training from one
initialisation can stop in a local minimum (with m = 1, two features whose initial weights share
a sign cannot form an antipodal pair without passing through zero) and the theory predicts the
optimum; "paper" is the paper's own practice (10 models per cell, the worst dropped, the norm and
superposition of the rest averaged), applied to however many seeds the cell has. All seeds of a
cell are scored on one shared evaluation sample (train.eval_keys), so the pick compares models.

Rule for the extra (last) feature i of the kept model, with thresholds below:
  not represented   ||W_i|| < metrics.REPRESENTED
  superposition     ||W_i|| >= metrics.REPRESENTED and sum_{j != i} (W^_i . W_j)^2 >= SUPERPOSED
  dedicated         otherwise
An antipodal partner of unit norm gives superposition 1 and a feature alone in its direction 0;
half-way marks either side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from toysuper import metrics, needs, settings, theory

SUPERPOSED = 0.5   # superposition at or above which a represented feature shares its direction


def _one_density(sweep) -> bool:
    """Every feature of every model at one density: the theory's p."""
    return all(isinstance(s["data.density"], (int, float)) and not any(
        k.startswith("data.density[") for k in s) for s in sweep)


NEEDS = (
    needs.every("model.kind", ["relu"], "model.kind = 'relu' (the theory's model)"),
    needs.every("model.n_features", list(theory.CANDIDATES),
                f"model.n_features in {sorted(theory.CANDIDATES)} (the cases with an analytic theory)"),
    needs.rule("model.n_hidden = model.n_features - 1",
               lambda sweep: all(s["model.n_hidden"] == s["model.n_features"] - 1 for s in sweep),
               lambda sweep: "(n_features, n_hidden) = " + str(sorted({
                   (s["model.n_features"], s["model.n_hidden"]) for s in sweep}))),
    needs.rule("every feature at one density (the theory's p), data.density a number",
               _one_density, lambda sweep: "densities set per feature"),
)


def classify(norm, superposition) -> np.ndarray:
    """Phase names (theory.PHASES) from the extra feature's norm and superposition."""
    norm, superposition = np.asarray(norm, float), np.asarray(superposition, float)
    return np.where(norm < metrics.REPRESENTED, "not represented",
                    np.where(superposition >= SUPERPOSED, "superposition", "dedicated")).astype(object)


def cell_columns(cfg: dict) -> list[str]:
    """Table columns that identify a cell: every swept setting but settings.RESTARTS."""
    return [settings.column(k) for k in cfg.get("sweep", {}) if k not in settings.RESTARTS]


def models_with_extra(res) -> pd.DataFrame:
    """res.models with the extra feature's density, importance, norm and superposition."""
    f = res.features
    last = f.groupby("model")["feature"].transform("max") == f["feature"]
    extra = f[last].set_index("model")[["density", "importance", "norm", "superposition"]]
    extra.columns = ["p", "r", "extra_norm", "extra_superposition"]
    return res.models.join(extra, on="model")


def table(res) -> pd.DataFrame:
    """One row per cell: the kept model, its extra feature's phase and the theory's.

    Columns: the cell's settings, p and r (the extra feature's density and relative importance),
    model (kept), seeds, loss, extra_norm, extra_superposition, phase, seed_share (fraction of
    the cell's seeds in that same phase), theory_phase, theory_solution, theory_loss, agree; and
    the paper's rule beside ours: its seeds but the highest-loss one, their extra feature's norm
    and superposition averaged (paper_norm, paper_superposition), classified (paper_phase) and
    compared with the theory (paper_agree).
    """
    m = models_with_extra(res)
    cells = cell_columns(res.config) or ["p", "r"]
    m["phase"] = classify(m["extra_norm"], m["extra_superposition"])
    m["rank_loss"] = m["loss"].fillna(np.inf)  # a diverged seed (loss NaN) ranks last
    groups = m.groupby(cells, sort=False)
    best_of_cell = groups["rank_loss"].transform("idxmin")
    m["seeds"] = groups["loss"].transform("size")
    m["same"] = m["phase"] == m.loc[best_of_cell, "phase"].to_numpy()
    m["seed_share"] = m.groupby(cells, sort=False)["same"].transform("mean")
    kept = m.loc[best_of_cell.unique()].copy()
    # the paper's rule: drop the worst seed (when there are several), average the rest
    worst = m.index.isin(groups["rank_loss"].idxmax()) & (m["seeds"] > 1)
    paper = m[~worst].groupby(cells, sort=False)[["extra_norm", "extra_superposition"]].mean()
    paper.columns = ["paper_norm", "paper_superposition"]
    kept = kept.join(paper, on=cells)
    kept["paper_phase"] = classify(kept["paper_norm"], kept["paper_superposition"])

    n = int(m["n_features"].iloc[0])
    cand_loss = theory.losses(n, kept["p"].to_numpy(), kept["r"].to_numpy())
    winner = [theory.candidates(n)[k] for k in cand_loss.argmin(axis=0)]
    kept["theory_phase"] = [c.phase for c in winner]
    kept["theory_solution"] = [c.name for c in winner]
    kept["theory_loss"] = cand_loss.min(axis=0)
    kept["agree"] = kept["phase"] == kept["theory_phase"]
    kept["paper_agree"] = kept["paper_phase"] == kept["theory_phase"]
    # a cell column that only repeats p or r (density, importance[-1]) is left out
    front = [c for c in cells if not any(kept[c].equals(kept[v]) for v in ("p", "r"))] + ["p", "r"]
    rest = ["model", "seeds", "loss", "extra_norm", "extra_superposition", "phase", "seed_share",
            "theory_phase", "theory_solution", "theory_loss", "agree", "paper_norm",
            "paper_superposition", "paper_phase", "paper_agree"]
    return kept[front + rest].sort_values(["p", "r"], ascending=[False, True]).reset_index(drop=True)


def agreement(phase_table: pd.DataFrame, rule: str = "best") -> float:
    """Fraction of cells whose empirical phase equals the theoretical one, by the kept seed's
    phase (rule "best") or by the paper's average of all seeds but the worst ("paper")."""
    return float(phase_table["agree" if rule == "best" else "paper_agree"].mean())
