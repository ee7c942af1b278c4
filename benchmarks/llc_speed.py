"""The local learning coefficient (LLC): toysuper against devinterp, estimates and SGLD draws per
second on the same models and data, in one run.

    python benchmarks/llc_speed.py [--peer-python /work/peers2/bin/python] [--sweep 256]

Workloads (the data generated here with NumPy and handed to the peer as an .npz):

  regression  y = X w0 + noise, x ~ N(0, I_10), n = 1000, w* the least squares fit, loss the
              squared error; devinterp's example settings: lr (eps) 5e-3, n beta 12.8, no
              localization, 4 chains x 500 draws, no burn-in, batch 100.
  5-gon       the tied 6-in-2 model x' = ReLU(W^T W x + b) at a regular 5-gon fitted to the
              one-hot data set of n = 1000 (llc_models.fit_kgon, as benchmarks/llc_kgons.py);
              llc_dynamics.SNAPSHOT_SAMPLER at n beta 144.8: eps 1e-3, gamma 10 (devinterp's
              localization), 4 chains x 2,000 draws after 500 burn-in, batch 100.
  long        both sides again with --long-chains chains (and --long-draws for the
              regression): the 4-chain runs' standard errors are too wide to compare estimates.
  sweeps      toysuper only, many models x chains in one vmapped program (`models=True`):
              --sweep copies of the regression problem, each with its own data seed, and 64
              5-gon models (the same w*, different chain keys). devinterp estimates one model at
              a time, so its sweep rate is its one-model rate.

Draws per second = models x chains x draws / seconds of sampling (burn-in steps are run but not
counted, on both sides). toysuper's timings exclude compilation (each program is run once
before, then timed best of --repeats); devinterp's llc() is timed whole (init loss and its zarr
store included), its plain SGLD loop without setup. The ratios divide by devinterp's best
one-model rate for that model (llc() has a fixed cost per call, so its long runs are faster). The peer
(benchmarks/llc_devinterp_peer.py, torch 2.13.0 CPU + devinterp 2.0.1 in its own environment)
runs devinterp's own pipeline (`devinterp.slt.llc.llc`) and, for reference, its SGMCMC.sgld
optimizer in a plain loop; without --peer-python only toysuper's side runs.
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
import jax.numpy as jnp
import numpy as np

from toysuper import config, llc, llc_dynamics, llc_models, train

D, N = 10, 1000
# fixed settings, one round each (llc's default procedure would add its pilot and refinements)
REG = llc.Sampler(eps=5e-3, gamma=0.0, chains=4, draws=500, burn_in=0, batch=100, n_beta=12.8,
                  rounds=1)
KGON = llc_dynamics.SNAPSHOT_SAMPLER._replace(n_beta=144.8)


def regression_data(seed: int):
    r = np.random.default_rng(seed)
    X = r.standard_normal((N, D)).astype(np.float32)
    y = (X @ r.standard_normal(D) + r.standard_normal(N)).astype(np.float32)
    w = np.linalg.lstsq(X, y, rcond=None)[0].astype(np.float32)
    return X, y, w


def exact(X, sampler):
    """The regression's answer for SGLD at step eps without minibatch noise: the posterior of a
    quadratic loss is Gaussian, and each eigendirection (precision p = n beta h, h an eigenvalue
    of the Hessian 2 X^T X / n) contributes 1 / (2 (1 - eps p / 4)) at gamma = 0."""
    p = sampler.n_beta * np.linalg.eigvalsh(2 * X.T.astype(np.float64) @ X / len(X))
    return float(np.sum(1 / (2 * (1 - sampler.eps * p / 4))))


def mse(w, batch):
    X, y = batch
    return jnp.mean((y - X @ w) ** 2)


def timed(run, repeats: int):
    """run(key) once to compile, then best of `repeats` timed runs, all with key 0 (the same
    chains each time, so the estimate does not depend on which run was fastest)."""
    jax.block_until_ready(run(jax.random.PRNGKey(99)).lambdas)
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = run(jax.random.PRNGKey(0))
        seconds = time.perf_counter() - t0
        if seconds < best:
            best, out = seconds, res
    return out, best


def row(workload, side, lam, se, draws, seconds, note=""):
    return {"workload": workload, "side": side, "llc": float(lam), "llc_se": float(se),
            "draws": int(draws), "seconds": float(seconds), "draws_per_s": draws / seconds,
            "note": note}


def ours_one(workload, loss, data, w_star, sampler, repeats, aux=None):
    chains, seconds = timed(lambda k: llc.estimate(loss, data, w_star, k, sampler, aux=aux),
                            repeats)
    s = llc.summary(chains, sampler)
    return row(workload, "toysuper", s["llc"], s["llc_se"], sampler.chains * sampler.draws,
               seconds, llc.verdict(s))


def ours_sweep(workload, loss, data, w_star, sampler, models, repeats, aux=None, shared=False):
    def run(k):
        keys = jax.random.split(k, models)
        return llc.estimate(loss, data, w_star, keys, sampler, aux=aux, models=True,
                            shared_data=shared)
    chains, seconds = timed(run, repeats)
    s = llc.summary(chains, sampler)
    verdicts = [llc.verdict({key: v[j] for key, v in s.items()}) for j in range(models)]
    flagged = sum(v != "ok" for v in verdicts)
    flagged = f"{flagged} ({'; '.join(sorted({v for v in verdicts if v != 'ok'}))})" if flagged else 0
    return row(workload, "toysuper", s["llc"].mean(), s["llc"].std(ddof=1) / np.sqrt(models),
               models * sampler.chains * sampler.draws, seconds,
               f"{models} models, mean over models +- se; {flagged} flagged")


def peer(python, workload, npz, model, sampler, mode):
    cmd = [python, str(Path(__file__).with_name("llc_devinterp_peer.py")), "--data", str(npz),
           "--model", model, "--mode", mode, "--lr", str(sampler.eps), "--nbeta",
           str(sampler.n_beta), "--localization", str(sampler.gamma), "--chains",
           str(sampler.chains), "--draws", str(sampler.draws), "--burn-in", str(sampler.burn_in),
           "--batch", str(sampler.batch)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    line = json.loads([ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1])
    side = "devinterp llc()" if mode == "llc" else "devinterp SGLD loop"
    note = f"chains {line['llc_per_chain']}"
    if mode == "llc":
        note += (f"; devinterp's own llc_mean {line['devinterp_llc_mean']:.3f}; against the "
                 f"full-data L_n(w*) {line['llc_full_baseline']:.3f}")
    r = row(workload, side, line["llc"], line["llc_se"], sampler.chains * sampler.draws,
            line["seconds"], note)
    r["versions"] = f"torch {line['torch_version']}, devinterp {line['devinterp_version']}"
    return r


def five_gon():
    s = config.expand(config.resolve(llc_models.one_hot_config()))[0]
    shape = train.Shape.of(s)
    hp = jax.tree.map(lambda a: a[0], train.inputs([s], 1))
    X = np.asarray(train.dataset(shape, hp))
    X = X.T if shape.columns else X
    params, loss, grad = llc_models.fit_kgon(shape, hp, X, 5)
    print(f"# 5-gon: loss {loss:.4f}, |grad| {grad:.1e}", flush=True)
    return shape, hp, X, params


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default=None)
    p.add_argument("--sweep", type=int, default=256, help="regression copies in the sweep")
    p.add_argument("--kgon-sweep", type=int, default=64, help="5-gon models in the sweep")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--long-chains", type=int, default=16,
                   help="chains of the long runs (both sides), to compare the estimates")
    p.add_argument("--long-draws", type=int, default=2000, help="draws of the long regression")
    args = p.parse_args(argv)
    print(f"# {platform.machine()}, {len(jax.devices())} {jax.devices()[0].platform} device(s), "
          f"python {sys.version.split()[0]}, jax {jax.__version__}", flush=True)
    t_start = time.perf_counter()
    rows = []

    def show(r):
        rows.append(r)
        print(f"{r['workload']:>22} {r['side']:>20}: {r['llc']:6.3f} +- {r['llc_se']:.3f}  "
              f"{r['draws']:9d} draws in {r['seconds']:7.3f} s = {r['draws_per_s']:10.0f} draws/s"
              f"  [{r['note']}]", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        X, y, w = regression_data(0)
        reg_npz = Path(tmp) / "regression.npz"
        np.savez(reg_npz, X=X, y=y, w=w)
        print(f"# regression: d/2 = {D / 2}; exact for SGLD at eps {REG.eps} without minibatch "
              f"noise {exact(X, REG):.3f}", flush=True)
        show(ours_one("regression", mse, (jnp.asarray(X), jnp.asarray(y)), jnp.asarray(w), REG,
                      args.repeats))
        if args.peer_python:
            for mode in ("llc", "loop"):
                show(peer(args.peer_python, "regression", reg_npz, "linear", REG, mode))
        long = REG._replace(chains=args.long_chains, draws=args.long_draws)
        show(ours_one("regression, long", mse, (jnp.asarray(X), jnp.asarray(y)), jnp.asarray(w),
                      long, args.repeats))
        if args.peer_python:
            show(peer(args.peer_python, "regression, long", reg_npz, "linear", long, "llc"))

        shape, hp, Xk, params = five_gon()
        kgon_npz = Path(tmp) / "kgon.npz"
        np.savez(kgon_npz, X=Xk, W=params["params"]["W"], b=params["params"]["b"],
                 imp=np.asarray(hp.imp))
        show(ours_one("5-gon", llc_models.loss_fn(shape), jnp.asarray(Xk), params, KGON,
                      args.repeats, aux=hp.imp))
        if args.peer_python:
            for mode in ("llc", "loop"):
                show(peer(args.peer_python, "5-gon", kgon_npz, "relu", KGON, mode))
        long = KGON._replace(chains=args.long_chains)
        show(ours_one("5-gon, long", llc_models.loss_fn(shape), jnp.asarray(Xk), params, long,
                      args.repeats, aux=hp.imp))
        if args.peer_python:
            show(peer(args.peer_python, "5-gon, long", kgon_npz, "relu", long, "llc"))

        data = [regression_data(seed) for seed in range(args.sweep)]
        Xs, ys, ws = (jnp.asarray(np.stack(a)) for a in zip(*data))
        show(ours_sweep(f"regression sweep x{args.sweep}", mse, (Xs, ys), ws, REG, args.sweep,
                        args.repeats))
        m = args.kgon_sweep
        stacked = jax.tree.map(lambda a: np.stack([a] * m), params)
        show(ours_sweep(f"5-gon sweep x{m}", llc_models.loss_fn(shape), jnp.asarray(Xk), stacked,
                        KGON, m, args.repeats, aux=np.stack([np.asarray(hp.imp)] * m),
                        shared=True))

    # devinterp's one-model rate per model: its best (llc() pays a fixed cost per call, so the
    # long runs are faster); the sweeps are measured against it
    def key(r):
        return r["workload"].split(" sweep")[0].split(",")[0]
    base, loop = {}, {}
    for r in rows:
        for side, into in (("devinterp llc()", base), ("devinterp SGLD loop", loop)):
            if r["side"] == side:
                into[key(r)] = max(into.get(key(r), 0.0), r["draws_per_s"])
    for r in rows:
        k = key(r)
        if r["side"] == "toysuper" and k in base:
            print(f"ratio toysuper/devinterp, {r['workload']}: {r['draws_per_s'] / base[k]:.1f}x "
                  f"against llc() ({base[k]:.0f}/s), {r['draws_per_s'] / loop[k]:.1f}x against "
                  f"the SGLD loop ({loop[k]:.0f}/s)")
    for r in rows:
        if "versions" in r:
            print(f"# peer: {r['versions']}")
            break
    print(f"# {time.perf_counter() - t_start:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
