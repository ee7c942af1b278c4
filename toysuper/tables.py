"""Derived tables: computed from a run's core tables and weights, never by training.

Anything a threshold decides (a phase, a structure, a monosemantic neuron) lives here rather
than in the core tables, so a changed rule relabels stored results without retraining:
`toysuper run` writes each table an experiment or its figures use as DIR/NAME.parquet, and
`toysuper plot` computes them again before drawing. Each table declares what it needs of a
sweep (toysuper/needs.py), checked before training.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from toysuper import models, needs, neurons, optima, phase, structures


class Table(NamedTuple):
    make: Callable       # Results -> pandas DataFrame
    needs: tuple = ()    # needs.Need, checked on the sweep's settings before training
    doc: str = ""


NEURONS = needs.some("model.kind", models.NEURON_KINDS,
                     f"a model with a ReLU hidden layer (model.kind in {list(models.NEURON_KINDS)})")

DERIVED = {
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
    "motifs": Table(neurons.motifs, (needs.some("model.kind", ["abs"],
                                                "computation models (model.kind = 'abs')"),),
                    doc="per asymmetric superposition motif of a computation model"),
    "computation": Table(neurons.computation,
                         doc="per (model, feature): error against predicting 0, computed or not"),
}


def get(res, name: str):
    """A derived table of `res`: as stored or already computed, else computed now."""
    if name not in res.derived:
        res.derived[name] = DERIVED[name].make(res)
    return res.derived[name]


def derive(res, names) -> dict:
    """Compute the named tables afresh (rules may have changed since they were stored)."""
    for name in names:
        res.derived[name] = DERIVED[name].make(res)
    return {name: res.derived[name] for name in names}
