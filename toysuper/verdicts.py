"""Counting a sweep's verdicts in one place: diverged, trapped, local-minimum and clean models.

Every line that counts them (the end of `toysuper run`, a figure's footnote, the report's card)
reads `toys` or `saes` here, so they cannot disagree. A diverged model counts as trapped
(docs/failures.md): its weights are NaN, so it holds no solution at all, let alone the optimum.
For SAEs "trapped" means losing to the trivial solution (the decoder bias alone).

The SAE labels are derived here too (`sae_optima`), never stored in saes.parquet, so a changed
threshold relabels stored SAEs without retraining (STYLE.md, "rule-based labels are derived").
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from toysuper import sae_scores

# SAE columns decided by a threshold: computed by sae_optima, dropped from saes.parquet when
# stored, and joined back to `res.saes` when read (store.load)
SAE_LABELS = ("beats_trivial", "recovered", "recovered_90")


class Counts(NamedTuple):
    unit: str            # "models" or "SAEs"
    total: int
    diverged: int
    trapped: int         # diverged ones included
    kept: int            # one per sweep cell (SAEs: every SAE)
    kept_trapped: int
    compared: int        # kept models with a neighbouring cell to compare with
    local: int           # kept models at a local minimum
    clean: int           # neither trapped nor at a local minimum

    @property
    def flagged(self) -> bool:
        """Whether a model a figure shows (a kept one) is trapped or at a local minimum."""
        return bool(self.kept_trapped or self.local)


def _bools(df: pd.DataFrame, column: str) -> pd.Series:
    """A boolean column, False where absent or missing (older stored tables lack some)."""
    if column not in df:
        return pd.Series(False, index=df.index)
    return df[column].astype("boolean").fillna(False).astype(bool)


def toys(verdicts: pd.DataFrame, cells: pd.DataFrame) -> Counts:
    """Counts of a toy sweep from its optima (every model) and neighbours (kept models) tables."""
    diverged = _bools(verdicts, "diverged")
    trapped = _bools(verdicts, "trapped") | diverged
    kept = verdicts["model"].isin(cells["model"])
    local = set(cells.loc[_bools(cells, "local_minimum"), "model"])
    flagged = trapped | verdicts["model"].isin(local)
    return Counts("models", len(verdicts), int(diverged.sum()), int(trapped.sum()),
                  len(cells), int((trapped & kept).sum()), int((cells["neighbour"] >= 0).sum()),
                  len(local), int((~flagged).sum()))


def saes(optima: pd.DataFrame) -> Counts:
    """Counts of an SAE sweep from its sae_optima table: losing to the trivial solution is
    trapped, and so is a diverged SAE."""
    diverged = _bools(optima, "diverged")
    trapped = ~_bools(optima, "beats_trivial") | diverged
    n = len(optima)
    return Counts("SAEs", n, int(diverged.sum()), int(trapped.sum()), n, int(trapped.sum()),
                  0, 0, n - int(trapped.sum()))


def diverged_words(c: Counts) -> str:
    """": D of the T" after "or diverged" in a trapped count's words, or ""."""
    return f": {c.diverged} of the {c.trapped}" if c.diverged else ""


def sae_optima(res) -> pd.DataFrame:
    """sae_optima.parquet: per SAE, its loss beside the trivial solution's (the decoder bias
    alone, a loss of the activations' total variance), beats_trivial, and recovered and
    recovered_90, the share of true features with a latent at |cos| >= 0.99 (0.9).

    From saes.parquet's loss and trivial_loss and the stored decoders and features; a diverged
    SAE has NaN numbers and beats nothing.
    """
    df = res.saes
    nan = pd.Series(np.nan, index=df.index)
    loss, trivial = df.get("loss", nan).astype(float), df.get("trivial_loss", nan).astype(float)
    diverged = _bools(df, "diverged") | ~np.isfinite(loss.to_numpy())
    rows = []
    for i, sae in enumerate(df["sae"].astype(int)):
        found = {"recovered": np.nan, "recovered_90": np.nan}
        if not diverged.iloc[i]:
            p = res.params(sae)
            D, F = np.asarray(p["W_dec"], float), np.asarray(p["features"], float)
            if np.isfinite(D).all():
                found = {"recovered": sae_scores.recovered(D, F),
                         "recovered_90": sae_scores.recovered(D, F, at=0.9)}
        rows.append(found)
    out = pd.DataFrame({"sae": df["sae"].astype(int).to_numpy(), "diverged": diverged.to_numpy(),
                        "loss": loss.to_numpy(), "trivial_loss": trivial.to_numpy()})
    with np.errstate(invalid="ignore", divide="ignore"):
        out["loss_ratio"] = np.where(out["trivial_loss"] > 0, out["loss"] / out["trivial_loss"],
                                     np.nan)
    out["beats_trivial"] = ~out["diverged"] & (
        out["loss"] <= out["trivial_loss"] * (1 + sae_scores.TRIVIAL_MARGIN))
    out = pd.concat([out, pd.DataFrame(rows)], axis=1)
    return out.sort_values("sae", ignore_index=True)


def with_labels(saes: pd.DataFrame, optima: pd.DataFrame) -> pd.DataFrame:
    """saes.parquet's rows with the labels of sae_optima joined (any stale stored ones dropped)."""
    own = saes.drop(columns=[c for c in SAE_LABELS if c in saes])
    return own.merge(optima[["sae", *SAE_LABELS]], on="sae", how="left", sort=False)


def labelled(res):
    """`res` (SaeResults) with sae_optima computed afresh and its labels joined to res.saes:
    what every reader of an SAE sweep sees, stored or trained in memory."""
    res.derived["sae_optima"] = sae_optima(res)
    res.saes = with_labels(res.saes, res.derived["sae_optima"])
    return res
