"""The LLC along training (Chen et al. 2023): every weight snapshot of every model estimated as if
it were a stored model, with a structure label, and the hand-built regular k-gons beside them.

Derived tables
  llc_snapshots  per (model, snapshot step): the LLC estimate at the snapshot's weights, its
                 standard error and diagnostics (toysuper/llc.py), the training-set loss there,
                 and `k`, the number of features with ||W_i|| >= metrics.REPRESENTED (0.5): a
                 snapshot of an n = 6, m = 2 model with k such features is near a k-gon.
  llc_kgons      per k = 4 .. n (k+ and k- for k < n, Chen et al.'s two biases of the
                 unrepresented features): the regular k-gon made a critical point of the first
                 model's LLC data set (llc_models.fit_kgon), its loss there and on fresh samples,
                 gradient norm, LLC estimate and the quadratic approximation's LLC, the
                 reference lines of the `llc_kgons` figure.

Snapshots use SNAPSHOT_SAMPLER (fixed settings), the k-gons both it and llc_models.SAMPLER (the
default procedure), on the same data set as the `llc` table: a finite-data model's own
training set (n = T), else llc_models.N fresh samples from its evaluation key. A snapshot taken
mid-transition is not a critical point; its estimate may be negative or flagged (`verdict`).
"""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd

from toysuper import config, llc, llc_models, metrics, needs, train
from toysuper.results import SHAPE

# Snapshots estimated together (vmapped): 64 x 4 chains of an n = 6 model is a few MB.
GROUP = 64
# Folded into a model's evaluation key (after llc_models.TAG + 1, the `llc` table's chains),
# then with the snapshot's step, for its chains.
TAG = llc_models.TAG + 2
# The snapshots' sampler: fixed settings, one round. Most snapshots are not critical points, where
# no setting is right, and 240 of them through llc's default procedure take ~10x longer; these
# are the lab's earlier settings (eps 1e-3, gamma 10, 4 x 2,000 draws after 500, batch 100), so
# snapshots compare with each other and with the k-gons' `llc` column (same settings), while the
# k-gons' `llc_calibrated` is the default procedure's estimate (docs/llc.md).
SNAPSHOT_SAMPLER = llc.Sampler(eps=1e-3, gamma=10.0, chains=4, draws=2000, burn_in=500,
                               batch=100, rounds=1)
# Fresh samples on which the k-gons' population loss is measured (Chen et al.'s closed forms are
# population losses): the sampling error of the mean is ~0.3% of it.
POPULATION = 1 << 16

NEEDS = (needs.every("train.snapshots", lambda v: isinstance(v, int) and not isinstance(v, bool)
                     and v > 0, "train.snapshots > 0 (weights saved during training)"),)
KGON_NEEDS = (needs.every("model.n_hidden", [2], "model.n_hidden = 2 (k-gons in a plane)"),
              needs.every("model.kind", ["relu"], "the ReLU output model (model.kind = 'relu')"))


def label(W) -> int:
    """The structure label of an embedding: features with ||W_i|| >= metrics.REPRESENTED."""
    return int((metrics.norms(np.asarray(W, np.float64)) >= metrics.REPRESENTED).sum())


def _snapshot_params(res, model: int) -> tuple[np.ndarray, dict]:
    """(steps[k], {name: [k, ...]}) of one model's snapshots, padding removed."""
    steps = res.snapshots["step"][model]
    kept = int((steps > 0).sum())
    names = [k for k in res.snapshots if not k.endswith(SHAPE) and k != "step"]
    out = {}
    for name in names:
        shape = res.snapshots[name + SHAPE][model]
        # the shape entry covers the snapshot axis too (as in Results.snapshot_W)
        a = res.snapshots[name][model][tuple(slice(0, int(k)) for k in shape)]
        out[name] = np.asarray(a[:kept])
    return steps[steps > 0], out


def _loss_many(shape):
    return jax.jit(jax.vmap(llc_models.loss_fn(shape)))


