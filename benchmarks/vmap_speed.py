"""Model-steps per second: a sweep trained as one vmapped program vs one model at a time.

    python benchmarks/vmap_speed.py [--models 64] [--steps 500]

Both runs use the same toysuper programs in the same process (the baseline is the same code
with a model axis of 1, called once per model), so the ratio is the gain from batching models.
Compile time is excluded: each shape is run once to warm up before it is timed.
"""

import argparse
import time

import numpy as np

from toysuper import config, sweep, train


def timed(shape, hp):
    train.train(shape, hp)  # compile
    t0 = time.perf_counter()
    train.train(shape, hp)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=64)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--m", type=int, default=5)
    args = ap.parse_args()
    cfg = config.resolve({"model": {"n_features": args.n, "n_hidden": args.m},
                          "train": {"steps": args.steps, "eval_batch": 1024},
                          "sweep": {"data.density": {"logspace": [1, 0.01], "num": args.models}}})
    settings = config.expand(cfg)
    shape = train.Shape.of(settings[0])
    all_hp = sweep.hyper(settings, list(range(args.models)), sweep._round_up(args.models))
    vmapped = timed(shape, all_hp)
    one = sweep.hyper(settings, [0], 1)
    per_model = timed(shape, one)  # the same for every model: shapes, not values, set the cost
    rate_v = args.models * args.steps / vmapped
    rate_1 = args.steps / per_model
    print(f"n={args.n} m={args.m} batch={shape.batch} steps={args.steps} models={args.models}")
    print(f"vmapped sweep : {rate_v:12.0f} model-steps/s")
    print(f"one at a time : {rate_1:12.0f} model-steps/s")
    print(f"ratio         : {rate_v / rate_1:12.1f}x")


if __name__ == "__main__":
    main()
