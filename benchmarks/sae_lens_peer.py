"""Peer side of the SAE speed benchmark: SAELens (PyTorch) trains an SAE on synthetic data.

Runs in its own environment, never toysuper's (see the setup below); imports neither toysuper
nor jax. The data: n true features, random unit directions in m dims (fixed by --seed), each
active independently with probability --density at a magnitude U[0,1]; the hidden vector is the
sum of the active features' magnitudes times their directions.

Everything below is SAELens's own synthetic-data path, as its docs use it:
  - sae_lens.synthetic.FeatureDictionary(initializer=None): random unit directions (its default
    initializer would first push them towards orthogonal, which is not our data);
  - sae_lens.synthetic.ActivationGenerator: Bernoulli(density) firing at magnitude 1 (std 0),
    and a `modify_activations` hook that multiplies by U[0,1) so magnitudes are uniform, since
    its own magnitudes are only relu(mean + std * normal);
  - sae_lens.synthetic.train_toy_sae: SAELens's SAETrainer (Adam betas 0.9/0.999, constant lr,
    no warm-up, grad-norm clip 1.0, dead-latent window 1000 steps, data drawn every step);
  - TopKTrainingSAE / StandardTrainingSAE (ReLU + L1) with their default configs otherwise.
Timing covers train_toy_sae alone (data generation included: it happens inside every step).

Setup:
    python3 -m venv /work/peers/.venv
    /work/peers/.venv/bin/pip install torch==2.13.0   # first, so the CPU build is the one used
    /work/peers/.venv/bin/pip install sae-lens
Run:
    /work/peers/.venv/bin/python benchmarks/sae_lens_peer.py --kind topk --samples 10000000 \
        --out /tmp/topk.npz

With --given FILE.npz (benchmarks/sae_quality.py) the dictionary is not drawn here: the file's
`features` [m, n] replace FeatureDictionary's vectors and its `densities` [n] are the firing
probabilities, so both sides train on one dictionary and law; the trained SAE then encodes the
file's activations `h` [N, m] with its own `encode`, and the codes come back as `codes`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

os.environ.setdefault("TQDM_DISABLE", "1")  # the trainer's progress bar only adds noise to logs

import numpy as np
import sae_lens
import torch
from sae_lens import StandardTrainingSAE, StandardTrainingSAEConfig, TopKTrainingSAE, TopKTrainingSAEConfig
from sae_lens.synthetic import ActivationGenerator, FeatureDictionary, train_toy_sae
from scipy.optimize import linear_sum_assignment


def match(decoder: np.ndarray, true_features: np.ndarray) -> tuple[float, float]:
    """MCC and share recovered: one-to-one Hungarian matching on |cos| (columns = directions)."""
    d = decoder / np.maximum(np.linalg.norm(decoder, axis=0, keepdims=True), 1e-12)
    f = true_features / np.linalg.norm(true_features, axis=0, keepdims=True)
    cos = np.abs(d.T @ f)                                # d_sae x n
    rows, cols = linear_sum_assignment(cos, maximize=True)
    matched = cos[rows, cols]
    return float(matched.mean()), float((matched >= 0.99).sum() / f.shape[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", choices=["topk", "relu_l1"], required=True)
    p.add_argument("--n-features", type=int, default=256)
    p.add_argument("--n-hidden", type=int, default=64)
    p.add_argument("--density", type=float, default=0.02)
    p.add_argument("--d-sae", type=int, default=256)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--l1", type=float, default=0.3)
    p.add_argument("--samples", type=int, default=10_000_000)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--lr", type=float, default=3e-4, help="3e-4 is train_toy_sae's default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--given", default=None, help="an .npz of features, densities and h")
    p.add_argument("--out", required=True)
    a = p.parse_args()

    # Setup (untimed). The dictionary has its own seeded generator; the SAE's initialisation
    # and the activation generator draw from torch's global generator, seeded here.
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    feature_dict = FeatureDictionary(a.n_features, a.n_hidden, initializer=None, seed=a.seed)
    given = np.load(a.given) if a.given else None
    firing = a.density
    if given is not None:
        with torch.no_grad():
            feature_dict.feature_vectors.copy_(torch.from_numpy(given["features"].T.copy()))
        firing = torch.from_numpy(given["densities"].astype(np.float32))
    gen = ActivationGenerator(
        a.n_features, firing_probabilities=firing,
        mean_firing_magnitudes=1.0, std_firing_magnitudes=0.0,   # firing entries are exactly 1
        modify_activations=lambda acts: acts * torch.rand_like(acts),  # ... now U[0,1)
    )
    if a.kind == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=a.n_hidden, d_sae=a.d_sae, k=a.k))
    else:
        sae = StandardTrainingSAE(
            StandardTrainingSAEConfig(d_in=a.n_hidden, d_sae=a.d_sae, l1_coefficient=a.l1))

    t0 = time.perf_counter()
    train_toy_sae(sae, feature_dict, gen, training_samples=a.samples, batch_size=a.batch,
                  lr=a.lr)
    seconds = time.perf_counter() - t0
    # The trainer stops at the first whole batch that reaches --samples.
    samples = math.ceil(a.samples / a.batch) * a.batch

    decoder = sae.W_dec.detach().numpy().T.copy()                    # m x d_sae, raw norms
    true_features = feature_dict.feature_vectors.detach().numpy().T.copy()  # m x n, unit
    mcc, recovered = match(decoder, true_features)
    codes = {}
    if given is not None:
        with torch.no_grad():
            codes["codes"] = sae.encode(torch.from_numpy(given["h"])).numpy()
    result = dict(kind=a.kind, samples=samples, seconds=round(seconds, 3),
                  samples_per_s=round(samples / seconds, 1), mcc=round(mcc, 4),
                  recovered=round(recovered, 4), torch_threads=torch.get_num_threads(),
                  torch_version=torch.__version__, sae_lens_version=sae_lens.__version__,
                  n_features=a.n_features, n_hidden=a.n_hidden, density=a.density,
                  d_sae=a.d_sae, k=a.k, l1=a.l1, batch=a.batch, lr=a.lr, seed=a.seed)
    np.savez(a.out, decoder=decoder, true_features=true_features, **codes,
             **{k: v for k, v in result.items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