def snapshots(res, sampler: llc.Sampler | None = None, size: int = llc_models.N):
    """llc_snapshots.parquet: per (model, snapshot step), LLC, loss and structure label k."""
    sampler = SNAPSHOT_SAMPLER if sampler is None else sampler
    sweep = config.expand(res.config)
    groups: dict = {}
    for i in res.models["model"]:
        groups.setdefault(train.Shape.of(sweep[int(i)]), []).append(int(i))
    rows = []
    for shape, ids in groups.items():
        hp = train.inputs([sweep[i] for i in ids], len(ids))
        X = np.asarray(llc_models._data(shape, size)(hp))  # [models, n, features]
        # (position of the model in ids, step, params) of every snapshot
        items = []
        for j, model in enumerate(ids):
            steps, params = _snapshot_params(res, model)
            items += [(j, model, int(s), {k: v[t] for k, v in params.items()})
                      for t, s in enumerate(steps)]
        for lo in range(0, len(items), GROUP):
            part = items[lo:lo + GROUP]
            at = np.array([p[0] for p in part])
            w = {"params": {k: np.stack([p[3][k] for p in part]) for k in part[0][3]}}
            imp = np.asarray(hp.imp)[at]
            keys = jax.vmap(lambda k, s: jax.random.fold_in(jax.random.fold_in(k, TAG), s))(
                hp.eval_key[at], np.array([p[2] for p in part]))
            chains = llc.estimate(llc_models.loss_fn(shape), X[at], w, keys, sampler, aux=imp,
                                  models=True)
            summary = llc.summary(chains)
            loss = np.asarray(_loss_many(shape)(w, X[at], imp))
            for r, (_, model, step, p) in enumerate(part):
                row = {"model": model, "step": step, "k": label(p["W"]), "loss": float(loss[r]),
                       **{key: v[r].item() for key, v in summary.items()}, "n": int(X.shape[1])}
                row["verdict"] = llc.verdict(row)
                rows.append(row)
    table = pd.DataFrame(rows).sort_values(["model", "step"], ignore_index=True)
    for col in ("diverged_chains", "drifted_chains", "negative_chains", "chains", "draws",
                "burn_in", "batch", "rounds"):
        table[col] = table[col].astype(int)
    for col in ("chains_disagree", "above_half_d", "unsettled", "settings_bias"):
        table[col] = table[col].astype(bool)
    return table


def kgons(res, sampler: llc.Sampler | None = None, size: int = llc_models.N, ks=None,
          calibrated: llc.Sampler | None = None):
    """llc_kgons.parquet: per regular k-gon fitted to the first model's LLC data set (a critical
    point of its loss), k = 4 .. n, each k < n twice: Chen et al.'s k+ and k- (the unrepresented
    features' output biases positive or negative), its loss there and on POPULATION fresh
    samples, gradient norm, LLC with the snapshots' sampler, and the quadratic approximation's
    LLC at the same n beta and gamma with the Hessian's rank (llc_models.quadratic_llc); and the
    LLC by llc's default procedure (`calibrated`, default llc_models.SAMPLER), its columns
    suffixed _calibrated."""
    sampler = SNAPSHOT_SAMPLER if sampler is None else sampler
    calibrated = llc_models.SAMPLER if calibrated is None else calibrated
    sweep = config.expand(res.config)
    first = int(res.models["model"].min())
    s = sweep[first]
    shape = train.Shape.of(s)
    hp = jax.tree.map(lambda a: a[0], train.inputs([s], 1))
    X = np.asarray(llc_models._data(shape, size)(jax.tree.map(lambda a: a[None], hp)))[0]
    fresh = train.draw(shape, jax.random.fold_in(hp.eval_key, TAG + 3), hp, POPULATION)
    fresh = np.asarray(fresh.T if shape.columns else fresh)
    ks = list(range(4, shape.n + 1)) if ks is None else list(ks)
    variants = [(k, sign) for k in ks for sign in ((1,) if k == shape.n else (1, -1))]
    fits = [llc_models.fit_kgon(shape, hp, X, k, rest=0.05 * sign) for k, sign in variants]
    w = {"params": {name: np.stack([f[0]["params"][name] for f in fits]) for name in ("W", "b")}}
    keys = jax.random.split(jax.random.fold_in(hp.eval_key, TAG + 1), len(variants))
    chains = llc.estimate(llc_models.loss_fn(shape), X, w, keys, sampler,
                          aux=np.stack([hp.imp] * len(variants)), models=True, shared_data=True)
    summary = llc.summary(chains)
    chains = llc.estimate(llc_models.loss_fn(shape), X, w, jax.vmap(
        lambda k: jax.random.fold_in(k, 1))(keys), calibrated,
        aux=np.stack([hp.imp] * len(variants)), models=True, shared_data=True)
    best = llc.summary(chains)
    loss = llc_models.loss_fn(shape)
    rows = []
    for r, ((k, sign), (params, fit_loss, grad)) in enumerate(zip(variants, fits)):
        quad, rank = llc_models.quadratic_llc(shape, hp, X, params, float(summary["n_beta"][r]),
                                              float(summary["gamma"][r]))
        row = {"k": k, "variant": f"{k}" if k == shape.n else f"{k}{'+' if sign > 0 else '-'}",
               "data_model": first, "loss": fit_loss,
               "population_loss": float(loss(params, fresh, hp.imp)), "grad_norm": grad,
               **{key: v[r].item() for key, v in summary.items()}, "n": int(X.shape[0]),
               "quadratic_llc": quad, "hessian_rank": rank}
        row["verdict"] = llc.verdict(row)
        cal = {key: v[r].item() for key, v in best.items()}
        row.update({f"{key}_calibrated": v for key, v in cal.items()
                    if key in ("llc", "llc_se", "n_beta", "eps", "gamma", "chains", "draws",
                               "burn_in", "batch", "rounds", "moved")})
        row["verdict_calibrated"] = llc.verdict(cal)
        rows.append(row)
    return pd.DataFrame(rows)
