"""The LLC of reduced-rank regression: toysuper against devinterp at equal budget, held to
Aoyagi & Watanabe's closed form (toysuper/llc_theory.py `rrr`).

    python benchmarks/llc_devinterp.py [--peer-python /work/peers/.venv/bin/python]

One command runs both sides. The problems are made here with NumPy and handed to the peer
(devinterp in its own environment, never a dependency of toysuper) as an .npz in a temporary
folder; the peer is this file run with --peer by that environment's python, and answers one JSON
line per job. Without --peer-python, or when it does not exist, only toysuper's columns run.

Problems: y = B A x, x in R^M whitened (covariance exactly I), A: H x M, B: N x H, at
w* = the true parameter (a rank-r map, singular values 1, in the first r hidden units; the other
rows of A and columns of B are 0), n = 1000 examples, output noise 0.1, loss the squared error
summed over outputs and averaged over examples, n beta = n / log n on both sides.

Columns, per case:
  short    both libraries at one fixed budget, devinterp-style localisation: eps 1e-4, gamma 100,
           4 chains x (200 burn-in + 1,000 draws), batch 100 (toysuper's old Sampler() defaults);
  long     both at the localisation toysuper's procedure picks at n = 1000 (gamma =
           sqrt(n beta / 144) = 1.0): eps 2e-4, 4 chains x (1,000 burn-in + 5,000 draws),
           batch 100 (the steps cover 0.6 of the softest direction's relaxation time
           2 / (eps gamma): what the peer's speed allows within the run time below);
  default  toysuper's `llc.estimate` with Sampler(): its pilot, chain length and refinement
           rounds (docs/llc.md), i.e. what a user gets, with its own budget (steps per chain
           reported beside it); the cases in one vmapped call (models=True), its wall time shared.
toysuper pads every case to 3 x 3 weights with masks (one program for all, as tests/test_llc.py
does); devinterp gets the unpadded model. Cases (CASES): the full-rank map (3, 3, 3, 3), a reduced
rank (3, 3, 3, 1), the odd branch (2, 2, 2, 1) and w* = 0 (2, 2, 2, 0). The whole run took 10-13
minutes on 2 CPU cores shared at load 10-15 (benchmarks/RESULTS.md has the numbers).

Parameter mapping (MAPPING; devinterp 2.0.1's `devinterp.slt.llc.llc`, the current form of the
older `estimate_learning_coeff_with_summary`). Both libraries take the same SGLD step,
    w <- w - (eps/2) (n beta grad L_batch(w) + gamma (w - w*)) + N(0, eps I),
so the settings map one to one: eps = lr, gamma = localization, n beta = n_beta (both multiply
the mean loss over the batch, so no batch-size rescaling), chains = num_chains, draws =
num_draws, burn_in = num_burnin_steps, batch = batch_size (num_steps_bw_draws 1). What differs
is not a setting:
  - batches: toysuper draws each step's batch afresh with replacement, per chain; devinterp
    shuffles once and cycles that epoch (1000 / 100 = 10 batches, replayed), the same sequence
    in every chain (match_sampling_input_ids_across_chains, its default);
  - baseline: toysuper subtracts each draw's batch loss at w* (the same batch); devinterp one
    init_loss, the mean over 32 batches of that cycle at w*;
  - average: devinterp's llc_mean averages the loss over every step, burn-in included; the peer
    also reports its same chains after burn-in against the full-data L_n(w*) ("devinterp, after
    burn-in"), which is toysuper's estimator up to the baseline's batch noise.
Estimates are the mean over chains +- the standard deviation across chains ("chain spread").
Wall times: toysuper's fixed-budget calls once compiled (the compilation, once per budget, is
printed apart), its default call whole, compilation included; devinterp's llc() call whole (its
init loss and zarr store included), not the process start and imports.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

N_EXAMPLES = 1000
NOISE = 0.1
PEER_PYTHON = "/work/peers/.venv/bin/python"

# name: (M, H, N, r)
CASES = {
    "full rank (3,3,3,3)": (3, 3, 3, 3),
    "reduced rank (3,3,3,1)": (3, 3, 3, 1),
    "odd branch (2,2,2,1)": (2, 2, 2, 1),
    "w* = 0 (2,2,2,0)": (2, 2, 2, 0),
}


class Budget(NamedTuple):
    """One fixed set of SGLD settings, given to both libraries."""

    eps: float
    gamma: float
    chains: int
    burn_in: int
    draws: int
    batch: int


BUDGETS = {
    "short": Budget(eps=1e-4, gamma=100.0, chains=4, burn_in=200, draws=1000, batch=100),
    "long": Budget(eps=2e-4, gamma=1.0, chains=4, burn_in=1000, draws=5000, batch=100),
}

# toysuper llc.Sampler field -> devinterp llc() keyword (module docstring)
MAPPING = {"eps": "lr", "gamma": "localization", "n_beta": "n_beta", "chains": "num_chains",
           "draws": "num_draws", "burn_in": "num_burnin_steps", "batch": "batch_size"}


def n_beta(n: int) -> float:
    """n beta at beta = 1 / log n, the same on both sides."""
    return n / math.log(n)


def sampler_kwargs(b: Budget, nb: float) -> dict:
    """toysuper's llc.Sampler fields for a budget: one round, no refinement."""
    return dict(eps=b.eps, gamma=b.gamma, chains=b.chains, draws=b.draws, burn_in=b.burn_in,
                batch=b.batch, n_beta=nb, rounds=1)


