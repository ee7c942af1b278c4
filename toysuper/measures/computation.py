"""Measurements for claims: computation in superposition (Elhage et al. 2022, section 8;
docs/computation.md). A density names the sweep cell of data.density (1-S); "kept" is the
lowest-loss model of the cell; the tables are neurons, computation, motifs and optima."""

from __future__ import annotations

import numpy as np

from toysuper import optima, tables
from toysuper.measures.registry import measure


def _kept(res, density: float) -> int:
    kept = res.models.set_index("model").loc[optima.kept_models(res)]
    ids = kept.index[np.isclose(kept["density"].astype(float), density)]
    if len(ids) != 1:
        raise ValueError(f"density {density}: {len(ids)} kept models, expected 1")
    return int(ids[0])


def _models_at(res, density=None, init_from=None) -> list[int]:
    models = res.models
    keep = np.ones(len(models), bool)
    if density is not None:
        keep &= np.isclose(models["density"].astype(float), density)
    if init_from is not None:
        keep &= (models["init_from"] == init_from).to_numpy()
    return list(models.loc[keep, "model"])


@measure("computed_features", "features computed for both signs (error under 0.2 of predicting "
         "0 for each sign) by the kept model at a density")
def computed_features(res, density: float) -> float:
    comp = tables.get(res, "computation")
    return float(comp.loc[comp["model"] == _kept(res, density), "computed"].sum())


@measure("construction_ratio", "loss over the top-k exact construction's (optima), min or max "
         "over the models of the given densities (all if none) and start (init_from; all if none); "
         "kept = true: the kept model of each density only")
def construction_ratio(res, stat: str = "max", densities=None, init_from=None,
                       kept: bool = False) -> float:
    ids = set()
    for d in densities or [None]:
        ids |= set(_models_at(res, d, init_from))
    if kept:
        ids &= set(optima.kept_models(res))
    ratio = tables.get(res, "optima").set_index("model")["ratio"].loc[sorted(ids)]
    return float({"min": ratio.min, "max": ratio.max}[stat]()) if len(ratio) else float("nan")


@measure("kept_start_share", "share of densities whose kept model started from `init_from`")
def kept_start_share(res, init_from: str) -> float:
    kept = res.models.set_index("model").loc[optima.kept_models(res)]
    return float((kept["init_from"] == init_from).mean())


@measure("motif_count", "asymmetric superposition motifs (motifs table) in the models of a "
         "density (all densities if none); kept = true: the kept model of each density only")
def motif_count(res, density=None, kept: bool = False) -> float:
    ids = set(_models_at(res, density))
    if kept:
        ids &= set(optima.kept_models(res))
    return float(tables.get(res, "motifs")["model"].isin(ids).sum())


@measure("motif_models", "models with at least one asymmetric superposition motif, among the "
         "models of a density (all densities if none)")
def motif_models(res, density=None) -> float:
    motifs = tables.get(res, "motifs")
    return float(motifs.loc[motifs["model"].isin(_models_at(res, density)), "model"].nunique())


@measure("motif_stat", "a statistic (min, median, max) of a motifs-table column (ratio: big over "
         "small input weight; cancelled: share of the leak the other neurons take back), over "
         "every motif, or the kept models' only")
def motif_stat(res, column: str, stat: str, kept: bool = False) -> float:
    motifs = tables.get(res, "motifs")
    if kept:
        motifs = motifs[motifs["model"].isin(optima.kept_models(res))]
    if motifs.empty:
        return float("nan")
    return float(getattr(motifs[column], stat)())
