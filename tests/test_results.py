"""Results and SaeResults print a one-line summary, not their tables."""

from pathlib import Path

import numpy as np
import pandas as pd

import toysuper
from toysuper.results import Results, SaeResults


def _rows(kinds, diverged):
    return pd.DataFrame({"model": range(len(kinds)), "kind": kinds, "diverged": diverged})


def test_results_repr_names_counts_kinds_axes_diverged_and_derived_tables():
    cfg = {"sweep": {"data.density": {"logspace": [0.01, 1.0], "num": 3}, "model.kind": ["relu", "linear"]}}
    models = _rows(["relu", "linear"] * 3, [False] * 5 + [True])
    res = Results.of(None, cfg, {"models": models, "features": pd.DataFrame(), "history": pd.DataFrame()},
                     {"W": np.zeros((6, 2, 5)), "W.shape": np.tile([2, 5], (6, 1))})
    text = repr(res)
    assert text == ("Results(in memory: 6 models (linear, relu); swept data.density x3, model.kind x2; "
                    "1 diverged; derived tables: none yet)")
    res.derived["optima"] = pd.DataFrame()
    res.path = "somewhere/else"
    assert repr(res).startswith("Results('somewhere/else': ")
    assert repr(res).endswith("derived tables: optima)")


def test_sae_results_repr_counts_cases_as_an_axis():
    cfg = {"sweep": {"train.seed": {"range": 4}, "cases": [{"sae.kind": "topk"}, {"sae.kind": "relu_l1"}]}}
    saes = _rows(["topk"] * 4 + ["relu_l1"] * 4, [False] * 8)
    res = SaeResults.of(None, cfg, {"saes": saes, "latents": pd.DataFrame(), "history": pd.DataFrame()}, {})
    assert repr(res) == ("SaeResults(in memory: 8 SAEs (relu_l1, topk); swept train.seed x4, cases x2; "
                         "0 diverged; derived tables: none yet)")


def test_a_stored_results_repr_is_one_short_line():
    path = Path(__file__).resolve().parent.parent / "results" / "intro"
    res = toysuper.load(path)
    text = repr(res)
    assert "\n" not in text and len(text) < 300 + len(str(path))
    assert text.startswith(f"Results({str(path)!r}: ") and f"{len(res.models)} models" in text