def devinterp_kwargs(b: Budget, nb: float, seed: int = 100) -> dict:
    """devinterp's llc() keywords for the same budget (MAPPING), one step between draws."""
    ours = sampler_kwargs(b, nb)
    out = {MAPPING[k]: ours[k] for k in MAPPING}
    return out | {"num_steps_bw_draws": 1, "init_seed": seed}


def closed_forms(cases: dict = CASES) -> list[dict]:
    """Per case: (M, H, N, r), the branch of Aoyagi & Watanabe's formula, lambda, d/2."""
    from toysuper import llc_theory

    rows = []
    for name, (M, H, N, r) in cases.items():
        c = llc_theory.rrr(M, H, N, r)
        rows.append({"case": name, "M": M, "H": H, "N": N, "r": r, "branch": c.branch,
                     "lam": c.lam, "mult": c.mult, "half_d": (H * M + N * H) / 2})
    return rows


def rrr_problem(M: int, H: int, N: int, r: int, n: int = N_EXAMPLES, noise: float = NOISE,
                seed: int = 0):
    """(A0: H x M, B0: N x H, x: n x M, y: n x N): the true map B0 A0 of rank r, orthonormal
    singular vectors and singular values 1; x centred and whitened (x^T x / n = I)."""
    rng = np.random.default_rng([seed, M, H, N, r])
    A0, B0 = np.zeros((H, M)), np.zeros((N, H))
    if r:
        A0[:r] = np.linalg.qr(rng.normal(size=(M, r)))[0].T
        B0[:, :r] = np.linalg.qr(rng.normal(size=(N, r)))[0]
    z = rng.normal(size=(n, M))
    z -= z.mean(0)
    x = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / n)).T
    y = x @ A0.T @ B0.T + noise * rng.normal(size=(n, N))
    return tuple(a.astype(np.float32) for a in (A0, B0, x, y))


def spread(lambdas) -> tuple[float, float]:
    """(mean over chains, standard deviation across chains)."""
    lam = np.asarray(lambdas, np.float64)
    return float(lam.mean()), float(lam.std(ddof=1)) if lam.size > 1 else math.nan


# ---- toysuper's side (jax) ----------------------------------------------------------------

SIZE = 3  # toysuper pads every case to A, B: 3 x 3 with masks, so that one program serves all


def padded(A0, B0, x, y, size: int = SIZE):
    """(w*, data, mask) padded to size: masked weights leave the loss unchanged, so they add
    nothing to lambda (tests/test_llc.py does the same); devinterp gets the unpadded model."""
    (H, M), N = A0.shape, B0.shape[0]
    w = {"A": np.zeros((size, size), np.float32), "B": np.zeros((size, size), np.float32)}
    mask = {"A": np.zeros((size, size), np.float32), "B": np.zeros((size, size), np.float32)}
    w["A"][:H, :M], w["B"][:N, :H] = A0, B0
    mask["A"][:H, :M], mask["B"][:N, :H] = 1, 1
    xp, yp = np.zeros((len(x), size), np.float32), np.zeros((len(y), size), np.float32)
    xp[:, :M], yp[:, :N] = x, y
    return w, (xp, yp), mask


def rrr_loss(w, batch, mask):
    """Mean over the batch of the squared error summed over outputs."""
    x, y = batch
    A, B = w["A"] * mask["A"], w["B"] * mask["B"]
    return ((y - x @ A.T @ B.T) ** 2).sum(-1).mean()


