"""Derived tables: computed from a run's core tables and weights, never by training.

Anything a threshold decides (a phase, a structure, a monosemantic neuron) lives here rather
than in the core tables, so a changed rule relabels stored results without retraining:
`toysuper run` writes each table an experiment or its figures use as DIR/NAME.parquet, and
`toysuper plot` computes them again before drawing. Each table declares what it needs of a
sweep (toysuper/needs.py), checked before training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

from toysuper import (
    adversarial,
    finite_data,
    llc_dynamics,
    llc_models,
    models,
    needs,
    neurons,
    optima,
    phase,
    sae_metrics,
    scaling,
    store,
    structures,
    verdicts,
)
from toysuper.errors import ConfigError


class Table(NamedTuple):
    make: Callable       # Results -> pandas DataFrame
    needs: tuple = ()    # needs.Need, checked on the sweep's settings before training
    doc: str = ""
    family: str = "toys"  # the results it reads (settings.family): "toys", "saes" or "any"


NEURONS = needs.some("model.kind", lambda k: k in models.MODELS and models.MODELS[k].neurons,
                     f"a model with a ReLU hidden layer (model.kind in {list(models.NEURON_KINDS)})")
# the LLC's n beta = n / log n needs a data set of at least 2 points (toysuper/llc.py)
LLC_DATA = needs.every("data.dataset_size", lambda v: not v or v >= 2,
                       "data.dataset_size = 0 (fresh samples) or at least 2 training points")
# a width at or beyond n_features represents every feature (loss ~ 0): no power law to fit
NARROW = needs.rule(
    "model.n_hidden below model.n_features in every model (a width of n or more represents "
    "every feature: the loss has no power law left to fit)",
    lambda s: all(x.get("model.n_hidden", 0) < x.get("model.n_features", 1) for x in s),
    lambda s: f"model.n_hidden up to {max(x.get('model.n_hidden', 0) for x in s)} with "
              f"model.n_features = {sorted({x.get('model.n_features') for x in s})}")

DERIVED = {
    "sae_optima": Table(verdicts.sae_optima, doc="per SAE: loss against the trivial solution "
                        "(decoder bias alone), beats_trivial, recovered features", family="saes"),
    "optima": Table(optima.table, doc="per model: loss against the trivial baselines, trapped, dead units"),
    "neighbours": Table(optima.neighbours, doc="per sweep cell: kept model against its "
                        "neighbours' solutions scored here, local minimum or not"),
    "units": Table(optima.units, doc="per (model, layer, unit): largest pre-activation, dead or not"),
    "structures": Table(structures.table, doc="per (model, feature): the structure it belongs to"),
    "phase": Table(phase.table, phase.NEEDS,
                   doc="per sweep cell: the extra feature's empirical and theoretical phase"),
    "neurons": Table(neurons.table, (NEURONS,),
                     doc="per (model, neuron): monosemanticity, top and carried features"),
    "codes": Table(neurons.codes, (NEURONS,),
                   doc="per model: how its neurons share its features (3 x dedicated + 3 in 2, ...)"),
    # the motif is the |x| computation model's own science (section 8): named by its kind
    "motifs": Table(neurons.motifs, (needs.some("model.kind", ["abs"],
                                                "computation models (model.kind = 'abs')"),),
                    doc="per asymmetric superposition motif of a computation model"),
    "datapoints": Table(finite_data.datapoints, finite_data.NEEDS,
                        doc="per (model, training point): hidden vector norm and dimensionality"),
    "scaling": Table(scaling.table, scaling.NEEDS + (NARROW,),
                     doc="per cell of the non-width settings: the exponent a of loss ~ m^-a"),
    "computation": Table(neurons.computation,
                         doc="per (model, feature): error against predicting 0, computed or not"),
    "adversarial": Table(adversarial.table, doc="per (model, attack.eps): clean, attacked and "
                         "randomly perturbed loss, vulnerability (section 6)"),
    "llc": Table(llc_models.table, (LLC_DATA,), doc="per model: local learning coefficient by SGLD, its "
                 "standard error across chains, n beta and chain diagnostics (docs/llc.md)"),
    "llc_traces": Table(llc_models.traces, (LLC_DATA,), doc="per (model, chain, SGLD step): "
                        "minibatch loss at w_t and at w*, drift from w*"),
    "llc_snapshots": Table(llc_dynamics.snapshots, llc_dynamics.NEEDS, doc="per (model, "
                           "snapshot step): LLC, its standard error and diagnostics, training-set "
                           "loss, and k, the features with ||W_i|| >= 0.5 (a k-gon)"),
    "llc_kgons": Table(llc_dynamics.kgons, llc_dynamics.KGON_NEEDS, doc="per k: the regular k-gon "
                       "fitted to the first model's data set, its loss and LLC (reference lines)"),
    "sae_metrics": Table(sae_metrics.table, doc="per SAE: the literature's MMCS (Sharkey et al.), "
                         "MCC of codes and decoder matching, signed and unsigned, over all true "
                         "features (docs/saes.md)", family="saes"),
    "chanin_absorption": Table(sae_metrics.absorption, (sae_metrics.HIERARCHY,), doc="per (SAE, "
                               "parent, child): absorption as Chanin et al. 2024 define it",
                               family="saes"),
}


def register(name: str, table: Table) -> None:
    """Add a derived table defined outside this module (claims.py registers `claims`)."""
    if name in DERIVED:
        raise ValueError(f"derived table '{name}' is registered twice")
    DERIVED[name] = table


def get(res, name: str):
    """A derived table of `res`: as stored or already computed, else computed now."""
    if name not in DERIVED and name not in res.derived:
        raise ConfigError(f"no derived table named {name!r}; known: {', '.join(DERIVED)}")
    if name not in res.derived:
        res.derived[name] = DERIVED[name].make(res)
    return res.derived[name]


def derive(res, names, each=lambda name: None) -> dict:
    """Compute the named tables afresh (rules may have changed since they were stored);
    `each(name)` after each one (a progress bar)."""
    for name in names:
        res.derived[name] = DERIVED[name].make(res)
        each(name)
    return {name: res.derived[name] for name in names}


def write(made: dict, folder: Path) -> None:
    """Write each table of `made` as folder/NAME.parquet (none if one cannot be: one line)."""
    for name in made:  # a file in a folder's place is replaced; a folder in its place is not
        if (folder / f"{name}.parquet").is_dir():
            raise ConfigError(f"cannot write '{folder / name}.parquet': it is a folder; remove "
                              f"it and run again")
    for name, df in made.items():
        store.write_table(folder / f"{name}.parquet", df)


# Tables defined in modules that themselves read derived tables register on import; importing
# them here, after DERIVED exists, makes `get(res, "claims")` work whichever module came first.
from toysuper import claims  # noqa: E402, F401
