"""Measurements for claims about the local learning coefficient (docs/llc.md): the regular
k-gons of Chen et al. (2023) against their closed forms, read from the derived table llc_kgons
(toysuper/llc_dynamics.py)."""

from __future__ import annotations

from toysuper import tables
from toysuper.measures.registry import measure


def _kgon(res, variant: str):
    kg = tables.get(res, "llc_kgons")
    rows = kg[kg["variant"] == variant]
    if len(rows) != 1:
        raise ValueError(f"llc_kgons has no single row for the k-gon {variant!r} "
                         f"(variants: {', '.join(map(str, kg['variant']))})")
    return rows.iloc[0]


@measure("kgon_population_loss", "the loss of the regular k-gon `variant` ('6', '5+', '5-', "
         "'4+', '4-') fitted to the LLC data set, on 65,536 fresh samples (table llc_kgons)")
def kgon_population_loss(res, variant: str) -> float:
    return float(_kgon(res, variant)["population_loss"])


@measure("kgon_llc", "the LLC of the regular k-gon `variant` by llc's default procedure "
         "(table llc_kgons, column llc_calibrated)")
def kgon_llc(res, variant: str) -> float:
    return float(_kgon(res, variant)["llc_calibrated"])


@measure("kgon_llc_fixed", "the LLC of the regular k-gon `variant` at the snapshots' fixed "
         "settings (eps 1e-3, gamma 10; table llc_kgons, column llc)")
def kgon_llc_fixed(res, variant: str) -> float:
    return float(_kgon(res, variant)["llc"])


@measure("kgon_half_hessian_rank", "half the rank of the Hessian of the loss at the regular "
         "k-gon `variant`: its learning coefficient if it is a regular point of its critical set")
def kgon_half_hessian_rank(res, variant: str) -> float:
    return float(_kgon(res, variant)["hessian_rank"]) / 2


@measure("kgon_jump_share", "among models with a snapshot of k = `before` features, the share "
         "whose last snapshot has k = `after`, a lower loss and a higher LLC than the last "
         "k = `before` snapshot (table llc_snapshots)")
def kgon_jump_share(res, before: int = 6, after: int = 5) -> float:
    snap = tables.get(res, "llc_snapshots").sort_values(["model", "step"])
    went, total = 0, 0
    for _, rows in snap.groupby("model"):
        seen = rows[rows["k"] == before]
        if not len(seen):
            continue
        total += 1
        start, end = seen.iloc[-1], rows.iloc[-1]
        went += bool(end["k"] == after and end["loss"] < start["loss"] and end["llc"] > start["llc"])
    return went / total if total else float("nan")