def _result(llc, chains, j: int, budget: Budget | None, seconds: float) -> dict:
    """Model j's row of an llc.estimate(models=True) output."""
    row = {k: v[j] for k, v in llc.summary(chains).items()}
    mean, sd = spread(chains.lambdas[j])
    if budget is None:  # the pilot, the first round's burn-in and draws, then draws a round
        first = llc.chain_length(llc.Sampler(
            eps=float(np.min(chains.eps)) * 2 ** (chains.rounds - 1), gamma=chains.gamma))
        steps = llc.PILOT + first.burn_in + chains.draws * chains.rounds
    else:
        steps = budget.burn_in + budget.draws
    return {"llc": mean, "sd": sd, "per_chain": [round(float(v), 4) for v in chains.lambdas[j]],
            "seconds": seconds, "verdict": llc.verdict(row), "eps": float(chains.eps[j]),
            "steps": steps, "gamma": chains.gamma, "batch": chains.batch,
            "burn_in": chains.burn_in, "draws": chains.draws, "rounds": chains.rounds,
            "moved": float(np.broadcast_to(chains.moved, chains.lambdas.shape[:1])[j])}


def run_toysuper(problems: dict, budget: Budget | None, seed: int = 0) -> tuple[dict, float]:
    """({case: result}, seconds of compilation). A fixed budget: one round per case, each case
    its own call (one program serves all; the first call, run twice, gives the compile time).
    None: the default procedure, every case in one vmapped call, its wall time (compilation
    included) shared by all."""
    import jax

    from toysuper import llc

    stack = lambda parts: jax.tree.map(lambda *a: np.stack(a), *parts)  # noqa: E731
    cases = {k: padded(*p) for k, p in problems.items()}
    key = jax.random.PRNGKey(seed)
    if budget is None:
        w, data, mask = (stack(p) for p in zip(*cases.values()))
        t0 = time.perf_counter()
        chains = llc.estimate(rrr_loss, data, w, jax.random.split(key, len(cases)), aux=mask,
                              models=True)
        seconds = time.perf_counter() - t0
        return {k: _result(llc, chains, j, None, seconds) for j, k in enumerate(cases)}, math.nan
    sampler = llc.Sampler(**sampler_kwargs(budget, n_beta(N_EXAMPLES)))
    out, first = {}, math.nan
    for i, (k, case) in enumerate(cases.items()):
        w, data, mask = stack([case])
        for _ in range(2 if i == 0 else 1):
            t0 = time.perf_counter()
            chains = llc.estimate(rrr_loss, data, w, key[None], sampler, aux=mask, models=True)
            seconds = time.perf_counter() - t0
            first = seconds if math.isnan(first) else first
        out[k] = _result(llc, chains, 0, budget, seconds)
    return out, first - out[next(iter(cases))]["seconds"]


# ---- devinterp's side (torch, run in the peer environment) -------------------------------

def peer_job(z, key: str, kw: dict) -> dict:
    """devinterp's llc() on the problem `key` of the .npz z, with the llc() keywords kw."""
    import warnings
    from importlib import metadata

    import torch
    from datasets import Dataset
    from devinterp.slt.llc import llc

    x, y = torch.tensor(z[f"{key}/x"]), torch.tensor(z[f"{key}/y"])
    n = len(x)

    class RRR(torch.nn.Module):
        def __init__(self, A0, B0):
            super().__init__()
            self.A, self.B = torch.nn.Parameter(torch.tensor(A0)), torch.nn.Parameter(torch.tensor(B0))

        def forward(self, xb):
            return xb @ self.A.T @ self.B.T

    def per_example(m, idx):
        return ((y[idx] - m(x[idx])) ** 2).sum(-1)

    def token_loss(m, input_ids):  # devinterp's per-token loss, (batch, context length 1)
        return per_example(m, input_ids[:, 0])[:, None]

    # devinterp samples a language model's data set: each example is its own index, twice
    ds = Dataset.from_dict({"input_ids": [[i, i] for i in range(n)]}).with_format("torch")
    model = RRR(z[f"{key}/A0"], z[f"{key}/B0"])
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        out = llc(model, ds, {}, loss_fn=token_loss, output_path=str(Path(tmp) / "s.zarr"), **kw)
        per_chain = np.asarray(out["llc_per_chain"].values, np.float64)
        trace = np.asarray(out["loss_trace"].values, np.float64)  # chain x step, burn-in included
        seconds = time.perf_counter() - t0
    with torch.no_grad():
        full = float(per_example(model, torch.arange(n)).mean())
    after = kw["n_beta"] * (trace[:, kw["num_burnin_steps"]:].mean(1) - full)
    return {"key": key, "per_chain": per_chain.round(4).tolist(),
            "after_burn_in": after.round(4).tolist(), "steps": trace.shape[1],
            "init_loss": float(out["init_loss"].values), "full_loss": full, "seconds": seconds,
            "versions": f"devinterp {metadata.version('devinterp')}, torch "
                        f"{torch.__version__}, {torch.get_num_threads()} threads"}


