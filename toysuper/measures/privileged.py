"""Measurements for claims: superposition in a privileged basis (Elhage et al. 2022, section 7).

Each reads the kept (lowest-loss) model of one density, optima.kept_models, through the derived
tables `codes` and `neurons` (toysuper/neurons.py: a neuron carries a feature when its weight is
at least neurons.CARRY of the norm of the neuron's positive weights), or every seed of a density
where a claim is about the search.
"""

from __future__ import annotations

import numpy as np

from toysuper import optima, tables
from toysuper.errors import ConfigError
from toysuper.measures.registry import measure

# A density argument picks the models whose density is within this relative distance of it.
NEAREST = 1e-6


def _at(res, density: float):
    """models.parquet rows of every seed at `density`."""
    d = res.models["density"].astype(float)
    rows = res.models[np.isclose(d, float(density), rtol=NEAREST, atol=0.0)]
    if rows.empty:
        raise ConfigError(f"density = {density!r}: no model at that density; "
                          f"the sweep has {sorted(set(d))}")
    return rows


def _kept(res, density: float) -> int:
    """The kept model of the cell at `density`."""
    ids = set(_at(res, density)["model"].astype(int)) & set(optima.kept_models(res))
    if len(ids) != 1:
        raise ConfigError(f"density = {density!r}: {len(ids)} kept models there, need exactly one")
    return ids.pop()


def _code(res, density: float):
    codes = tables.get(res, "codes").set_index("model")
    return codes.loc[_kept(res, density)]


@measure("neurons_per_feature", "kept model at a density: mean over its carried features of the "
         "neurons carrying each (weight >= 0.3 of the norm of the neuron's positive weights)")
def neurons_per_feature(res, density: float) -> float:
    return float(_code(res, density)["neurons_per_feature"])


@measure("distinct_neuron_pairs", "kept model at a density: the different pairs of neurons that "
         "carry the features carried by exactly two neurons (at most C(m,2))")
def distinct_neuron_pairs(res, density: float) -> float:
    return float(_code(res, density)["distinct_pairs"])


@measure("features_dropped", "kept model at a density: the features no live neuron carries")
def features_dropped(res, density: float) -> float:
    return float(_code(res, density)["dropped"])


@measure("dedicated_neurons", "kept model at a density: neurons carrying one feature that no "
         "other neuron carries (a dedicated group of the code)")
def dedicated_neurons(res, density: float) -> float:
    return float(_code(res, density)["dedicated"])


@measure("monosemantic_neurons", "kept model at a density: neurons carrying exactly one feature, "
         "their strongest (neurons.parquet)")
def monosemantic_neurons(res, density: float) -> float:
    t = tables.get(res, "neurons")
    return float(t.loc[t["model"] == _kept(res, density), "monosemantic"].sum())


@measure("kept_code_is", "1.0 when the kept model at a density has exactly the given code "
         "(codes.parquet, e.g. '3 x dedicated + 3 in 2; 4 dropped'), else 0.0")
def kept_code_is(res, density: float, code: str) -> float:
    return float(_code(res, density)["code"] == code)


@measure("seeds_with_kept_code", "share of the seeds at a density whose code equals the kept "
         "model's (codes.parquet)")
def seeds_with_kept_code(res, density: float) -> float:
    codes = tables.get(res, "codes").set_index("model")["code"]
    seeds = _at(res, density)["model"].astype(int)
    return float((codes.loc[seeds] == codes.loc[_kept(res, density)]).mean())


@measure("worst_kept_over_top_k", "largest ratio over the kept models of the evaluation loss to "
         "the loss of the top-m exact solution (optima.parquet); <= 1 means every kept model "
         "beats it")
def worst_kept_over_top_k(res) -> float:
    o = tables.get(res, "optima").set_index("model").loc[optima.kept_models(res)]
    return float((o["eval_loss"] / o["exact_loss"]).max())


@measure("most_seeds_near_kept", "largest count, over the densities at most max_density, of the "
         "seeds (the kept one included) whose loss is within `within` (relative) of the kept loss")
def most_seeds_near_kept(res, max_density: float, within: float = 0.01) -> float:
    d = res.models["density"].astype(float)
    counts = []
    for density in sorted(set(d[d <= max_density])):
        loss = _at(res, density)["loss"].to_numpy(float)
        kept = float(res.models.set_index("model").loc[_kept(res, density), "loss"])
        counts.append(int((loss <= kept * (1 + within)).sum()))
    if not counts:
        raise ConfigError(f"max_density = {max_density!r}: no density at or below it")
    return float(max(counts))
