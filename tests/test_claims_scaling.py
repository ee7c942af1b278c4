"""Width-scaling measurements for claims (toysuper/measures/scaling.py) and the scaling table's
confidence intervals, on constructed sweeps with known exponents."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from toysuper import config, scaling
from toysuper.measures import MEASURES
from toysuper.results import Results

WIDTHS, N = [10, 16, 25, 40, 63, 100], 200


def _sweep(noise=None):
    """Two alphas at weight decay 1: kept losses 2 m^-(alpha_lab + 0.1) (times `noise`), the
    top-m exact solution m^-alpha_lab; alpha_lab 1 keeps exactly m features at every width."""
    alphas = [0.5, 1.0]
    cfg = config.resolve({"name": "t", "model": {"kind": "relu", "n_features": N},
                          "train": {"weight_decay": 1.0},
                          "sweep": {"model.n_hidden": WIDTHS,
                                    "data.density": [{"power": a} for a in alphas]}})
    rows = []
    for s in config.expand(cfg):
        m, a = s["model.n_hidden"], s["data.density"]["power"]
        wiggle = 1.0 if noise is None else noise[WIDTHS.index(m)]
        rows.append({"model": len(rows), "n_hidden": m, "n_features": N, "weight_decay": 1.0,
                     "weight_init": "xavier", "density": f'{{"power": {a}}}',
                     "loss": 2 * m ** -(a + 0.1) * wiggle, "exact": m ** -a,
                     "kept": m if a == 1.0 else 2 * m})
    feats = pd.DataFrame([{"model": r["model"], "feature": i, "norm": float(i < r["kept"])}
                          for r in rows for i in range(N)])
    res = Results(None, cfg, pd.DataFrame(rows).drop(columns=["exact", "kept"]), feats,
                  pd.DataFrame(), {})
    res.derived["optima"] = pd.DataFrame({"model": [r["model"] for r in rows],
                                          "exact_loss": [r["exact"] for r in rows]})
    return res


def test_width_exponent_reads_the_constructed_power_laws_and_a_width_range():
    res = _sweep()
    fn = MEASURES["width_exponent"].fn
    assert fn(res, alpha_lab=1.0, weight_decay=1.0) == pytest.approx(1.1)
    assert fn(res, alpha_lab=0.5, weight_decay=1.0, m_from=25) == pytest.approx(0.6)
    assert fn(res, alpha_lab=0.5, weight_decay=1.0, of="exact") == pytest.approx(0.5)
    assert np.isnan(fn(res, alpha_lab=1.5, weight_decay=1.0))  # no such cell
    assert np.isnan(fn(res, alpha_lab=1.0, weight_decay=1.0, m_from=100))  # one width: no fit


def test_features_per_dimension_and_share_kept():
    res = _sweep()
    per_dim = MEASURES["features_kept_per_dim"].fn
    assert per_dim(res, alpha_lab=1.0, weight_decay=1.0) == pytest.approx(1.0)
    assert per_dim(res, alpha_lab=0.5, weight_decay=1.0, m=25) == pytest.approx(2.0)
    # the smallest share: alpha_lab 1 at m = 10 keeps 10 of 200
    assert MEASURES["features_kept_share_min"].fn(res, weight_decay=1.0) == pytest.approx(0.05)


def test_the_confidence_interval_is_the_t_interval_of_the_least_squares_slope():
    noise = np.exp([0.05, -0.08, 0.02, 0.1, -0.04, 0.03])
    res = _sweep(noise)
    table = scaling.table(res).set_index("alpha_lab")
    ref = stats.linregress(np.log(WIDTHS), np.log(2 * np.array(WIDTHS) ** -1.1 * noise))
    row = table.loc[1.0]
    assert row["alpha_paper"] == 2.0 and row["exponent"] == pytest.approx(-ref.slope)
    assert row["exponent_se"] == pytest.approx(ref.stderr)
    half = stats.t.ppf(0.975, len(WIDTHS) - 2) * ref.stderr
    assert (row["exponent_ci_lo"], row["exponent_ci_hi"]) == pytest.approx(
        (-ref.slope - half, -ref.slope + half))
    assert MEASURES["width_exponent_ci_half"].fn(res, alpha_lab=1.0, weight_decay=1.0) == \
        pytest.approx(half)
    # exact power laws: a zero-width interval around the exponent
    exact = scaling.table(_sweep()).set_index("alpha_lab").loc[0.5]
    assert exact["exponent_ci_lo"] == pytest.approx(0.6) == exact["exponent_ci_hi"]
    assert exact["exact_ci_lo"] == pytest.approx(0.5)