def peer_main(npz: str, jobs: str) -> None:
    """Each job of the JSON list `jobs` by devinterp, one JSON line each on stdout."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    z = np.load(npz)
    for job in json.loads(jobs):
        print(json.dumps(peer_job(z, job["key"], job["kwargs"])), flush=True)


def run_peer(python: str, problems: dict, budget: Budget, nb: float, tmp: Path,
             seed: int = 100) -> dict:
    """devinterp on every problem at one budget, in one subprocess: {case: its JSON line}."""
    npz = tmp / "problems.npz"
    np.savez(npz, **{f"{k}/{name}": a for k, p in problems.items()
                     for name, a in zip(("A0", "B0", "x", "y"), p)})
    jobs = [{"key": k, "kwargs": devinterp_kwargs(budget, nb, seed)} for k in problems]
    done = subprocess.run([python, __file__, "--peer", str(npz), json.dumps(jobs)],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"devinterp peer failed ({python}):\n{done.stderr[-3000:]}")
    lines = [json.loads(ln) for ln in done.stdout.splitlines() if ln.startswith("{")]
    return {ln["key"]: ln for ln in lines}


# ---- the comparison ------------------------------------------------------------------------

def cell(mean: float, sd: float, lam: float) -> str:
    return f"{mean:.2f} +- {sd:.2f} ({mean / lam - 1:+.0%})"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default=PEER_PYTHON,
                   help="python of the environment with devinterp ('' to skip the peer)")
    p.add_argument("--seed", type=int, default=0, help="toysuper's chain key")
    p.add_argument("--peer-seed", type=int, default=100, help="devinterp's init_seed")
    a = p.parse_args(argv)
    peer = a.peer_python if a.peer_python and Path(a.peer_python).exists() else None
    import jax

    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__} "
          f"({len(jax.devices())} {jax.devices()[0].platform} device), python "
          f"{sys.version.split()[0]}; load: {os.getloadavg()}", flush=True)
    if not peer:
        print(f"# devinterp: skipped (no python at {a.peer_python!r})", flush=True)
    nb = n_beta(N_EXAMPLES)
    t_all = time.perf_counter()
    table = closed_forms()
    problems = {row["case"]: rrr_problem(row["M"], row["H"], row["N"], row["r"]) for row in table}
    results = {row["case"]: {} for row in table}
    with tempfile.TemporaryDirectory() as tmp:
        for bname, budget in BUDGETS.items():
            print(f"# {bname}: {budget._asdict()}, n beta {nb:.1f}; devinterp llc() "
                  f"{devinterp_kwargs(budget, nb, a.peer_seed)}", flush=True)
            ours, compile_s = run_toysuper(problems, budget, a.seed)
            print(f"# toysuper {bname}: compilation {compile_s:.1f} s (once, not in the rows)",
                  flush=True)
            for k, v in ours.items():
                results[k][f"toysuper {bname}"] = v
            if peer:
                for k, line in run_peer(peer, problems, budget, nb, Path(tmp), a.peer_seed).items():
                    results[k][f"devinterp {bname}"] = line
        for k, v in run_toysuper(problems, None, a.seed)[0].items():
            results[k]["toysuper default"] = v
    for row in table:
        lam, r = row["lam"], results[row["case"]]
        print(f"\n{row['case']}: branch {row['branch']}, lambda {lam}, d/2 {row['half_d']}")
        for col, v in r.items():
            if col.startswith("devinterp"):
                print(f"  {col:>18}: {cell(*spread(v['per_chain']), lam)}; after burn-in vs "
                      f"L_n(w*) {cell(*spread(v['after_burn_in']), lam)}; {v['seconds']:.1f} s;"
                      f" {v['steps']} steps/chain; init_loss {v['init_loss']:.5f} vs L_n(w*) "
                      f"{v['full_loss']:.5f} [{v['versions']}]")
            else:
                print(f"  {col:>18}: {cell(v['llc'], v['sd'], lam)}; {v['seconds']:.1f} s; "
                      f"{v['steps']} steps/chain; eps {v['eps']:.2g} gamma {v['gamma']:.3g} "
                      f"batch {v['batch']} burn-in {v['burn_in']} draws {v['draws']} rounds "
                      f"{v['rounds']} moved {v['moved']:+.3f}; chains {v['per_chain']}; "
                      f"{v['verdict']}")
    cols = list(next(iter(results.values())))
    print("\n| case | branch | lambda | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for row in table:
        r = results[row["case"]]
        cells = [cell(*spread(r[c]["per_chain"]), row["lam"]) for c in cols]
        print(f"| {row['case']} | {row['branch']} | {row['lam']} | " + " | ".join(cells) + " |")
    print("\n| case | " + " | ".join(f"{c} (s)" for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for row in table:
        r = results[row["case"]]
        print(f"| {row['case']} | " + " | ".join(f"{r[c]['seconds']:.1f}" for c in cols) + " |")
    print(f"\n# total {time.perf_counter() - t_all:.0f} s; load: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--peer":
        peer_main(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
