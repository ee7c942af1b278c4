"""SAE quality at equal samples: toysuper against SAELens on two dictionaries, in one run.

    python benchmarks/sae_quality.py [--samples 1000000] [--dicts bench,large]
        [--peer-python /work/peers/.venv/bin/python] [--write benchmarks/RESULTS.md]

Dictionaries (the same on both sides: this script draws the true features and densities and
hands them to the peer, so both train on one dictionary and one data law):
  bench   n = 256 random unit directions in m = 64, each active with probability 0.02 (true L0
          about 5), d_sae = 256: benchmarks/sae_speed.py's dictionary
  large   n = 512 in m = 128, power-law frequencies as SAELens's synthetic data draws them
          (zipfian_firing_probabilities' defaults: 1/rank mapped linearly onto [0.01, 0.3]; true
          L0 about 6.8), d_sae = 1024
An active feature has magnitude U[0, 1). Both sides: batch 1024, Adam at lr 3e-4 (SAELens's
train_toy_sae default), constant schedule, data drawn every step, TopK at k = the true L0
rounded (5 and 7) and ReLU + L1 with decoder-norm-weighted penalty at coefficients --l1.

Scores, all by toysuper.sae_scores on both sides, from the decoder and from codes on one shared
sample of CODE_SAMPLE activations (drawn here, encoded by each side's own encoder):
  mcc        the lab's decoder |cos| over the Hungarian matching (with d_sae >= n every feature
             is matched, so it equals the benchmarks' decoder matching over all n features)
  mmcs       Sharkey et al. 2022's mean max cosine similarity (signed)
  mcc_codes  the identifiability literature's MCC of codes (Khemakhem et al. 2020), signed
  dead       latents firing on none of the code sample; l0 their mean firing count per example

toysuper trains SAEs in chunks of sae_train.width_quantum (4 on this 2-core machine), so each
of its runs below is one chunk of four SAEs differing only in per-SAE settings (init_norm, L1
coefficient); the settings that fix the program (aux_k, grad_clip) get a chunk each. The wall
time of a toysuper row is its chunk's, shared by its four SAEs; compilation excluded. SAELens
trains one SAE per run (benchmarks/sae_lens_peer.py, in its own environment).

Recommended from its measurements (benchmarks/RESULTS.md, 2026-12-03) for new experiment files,
the defaults staying as the stored results were trained: sae.init_norm = 0.1 for every kind
(closes the ReLU + L1 gap to SAELens, lifts TopK well past it); for topk and batchtopk also
sae.aux_k = m/2, sae.aux_dead = 200, sae.aux_coefficient = 1/32; sae.grad_clip left at 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

from toysuper import config, family, plan, sae_scores, sae_train, saes, sources, train

train.use_all_cpu_cores()

BATCH, LR = 1024, 3e-4
CODE_SAMPLE = 16_384
DICTIONARIES = {
    "bench": {"n": 256, "m": 64, "d": 256, "density": 0.02, "k": 5},
    "large": {"n": 512, "m": 128, "d": 1024, "density": "zipf", "k": 7},
}


def densities(spec: dict) -> list[float]:
    """Flat, or power law the way SAELens's synthetic data draws it: 1 / rank, mapped linearly
    onto [0.01, 0.3] (its zipfian_firing_probabilities with exponent 1 and default bounds)."""
    if spec["density"] != "zipf":
        return [spec["density"]] * spec["n"]
    z = 1.0 / np.arange(1, spec["n"] + 1)
    return list(map(float, 0.01 + 0.29 * (z - z.min()) / (z.max() - z.min())))


# toysuper's runs: (label, kind, the chunk's shape settings, its four SAEs' per-SAE settings).
# AuxK as Gao et al. set it (k_aux a power of two near d_model / 2; SAELens: d_in // 2), a latent
# dead after 200 silent steps (theirs: 10M tokens; SAELens 1000 steps, most of a 1M-sample run).
# "topk" holds AuxK off (aux_coefficient 0: the auxiliary term adds exactly 0, the lab's
# default) beside Gao et al.'s 1/32 and SAELens's 1 in one chunk; "topk seeds" is the lab's
# default TopK at two seeds and both init norms.
def runs(spec: dict, l1: tuple) -> list[tuple]:
    aux = {"sae.aux_k": spec["m"] // 2, "sae.aux_dead": 200}
    four_aux = [{"sae.aux_coefficient": c, "sae.init_norm": v}
                for c, v in ((0.0, 1.0), (1 / 32, 1.0), (1.0, 1.0), (1 / 32, 0.1))]
    four_topk = [{"sae.init_norm": v, "train.seed": s} for v in (1.0, 0.1) for s in (0, 1)]
    four_l1 = [{"sae.init_norm": v, "sae.l1_coefficient": c} for v in (1.0, 0.1) for c in l1]
    l1_seeds = [{"sae.init_norm": 0.1, "sae.l1_coefficient": l1[0], "train.seed": s} for s in range(4)]
    return [("topk", "topk", aux, four_aux),
            ("topk seeds", "topk", {}, four_topk),
            ("relu_l1", "relu_l1", {}, four_l1),
            ("relu_l1 clip 1", "relu_l1", {"sae.grad_clip": 1.0}, four_l1),
            ("relu_l1 seeds", "relu_l1", {}, l1_seeds)]


def experiment(spec: dict, kind: str, shape: dict, cases: list[dict], samples: int) -> dict:
    steps = max(100, round(samples / BATCH / 100) * 100)
    sae = {"kind": kind, "width": spec["d"], "k": spec["k"],
           **{k.split(".")[1]: v for k, v in shape.items()}}
    return {"name": f"quality_{kind}",
            "source": {"n_features": spec["n"], "n_hidden": spec["m"]},
            "data": {"density": densities(spec)}, "sae": sae,
            "train": {"steps": steps, "batch": BATCH, "lr": LR, "log_every": 100,
                      "eval_batch": BATCH},
            "sweep": {"cases": cases}}


def code_sample(shape, hp) -> tuple[np.ndarray, np.ndarray]:
    """(x [N, n], h [N, m]) drawn from the source's law with a key of its own."""
    key = jax.random.key(12345)
    blocks = [sae_train.draw(shape, jax.random.fold_in(key, i), hp, BATCH)
              for i in range(CODE_SAMPLE // BATCH)]
    return (np.concatenate([np.asarray(x) for x, _ in blocks]),
            np.concatenate([np.asarray(h) for _, h in blocks]))


def score(decoder, features, x, f) -> dict:
    on = np.asarray(f) > 0
    return {"mcc": sae_scores.mcc(decoder, features),
            "mmcs": sae_scores.mmcs_signed(decoder, features),
            "mcc_codes": sae_scores.mcc_codes(x, f),
            "recovered": sae_scores.recovered(decoder, features),
            "dead": int((~on.any(axis=0)).sum()), "l0": float(on.sum(axis=1).mean())}


def source(spec: dict):
    """(shape, one SAE's inputs, x, h) of a dictionary: what both sides train and score on."""
    cfg = config.resolve(experiment(spec, "topk", {}, [{}], BATCH * 100))
    s = sources.filled(config.expand(cfg)[0])
    shape = sae_train.SaeShape.of(s)
    hp = jax.tree.map(lambda a: a[0], sae_train.inputs([s], 1))
    return (shape, hp, *code_sample(shape, hp))


def ours(spec, label, kind, shape_settings, cases, samples, x, h) -> list[dict]:
    cfg = config.resolve(experiment(spec, kind, shape_settings, cases, samples))
    sweep = [sources.filled(s) for s in config.expand(cfg)]
    (c,) = plan.chunks(sweep, 4096, fam=family.get("saes"))
    hp = sae_train.inputs([sweep[i] for i in c.ids], c.width)
    shape = c.shape
    placed = train.place(hp)  # compile every program first, then time a whole run
    prog = sae_train.programs(shape)
    state, _ = prog.segment(prog.init(placed), placed, 0)
    jax.block_until_ready(prog.evaluate(state[0], placed))
    t0 = time.perf_counter()
    t = sae_train.train_saes(shape, hp)
    seconds = time.perf_counter() - t0
    rows = []
    for j, i in enumerate(c.ids):
        params = {k: v[j] for k, v in t.params.items()}
        one = jax.tree.map(lambda a, j=j: a[j], hp)
        f = np.asarray(saes.forward(params, h, kind, shape.k, one, train=False)[2])
        knobs = ", ".join(f"{k.split('.')[1]} {v:.3g}" for k, v in cases[i].items())
        rows.append({"side": "toysuper", "run": f"{label} ({knobs})", "kind": kind,
                     "settings": {**shape_settings, **cases[i]},
                     "samples": shape.steps * shape.batch, "seconds": seconds, "saes": len(c.ids),
                     **score(np.asarray(saes.decoder(params, kind)), one.F, x, f)})
    return rows


def peer(python, spec, kind, l1, samples, hp, x, h, threads=0, seed=0) -> dict:
    """SAELens on the same dictionary and law, scored here."""
    with tempfile.TemporaryDirectory() as tmp:
        given, out = Path(tmp) / "given.npz", Path(tmp) / "peer.npz"
        np.savez(given, features=np.asarray(hp.W), densities=np.asarray(hp.p), h=h)
        cmd = [python, str(Path(__file__).with_name("sae_lens_peer.py")), "--kind", kind,
               "--n-features", str(spec["n"]), "--n-hidden", str(spec["m"]),
               "--d-sae", str(spec["d"]), "--k", str(spec["k"]), "--l1", str(l1),
               "--samples", str(samples), "--batch", str(BATCH), "--lr", str(LR),
               "--threads", str(threads), "--seed", str(seed), "--given", str(given), "--out", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"the peer failed:\n{done.stderr[-3000:]}")
        line = json.loads([ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1])
        z = np.load(out)
        decoder, f = z["decoder"], z["codes"]
    knobs = f"l1 {l1:g}, " if kind == "relu_l1" else ""
    knobs = f" ({knobs}seed {seed})"
    return {"side": "SAELens", "run": f"{kind}{knobs}", "kind": kind, "settings": {"l1": l1},
            "samples": line["samples"], "seconds": line["seconds"], "saes": 1,
            "versions": (line["torch_version"], line["sae_lens_version"]),
            **score(decoder, np.asarray(hp.F), x, f)}


def table(rows: list[dict]) -> str:
    out = ["| dictionary | side | run | samples | MCC (decoder) | MMCS | MCC (codes) | "
           "recovered | dead | L0 | wall s (SAEs) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['dict']} | {r['side']} | {r['run']} | {r['samples'] / 1e6:.2f}M | "
                   f"{r['mcc']:.3f} | {r['mmcs']:.3f} | {r['mcc_codes']:.3f} | "
                   f"{r['recovered']:.0%} | {r['dead']} | {r['l0']:.1f} | "
                   f"{r['seconds']:.0f} ({r['saes']}) |")
    return "\n".join(out)


def write(path: Path, text: str) -> None:
    """Put `text` between the sae_quality markers of `path` (appended the first time)."""
    start, end = "<!-- sae_quality.py -->", "<!-- /sae_quality.py -->"
    old = path.read_text()
    block = f"{start}\n{text}\n{end}"
    if start in old:
        new = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, old, flags=re.S)
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--dicts", default="bench,large")
    p.add_argument("--kinds", default="topk,relu_l1")
    p.add_argument("--l1", default="0.3,0.1", help="L1 coefficients (two: a chunk holds four SAEs)")
    p.add_argument("--peer-seed", type=int, default=0, help="the peer's seed (its SAE and its data)")
    p.add_argument("--peer-threads", type=int, default=0, help="the peer's torch threads (0: default)")
    p.add_argument("--peer-kinds", default=None, help="the kinds the peer trains (default: --kinds)")
    p.add_argument("--peer-l1", default=None, help="the peer's L1 coefficients (default: --l1)")
    p.add_argument("--runs", default="topk,relu_l1,relu_l1 clip 1",
                   help="toysuper's runs to train (labels of `runs`)")
    p.add_argument("--peer-python", default=None)
    p.add_argument("--write", default=None, help="a markdown file to put the table in")
    p.add_argument("--from-rows", default=None,
                   help="print the table of the JSON rows an earlier run printed (a file), no training")
    args = p.parse_args(argv)
    if args.from_rows:
        lines = Path(args.from_rows).read_text().splitlines()
        text = table([json.loads(ln) for ln in lines if ln.startswith("{")])
        print(text)
        if args.write:
            write(Path(args.write), text)
        return 0
    kinds = args.kinds.split(",")
    l1 = tuple(float(v) for v in args.l1.split(","))
    peer_l1 = tuple(float(v) for v in (args.peer_l1 or args.l1).split(","))
    chosen = args.runs.split(",")
    load = os.getloadavg()[0]
    head = (f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, load "
            f"average {load:.1f} at the start, {len(jax.devices())} "
            f"{jax.devices()[0].platform} device(s), python {sys.version.split()[0]}, "
            f"jax {jax.__version__}")
    print("#", head, flush=True)
    rows = []

    def done(new: list[dict]) -> None:  # each row printed as it comes, so a long run shows progress
        rows.extend(new)
        for r in new:
            print(json.dumps({k: v for k, v in r.items() if k != "versions"}), flush=True)

    for name in args.dicts.split(","):
        spec = DICTIONARIES[name]
        _, hp, x, h = source(spec)
        if args.peer_python:
            for kind in (args.peer_kinds or args.kinds).split(","):
                for c in (peer_l1 if kind == "relu_l1" else (0.0,)):
                    done([{"dict": name, **peer(args.peer_python, spec, kind, c, args.samples,
                                                hp, x, h, args.peer_threads,
                                                args.peer_seed)}])
        for label, kind, shape_settings, cases in runs(spec, l1):
            if kind in kinds and label in chosen:
                done([{"dict": name, **r} for r in
                      ours(spec, label, kind, shape_settings, cases, args.samples, x, h)])
        print(table([r for r in rows if r["dict"] == name]), flush=True)
    versions = {r["versions"] for r in rows if "versions" in r}
    if versions:
        head += ", peer: " + "; ".join(f"torch {t}, sae-lens {s}" for t, s in versions)
    head += f"; load average {os.getloadavg()[0]:.1f} at the end"
    if args.write:
        write(Path(args.write), f"Run: {head}.\n\n{table(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
