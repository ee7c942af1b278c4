"""Model-steps per second of toysuper against the reference loop in PyTorch, in one run.

    python benchmarks/speed.py [--workloads a,b,c] [--scale 1.0] [--repeats 3]

Workloads (batch 1024, ReLU output model, densities log-spaced 1..0.01 over the models):
  a  geometry:   20 models, n = 200, m = 20
  b  phase grid: 1,024 models, n = 2, m = 1
  c  wide sweep: 10,000 models, n = 20, m = 5
For each: toysuper's and the baseline's model-steps per second and their ratio, toysuper's
useful GFLOP/s (10 B n m per model-step: the forward, backward and weight-gradient products),
and that as a share of this machine's matmul rate, measured here on a 2048^3 float32 product.
Compilation and one warm-up call are excluded from both sides; each side is timed `--repeats`
times and the best kept, since a shared machine only ever slows a run down. On a CPU toysuper
runs as the `toysuper` command does, with one JAX device per core; PyTorch uses its default
intra-op threads (one per core).
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

import toysuper
from toysuper import config, train

train.use_all_cpu_cores()  # as the toysuper command does: one CPU device per core

# name: (models, n, m, toysuper steps, baseline steps), steps sized for a few seconds per run
WORKLOADS = {"a": (20, 200, 20, 200, 20), "b": (1024, 2, 1, 500, 50),
             "c": (10_000, 20, 5, 20, 3)}
BATCH = 1024


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    a = jnp.asarray(np.random.default_rng(0).random((size, size), np.float32))
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def toysuper_rate(models: int, n: int, m: int, steps: int, repeats: int) -> float:
    """Model-steps per second training `models` models for `steps` steps (one compiled chunk)."""
    cfg = config.resolve({"model": {"n_features": n, "n_hidden": m},
                          "train": {"steps": steps, "log_every": math.gcd(steps, 100), "batch": BATCH,
                                    "eval_batch": BATCH},
                          "run": {"chunk_size": models},
                          "sweep": {"data.density": {"logspace": [1, 0.01], "num": models}}})
    run = lambda: toysuper.train_sweep(cfg)  # noqa: E731
    run()  # compile and warm up
    return models * steps / min(_timed(run) for _ in range(repeats))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="a,b,c")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every step count")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-baseline", action="store_true", help="skip PyTorch (not installed)")
    args = ap.parse_args()

    rate = matmul_gflops()
    print(f"{platform.processor() or platform.machine()}, {jax.device_count()} x "
          f"{jax.devices()[0].device_kind}, jax {jax.__version__}; matmul rate {rate:.0f} GFLOP/s")
    if not args.no_baseline:
        import torch_baseline  # noqa: F401  (beside this file)
    print(f"{'':3} {'models':>6} {'n':>4} {'m':>3} {'toysuper':>12} {'baseline':>12} {'ratio':>7}"
          f" {'GFLOP/s':>8} {'of matmul':>9}")
    for name in args.workloads.split(","):
        models, n, m, steps, baseline_steps = WORKLOADS[name]
        steps = max(1, round(steps * args.scale))
        ours = toysuper_rate(models, n, m, steps, args.repeats)
        base = np.nan
        if not args.no_baseline:
            base = max(torch_baseline.model_steps_per_second(
                models, n, m, BATCH, max(1, round(baseline_steps * args.scale)))
                for _ in range(args.repeats))
        gflops = ours * 10 * BATCH * n * m / 1e9
        print(f"{name:3} {models:6d} {n:4d} {m:3d} {ours:12.0f} {base:12.0f} {ours / base:6.1f}x"
              f" {gflops:8.1f} {gflops / rate:8.0%}", flush=True)


if __name__ == "__main__":
    main()
