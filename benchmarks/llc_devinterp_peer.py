"""Peer side of the LLC speed benchmark: devinterp (PyTorch) estimates an LLC by SGLD.

Runs in its own environment, never toysuper's (see the setup below); imports neither toysuper
nor jax. The model, its weights w* and the data come from an .npz written by
benchmarks/llc_speed.py, so both sides sample the same posterior:

  --model linear   y_hat = X w (d weights, no bias), loss (y - y_hat)^2 per example
  --model relu     x' = ReLU(W^T W x + b) (W: m x n, b: n), loss sum_i imp_i (x_i - x'_i)^2

Two ways of running devinterp 2.0.1:

  llc      its own pipeline, devinterp.slt.llc.llc -> sample(): DataLoader batches (shuffled
           once, then cycled: a fixed sequence of batches), SGMCMC.sgld, every step's per-example
           loss written to a zarr store, init_loss the mean over 32 batches. 2.0.1's sample() is
           written for language models (a Dataset with an "input_ids" column and a per-token
           loss of shape (batch, seq - 1)); here each example is input_ids = [i, i] (its index,
           so context length 1) and the loss looks row i up. The estimate per chain is
           n beta (mean sampling loss over the post-burn-in steps - init_loss), computed from
           its stored trace (devinterp's compute_llc averages over the burn-in too; with
           --burn-in 0 the two are the same number, which is also reported).
  loop     devinterp's SGMCMC.sgld optimizer in a plain loop (batches drawn with replacement,
           no storage): what torch + devinterp's optimizer cost without the pipeline.

Timing: for `llc`, the whole llc() call (its init loss, zarr store and sampling; the model and
data set are built before); for `loop`, the chains' steps alone.

Setup:
    python3 -m venv /work/peers2
    /work/peers2/bin/pip install torch==2.13.0   # first, so the CPU build is the one used
    /work/peers2/bin/pip install devinterp==2.0.1
Run:
    /work/peers2/bin/python benchmarks/llc_devinterp_peer.py --data /tmp/reg.npz --model linear \
        --lr 5e-3 --nbeta 12.8 --localization 0 --chains 4 --draws 500 --batch 100
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the chains' progress bars only add noise to logs

import devinterp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from devinterp.optim import SGMCMC  # noqa: E402
from devinterp.slt.llc import llc  # noqa: E402


class Linear(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w, dtype=torch.float32))

    def forward(self, x):
        return x @ self.w


class TiedReLU(torch.nn.Module):
    def __init__(self, W, b):
        super().__init__()
        self.W = torch.nn.Parameter(torch.tensor(W, dtype=torch.float32))
        self.b = torch.nn.Parameter(torch.tensor(b, dtype=torch.float32))

    def forward(self, x):                      # x: batch x n
        return torch.relu((x @ self.W.T) @ self.W + self.b)


def per_example(model_kind, z):
    """(model, per-example loss of rows X[idx]) for the model in the npz."""
    if model_kind == "linear":
        X, y = torch.tensor(z["X"], dtype=torch.float32), torch.tensor(z["y"], dtype=torch.float32)
        model = Linear(z["w"])

        def loss(m, idx):
            return (y[idx] - m(X[idx])) ** 2
    else:
        X = torch.tensor(z["X"], dtype=torch.float32)
        imp = torch.tensor(z["imp"], dtype=torch.float32)
        model = TiedReLU(z["W"], z["b"])

        def loss(m, idx):
            x = X[idx]
            return ((x - m(x)) ** 2 * imp).sum(-1)
    return model, loss, X.shape[0]


def run_pipeline(a, model, loss, n):
    ds = Dataset.from_dict({"input_ids": [[i, i] for i in range(n)]}).with_format("torch")

    def token_loss(m, input_ids):              # (batch, 2) -> (batch, 1)
        return loss(m, input_ids[:, 0])[:, None]

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        out = llc(model, ds, {}, lr=a.lr, n_beta=a.nbeta, loss_fn=token_loss,
                  num_chains=a.chains, num_draws=a.draws, num_burnin_steps=a.burn_in,
                  batch_size=a.batch, localization=a.localization, init_seed=a.seed,
                  output_path=str(Path(tmp) / "samples.zarr"))
        seconds = time.perf_counter() - t0
        trace = np.asarray(out["loss_trace"].values, np.float64)        # chain x step
        init = float(out["init_loss"].values)
        own = float(out["llc_mean"].values)
    with torch.no_grad():
        full = float(loss(model, torch.arange(n)).mean())
    kept = trace[:, a.burn_in:].mean(axis=1)
    # the same chains against L_n(w*) on the whole data set instead of devinterp's init_loss
    # (the mean over 32 batches: with 10 batches cycled, two of them weigh 4/32, the rest 3/32)
    a.full_baseline = [round(float(v), 4) for v in a.nbeta * (kept - full)]
    return a.nbeta * (kept - init), seconds, own


def run_loop(a, model, loss, n):
    torch.manual_seed(a.seed)
    with torch.no_grad():
        init = float(loss(model, torch.arange(n)).mean())
    lambdas, seconds = [], 0.0
    for c in range(a.chains):
        m = copy.deepcopy(model)
        opt = SGMCMC.sgld(m.parameters(), lr=a.lr, nbeta=a.nbeta, localization=a.localization)
        g = torch.Generator().manual_seed(a.seed + c)
        total = 0.0
        t0 = time.perf_counter()
        for step in range(a.burn_in + a.draws):
            idx = torch.randint(0, n, (a.batch,), generator=g)
            value = loss(m, idx).mean()
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            if step >= a.burn_in:
                total += float(value.detach())
        seconds += time.perf_counter() - t0
        lambdas.append(a.nbeta * (total / a.draws - init))
    return np.array(lambdas), seconds, math.nan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--model", choices=["linear", "relu"], required=True)
    p.add_argument("--mode", choices=["llc", "loop"], default="llc")
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--nbeta", type=float, required=True)
    p.add_argument("--localization", type=float, default=0.0)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=500)
    p.add_argument("--burn-in", type=int, default=0)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--seed", type=int, default=100)
    a = p.parse_args()
    z = np.load(a.data)
    model, loss, n = per_example(a.model, z)
    lambdas, seconds, own = (run_pipeline if a.mode == "llc" else run_loop)(a, model, loss, n)
    draws = a.chains * a.draws
    print(json.dumps(dict(
        mode=a.mode, model=a.model, llc=float(lambdas.mean()),
        llc_se=float(lambdas.std(ddof=1) / math.sqrt(len(lambdas))),
        llc_per_chain=[round(float(v), 4) for v in lambdas], devinterp_llc_mean=own,
        seconds=round(seconds, 3), draws_per_s=round(draws / seconds, 1),
        steps_per_s=round(a.chains * (a.draws + a.burn_in) / seconds, 1),
        llc_full_baseline=float(np.mean(getattr(a, "full_baseline", [math.nan]))),
        torch_threads=torch.get_num_threads(), torch_version=torch.__version__,
        devinterp_version=getattr(devinterp, "__version__", "2.0.1"))))


if __name__ == "__main__":
    main()
