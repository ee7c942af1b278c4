"""benchmarks/llc_devinterp.py's pure parts, without torch or devinterp: the closed-form table it
holds the estimates to, the one-to-one map of SGLD settings onto devinterp's llc() keywords, and
the reduced-rank regression problems both libraries sample."""

import math
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from toysuper import llc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import llc_devinterp as bench  # noqa: E402


def test_closed_form_table_gives_aoyagi_watanabe_by_hand():
    rows = {r["case"]: r for r in bench.closed_forms()}
    # full rank H = r = min(M, N): regular in the map, M N / 2, against d/2 = 9 parameters
    full = rows["full rank (3,3,3,3)"]
    assert (full["lam"], full["half_d"]) == (4.5, 9.0)
    # (2 (H + r)(M + N) - (M - N)^2 - (H + r)^2) / 8 = (48 - 16) / 8
    assert rows["reduced rank (3,3,3,1)"]["lam"] == 4.0
    odd = rows["odd branch (2,2,2,1)"]  # (2 * 3 * 4 - 9 + 1) / 8, multiplicity 2
    assert (odd["lam"], odd["mult"], odd["branch"]) == (2.0, 2, "1 odd")
    assert rows["w* = 0 (2,2,2,0)"]["lam"] == 1.5  # (2 * 2 * 4 - 4) / 8
    assert all(r["lam"] <= r["half_d"] for r in rows.values())


@pytest.mark.parametrize("name", list(bench.BUDGETS))
def test_every_setting_maps_one_to_one_onto_devinterp(name):
    b = bench.BUDGETS[name]
    nb = bench.n_beta(1000)
    ours, theirs = bench.sampler_kwargs(b, nb), bench.devinterp_kwargs(b, nb, seed=7)
    assert len(set(bench.MAPPING.values())) == len(bench.MAPPING)
    for field, kw in bench.MAPPING.items():
        assert theirs[kw] == ours[field], (field, kw)
    assert (theirs["lr"], theirs["localization"], theirs["batch_size"]) == (b.eps, b.gamma, b.batch)
    assert theirs["n_beta"] == pytest.approx(1000 / math.log(1000))
    assert theirs["num_steps_bw_draws"] == 1 and theirs["init_seed"] == 7
    # every SGLD setting of toysuper's sampler is mapped; only the rounds (no refinement) is not
    s = llc.Sampler(**ours)
    llc.check(s, 1000)
    assert set(llc.Sampler._fields) - set(bench.MAPPING) == {"rounds"} and s.rounds == 1


@pytest.mark.parametrize("case", [(3, 3, 3, 3), (3, 3, 3, 1), (2, 2, 2, 0)])
def test_problems_are_whitened_with_a_rank_r_map_of_unit_singular_values(case):
    M, H, N, r = case
    A0, B0, x, y = bench.rrr_problem(M, H, N, r, n=500, noise=0.1)
    assert A0.shape == (H, M) and B0.shape == (N, H) and x.shape == (500, M) and y.shape == (500, N)
    np.testing.assert_allclose(x.T @ x / 500, np.eye(M), atol=1e-4)
    sv = np.linalg.svd(B0 @ A0, compute_uv=False)
    np.testing.assert_allclose(sv, [1.0] * r + [0.0] * (min(M, N) - r), atol=1e-5)
    assert np.std(y - x @ A0.T @ B0.T) == pytest.approx(0.1, rel=0.1)


def test_padding_for_toysuper_leaves_the_loss_of_the_unpadded_model():
    A0, B0, x, y = bench.rrr_problem(2, 2, 1, 1, n=200)
    w, data, mask = bench.padded(A0, B0, x, y)
    rng = np.random.default_rng(0)
    w = {k: v + rng.normal(size=v.shape).astype(np.float32) for k, v in w.items()}  # padding too
    A, B = w["A"][:2, :2], w["B"][:1, :2]
    plain = np.mean(np.sum((y - x @ A.T @ B.T) ** 2, -1))
    assert float(bench.rrr_loss(w, data, mask)) == pytest.approx(plain, rel=1e-5)
    g = jax.grad(bench.rrr_loss)(w, data, mask)
    assert not np.any(np.asarray(g["A"])[mask["A"] == 0]) and not np.any(np.asarray(g["B"])[mask["B"] == 0])


def test_chain_spread_is_the_mean_and_standard_deviation_across_chains():
    assert bench.spread([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert math.isnan(bench.spread([4.0])[1])
