"""Derived tables, computed from a finished run's core tables and weights, never by training.

An experiment lists the ones it wants in `tables = [...]`. `toysuper run` writes each as
DIR/NAME.parquet after the core tables; `toysuper plot` computes them again before drawing, so a
changed rule relabels stored results without retraining. Figures read them from `res.derived`.
"""

from __future__ import annotations

from pathlib import Path

from toysuper import neurons, phase, store

# name -> Results -> pandas DataFrame
DERIVED = {
    "phase": phase.table,  # per sweep cell: the extra feature's empirical and theoretical phase
    "neurons": neurons.table,  # per (model, neuron): monosemanticity, top and carried features
    "motifs": neurons.motifs,  # per asymmetric superposition motif of a computation model
    "computation": neurons.computation,  # per (model, feature): error vs predicting 0, computed
}


def derive(res, names=None) -> dict:
    """Compute the named derived tables (default: the experiment's own) and write them."""
    names = res.config.get("tables", []) if names is None else names
    for name in names:
        df = DERIVED[name](res)
        store.write_table(Path(res.path) / f"{name}.parquet", df)
        res.derived[name] = df
    return res.derived
