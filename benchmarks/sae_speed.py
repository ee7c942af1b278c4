"""SAEs on synthetic data: toysuper against SAELens, training samples per second and quality, in one run.

    python benchmarks/sae_speed.py [--samples 10000000] [--sweep-samples 1000000]
        [--peer-python /work/peers/.venv/bin/python] [--kinds topk,relu_l1]

The data (both sides): n = 256 true features, random unit directions in m = 64 dimensions, each
active with probability 0.02 (true L0 about 5) at a magnitude U[0, 1]; d_sae = 256, batch 1024,
Adam at lr 3e-4 (SAELens's train_toy_sae default), constant schedule. TopK at k = 5 and ReLU + L1
at coefficient 0.3 (decoder-norm weighted on both sides).

  one SAE   each kind trained alone for --samples samples, on each side
  sweep     64 SAEs of one kind (64 seeds, so 64 dictionaries' worth of work) for --sweep-samples
            each, in one toysuper program; SAELens trains one SAE at a time, so its sweep rate is
            its one-SAE rate
Reported: samples per second (summed over the SAEs trained at once), MCC and recovered (|cos| >=
0.99) scored by toysuper.sae_scores on both sides' decoders. The peer runs in its own
environment (benchmarks/sae_lens_peer.py: torch 2.13.0 CPU, then sae-lens), as a subprocess;
without --peer-python only toysuper's side runs. Timings exclude compilation (toysuper) and
setup (both); data generation is inside every step on both sides. Quality at equal samples on
one shared dictionary, with the literature's scores and the lab's recommended settings, is
benchmarks/sae_quality.py's.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from toysuper import config, family, plan, sae_scores, sae_train, saes, sources, train

train.use_all_cpu_cores()

N, M, DENSITY, D_SAE, BATCH, LR = 256, 64, 0.02, 256, 1024, 3e-4
KNOBS = {"topk": {"sae.k": 5}, "relu_l1": {"sae.l1_coefficient": 0.3}}


def experiment(kind: str, samples: int, seeds: int) -> dict:
    steps = max(100, round(samples / BATCH / 100) * 100)
    return {"name": f"bench_{kind}", "source": {"n_features": N, "n_hidden": M},
            "data": {"density": DENSITY}, "sae": {"kind": kind, "width": D_SAE},
            "train": {"steps": steps, "batch": BATCH, "lr": LR, "log_every": 100,
                      "eval_batch": 65_536},
            "sweep": {"train.seed": {"range": seeds}, **{k: [v] for k, v in KNOBS[kind].items()}}}


def ours(kind: str, samples: int, seeds: int) -> dict:
    """Train `seeds` SAEs of `kind` at once; samples/s over all of them, compile excluded."""
    cfg = config.resolve(experiment(kind, samples, seeds))
    sweep = [sources.filled(s) for s in config.expand(cfg)]
    chunks = plan.chunks(sweep, 4096, fam=family.get("saes"))
    assert len(chunks) == 1
    c = chunks[0]
    hp = sae_train.inputs([sweep[i] for i in c.ids], c.width)
    shape = c.shape
    # compile every program on a copy of the inputs (one segment), then time a full run
    placed = train.place(hp)
    prog = sae_train.programs(shape)
    state = prog.init(placed)
    state, loss = prog.segment(state, placed, 0)
    jax.block_until_ready(prog.evaluate(state[0], placed))
    t0 = time.perf_counter()
    t = sae_train.train_saes(shape, hp)
    seconds = time.perf_counter() - t0
    trained = shape.steps * shape.batch
    rows = []
    for j in range(len(c.ids)):
        params = {k: v[j] for k, v in t.params.items()}
        dec = np.asarray(saes.decoder(params, kind))
        rows.append((sae_scores.mcc(dec, hp.F[j]), sae_scores.recovered(dec, hp.F[j])))
    mcc, rec = np.array(rows).T
    return {"side": "toysuper", "kind": kind, "saes": len(c.ids), "width": c.width,
            "samples": trained, "seconds": seconds,
            "samples_per_s": trained * c.width / seconds,  # padding copies included
            "useful_samples_per_s": trained * len(c.ids) / seconds,
            "mcc": float(mcc.mean()), "recovered": float(rec.mean())}


def peer(python: str, kind: str, samples: int) -> dict:
    """SAELens on the same data law (its own random dictionary of the same law), scored here."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "peer.npz"
        cmd = [python, str(Path(__file__).with_name("sae_lens_peer.py")), "--kind", kind,
               "--n-features", str(N), "--n-hidden", str(M), "--density", str(DENSITY),
               "--d-sae", str(D_SAE), "--k", "5", "--l1", "0.3", "--samples", str(samples),
               "--batch", str(BATCH), "--lr", str(LR), "--out", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        line = json.loads([ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1])
        z = np.load(out)
        dec, true = z["decoder"], z["true_features"]
    return {"side": "SAELens", "kind": kind, "saes": 1, "width": 1, "samples": samples,
            "seconds": line["seconds"], "samples_per_s": line["samples_per_s"],
            "useful_samples_per_s": line["samples_per_s"],
            "mcc": sae_scores.mcc(dec, true), "recovered": sae_scores.recovered(dec, true)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=10_000_000)
    p.add_argument("--sweep-samples", type=int, default=1_000_000)
    p.add_argument("--sweep", type=int, default=64)
    p.add_argument("--kinds", default="topk,relu_l1")
    p.add_argument("--peer-python", default=None)
    args = p.parse_args(argv)
    print(f"# {platform.machine()}, {len(jax.devices())} {jax.devices()[0].platform} device(s), "
          f"python {sys.version.split()[0]}, jax {jax.__version__}")
    rows = []
    for kind in args.kinds.split(","):
        rows.append({"run": "one SAE", **ours(kind, args.samples, 1)})
        if args.peer_python:
            rows.append({"run": "one SAE", **peer(args.peer_python, kind, args.samples)})
        rows.append({"run": f"sweep of {args.sweep}", **ours(kind, args.sweep_samples, args.sweep)})
        if args.peer_python:
            rows.append({"run": "one SAE (short)", **peer(args.peer_python, kind, args.sweep_samples)})
        for r in rows[-4:]:
            print(f"{r['run']:>16} {r['side']:>9} {r['kind']:>8}: {r['saes']:3d} SAE(s) x "
                  f"{r['samples'] / 1e6:5.1f}M samples in {r['seconds']:7.1f} s: "
                  f"{r['useful_samples_per_s'] / 1e3:8.0f}k samples/s; mcc {r['mcc']:.3f}, "
                  f"recovered {r['recovered']:.2f}", flush=True)
    base = {r["kind"]: r["useful_samples_per_s"] for r in rows
            if r["side"] == "SAELens" and r["run"] == "one SAE"}
    for r in rows:
        if r["side"] == "toysuper" and r["kind"] in base:
            print(f"ratio toysuper/SAELens, {r['run']}, {r['kind']}: "
                  f"{r['useful_samples_per_s'] / base[r['kind']]:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
