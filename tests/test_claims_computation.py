"""Computation-in-superposition measurements for claims (toysuper/measures/computation.py) on a
constructed sweep whose neurons, computation, motifs and optima tables are known."""

import numpy as np
import pandas as pd
import pytest

from toysuper import config
from toysuper.measures import MEASURES
from toysuper.results import Results


def _sweep():
    """Two densities x two starts; the construction start is kept at 0.1, the random one at 0.01."""
    cfg = config.resolve({"name": "t", "model": {"kind": "abs", "n_features": 4, "n_hidden": 2},
                          "data": {"law": "signed"},
                          "sweep": {"data.density": [0.1, 0.01],
                                    "train.init_from": ["random", "construction"]}})
    loss = {(0.1, "random"): 3.0, (0.1, "construction"): 1.0, (0.01, "random"): 0.5,
            (0.01, "construction"): 0.8}
    rows = [{"model": i, "kind": "abs", "density": s["data.density"],
             "init_from": s["train.init_from"],
             "loss": loss[(s["data.density"], s["train.init_from"])]}
            for i, s in enumerate(config.expand(cfg))]
    res = Results(None, cfg, pd.DataFrame(rows), pd.DataFrame(), pd.DataFrame(), {})
    ids = [r["model"] for r in rows]
    res.derived["optima"] = pd.DataFrame({"model": ids, "ratio": [r["loss"] for r in rows]})
    # model i: i + 1 of its 2 neurons monosemantic (capped at 2), 4 - i features computed
    res.derived["neurons"] = pd.DataFrame(
        [{"model": i, "neuron": k, "monosemantic": k <= i} for i in ids for k in range(2)])
    res.derived["computation"] = pd.DataFrame(
        [{"model": i, "feature": f, "computed": f < 4 - i} for i in ids for f in range(4)])
    res.derived["motifs"] = pd.DataFrame({"model": [1, 2, 2], "ratio": [2.0, 1.5, 4.0],
                                          "cancelled": [1.0, 0.8, 1.2]})
    return res


def test_kept_model_counts_and_construction_ratios():
    res = _sweep()
    by_id = {r["model"]: (r["density"], r["init_from"]) for r in res.models.to_dict("records")}
    assert by_id[1] == (0.1, "construction") and by_id[2] == (0.01, "random")
    m = {k: MEASURES[k].fn for k in MEASURES}
    # kept: model 1 at 0.1, model 2 at 0.01
    assert m["monosemantic_neurons"](res, density=0.1) == 2
    assert m["computed_features"](res, density=0.01) == 2
    assert m["construction_ratio"](res, stat="min", init_from="random") == 0.5
    assert m["construction_ratio"](res, stat="max", densities=[0.1]) == 3.0
    assert m["construction_ratio"](res, stat="max", kept=True) == 1.0
    assert m["kept_start_share"](res, init_from="construction") == 0.5
    with pytest.raises(ValueError, match="density 0.5"):
        m["computed_features"](res, density=0.5)


def test_motif_counts_and_statistics():
    res = _sweep()
    m = {k: MEASURES[k].fn for k in MEASURES}
    assert m["motif_count"](res) == 3 and m["motif_count"](res, density=0.1) == 1
    assert m["motif_count"](res, density=0.1, kept=True) == 1  # model 1 is kept
    assert m["motif_models"](res) == 2 and m["motif_models"](res, density=0.01) == 1
    assert m["motif_stat"](res, column="ratio", stat="median") == 2.0
    assert m["motif_stat"](res, column="cancelled", stat="max", kept=True) == 1.2
    res.derived["motifs"] = res.derived["motifs"].iloc[:0]
    assert np.isnan(m["motif_stat"](res, column="ratio", stat="min"))
