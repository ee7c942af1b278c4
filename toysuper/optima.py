"""Is a trained model an optimum? Its loss against the trivial exact solutions of its task.

A trained model is evidence only if it beats the solutions anyone could write down
(docs/README.md, "Principles"):
  constant     every output at its optimal constant E[target_i] (p_i/2 for magnitudes U[0, 1]
               or |U[-1, 1]|), a loss of I_i Var(target_i) = I_i (p_i/3 - p_i^2/4) per feature;
  top-k exact  the k features worth most reproduced exactly, the rest at their constant: k = m
               for the tied models (W's columns unit vectors in k hidden dimensions), k = m/2
               for the computation model (each feature on an x+ and an x- neuron); each kind's
               own construction is its models.Spec.baselines.
Both are built for each model and scored by the model's own evaluation program on the model's
own evaluation sample (common random numbers), beside the trained weights. In "sample" mode the
evaluation's blocks are independent batches, so the paired difference has a standard error.

Rules (module constants, so that a changed rule relabels stored results on `toysuper plot`):
  TRAPPED    a model is trapped when its loss exceeds the best baseline's by more than SE_MULTIPLE
             standard errors of the paired difference and by more than RELATIVE of the baseline.
             The floor is for models whose optimum is the construction itself (dense models),
             which Adam brings to within ~0.2% of it, not to it; and for "strata" evaluation,
             whose blocks are not independent, so that no standard error is computed.
             A diverged model (NaN weights, run.on_diverge = "keep") is trapped: it holds
             no solution (docs/failures.md); `diverged` marks it in optima.parquet.
  LOCAL      a sweep cell's kept (lowest-loss) model is at a local minimum when the kept model of
             a neighbouring cell (one step along one numeric sweep axis), scored at this cell's
             settings on this cell's evaluation sample, beats it by the same margin: the
             cell's optimum is at least that good, so its kept model is not the optimum.
Dead units: an output (models with an output ReLU) or hidden neuron (models with a hidden ReLU)
whose pre-activation is never positive on the evaluation sample gets no gradient: the usual trap.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from toysuper import config, models, settings, train
from toysuper import verdicts as verdicts_mod

SE_MULTIPLE = 3.0
RELATIVE = 0.005
BASELINES = ("constant", "top-k exact")


def constructions(kind: str, n: int, m: int, law: str, imp, p, moments=None) -> dict:
    """{baseline name: flax params} of one model: the constant and top-k exact solutions.

    `moments`: (E[t_i], E[t_i^2], E[min(t_i, 0)^2]) of the targets t measured on the data the
    model is judged on, where they are not analytic (a finite training set, unit-norm samples);
    else they follow from the law and densities p.
    """
    imp, p = np.asarray(imp, float), np.asarray(p, float)
    spec = models.MODELS[kind]
    if moments is None:
        m1, m2 = models.target_moments(kind, law, p)
        # an exact copy through ReLUs loses the negative half of a signed target (E = p/6)
        lost = p / 6 if law == "signed" else np.zeros_like(p)
    else:
        m1, m2, lost = (np.asarray(v, float) for v in moments)
    const = np.maximum(m1, 0) if spec.relu_out else m1  # a ReLU output cannot go below 0
    const_loss = m2 - 2 * const * m1 + const ** 2
    exact_loss = lost if (spec.target is not jnp.abs and spec.relu_out) else np.zeros_like(p)
    gain = imp * (const_loss - exact_loss)
    out = spec.baselines(n, m, const, gain)
    return {name: {"params": {k: v.astype(np.float32) for k, v in prm.items()}}
            for name, prm in out.items()}


def _measure_one(shape, params, hp, bases):
    """Evaluation terms of the model and each baseline, and the largest pre-activations."""
    terms = [train.objective_blocks(shape, params, hp)]
    terms += [train.objective_blocks(shape, b, hp) for b in bases]
    spec = models.MODELS[shape.kind]
    net = spec.build(shape.n, shape.m)
    blocks = math.ceil(shape.eval_batch / shape.batch)

    def block(top, i):
        x = train.draw(shape, jax.random.fold_in(hp.eval_key, i), hp)
        _, pre = net.apply(params, x, shape.columns, preacts=True)
        axis = 1 if shape.columns else 0
        return (jnp.maximum(top[0], pre["hidden"].max(axis=axis)),
                jnp.maximum(top[1], pre["output"].max(axis=axis))), None

    start = (jnp.full(shape.m, -jnp.inf), jnp.full(shape.n, -jnp.inf))
    (hidden, output), _ = jax.lax.scan(block, start, jnp.arange(blocks))
    return jnp.stack(terms), hidden, output


@functools.lru_cache(maxsize=None)
def _measure(shape):
    return jax.jit(jax.vmap(functools.partial(_measure_one, shape)))


def _moments_one(shape, hp):
    """(E[t], E[t^2], E[min(t, 0)^2]) per feature over the data a model is judged on: its
    training set, or (unit-norm samples) its first evaluation block."""
    x = (train.dataset(shape, hp) if shape.dataset
         else train.draw(shape, jax.random.fold_in(hp.eval_key, 0), hp))
    t = models.MODELS[shape.kind].target(x)
    axis = 1 if shape.columns else 0
    return t.mean(axis), (t * t).mean(axis), (jnp.minimum(t, 0) ** 2).mean(axis)


@functools.lru_cache(maxsize=None)
def _moments(shape):
    return jax.jit(jax.vmap(functools.partial(_moments_one, shape)))


def empirical(shape) -> bool:
    """Whether a shape's baselines are built from measured moments rather than the law's."""
    return bool(shape.dataset or shape.unit_norm)


def measure(res) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-model verdicts, per-unit largest pre-activations) of every model of `res`."""
    sweep = config.expand(res.config)
    groups: dict = {}
    for i, s in enumerate(sweep):
        groups.setdefault(train.Shape.of(s), []).append(i)
    rows, units = [], []
    for shape, ids in groups.items():
        spec = models.MODELS[shape.kind]
        G = train.group_size(shape)
        for lo in range(0, len(ids), G):  # cache-sized groups, the last one padded
            part = ids[lo:lo + G]
            pad = part + [part[-1]] * (G - len(part))
            hp = train.inputs([sweep[i] for i in pad], G)
            params = {"params": {k: np.stack([res.params(i)[k] for i in pad])
                                 for k in res.params(pad[0])}}
            measured = [None] * G
            if empirical(shape):
                measured = list(zip(*(np.asarray(a, float) for a in _moments(shape)(hp))))
            bases = [constructions(shape.kind, shape.n, shape.m, shape.law, hp.imp[j], hp.p[j],
                                   measured[j]) for j in range(G)]
            stacked = [jax.tree.map(lambda *a: np.stack(a), *[b[name] for b in bases])
                       for name in BASELINES]
            terms, hidden, output = (np.asarray(a, np.float64) for a in
                                     _measure(shape)(params, hp, stacked))
            for j, model in enumerate(part):
                rows.append(_verdict(model, shape, terms[j]))
                diverged = not all(np.isfinite(v).all() for v in res.params(model).values())
                rows[-1]["diverged"] = diverged
                if diverged:
                    # run.on_diverge = "keep": no solution at all, so trapped (docs/failures.md)
                    rows[-1].update(eval_loss=math.nan, ratio=math.nan, trapped=True)
                rows[-1]["dead_outputs"] = int((output[j] <= 0).sum()) if spec.relu_out else 0
                rows[-1]["dead_neurons"] = int((hidden[j] <= 0).sum()) if spec.neurons else 0
                for layer, top, counts in (("output", output[j], spec.relu_out),
                                           ("hidden", hidden[j], spec.neurons)):
                    units.append(pd.DataFrame({
                        "model": model, "layer": layer, "unit": np.arange(len(top)),
                        "max_preactivation": top, "dead": (top <= 0) & counts}))
    verdicts = pd.DataFrame(rows).sort_values("model", ignore_index=True)
    return verdicts, pd.concat(units, ignore_index=True).sort_values(["model", "layer", "unit"],
                                                                     ignore_index=True)


def _verdict(model, shape, terms) -> dict:
    """One model's losses on its evaluation sample, the best baseline and whether it is trapped."""
    loss, *base = terms.sum(axis=1)
    best = int(np.argmin(base))
    gap, se = _paired_gap(terms[0] - terms[1 + best], shape)
    return {"model": model, "eval_loss": float(loss),
            "constant_loss": float(base[0]), "exact_loss": float(base[1]),
            "baseline": BASELINES[best], "baseline_loss": float(base[best]),
            "ratio": float(loss / base[best]) if base[best] > 0 else (math.inf if loss > 0 else 1.0),
            "gap_se": se, "trapped": _beaten(gap, se, float(base[best]))}


@functools.lru_cache(maxsize=None)
def _evaluate(shape):
    return jax.jit(jax.vmap(functools.partial(train.objective_blocks, shape)))


def _terms(res, shape, sweep, pairs) -> np.ndarray:
    """Evaluation terms [len(pairs), blocks] of model a's weights at model b's settings and
    evaluation sample, for each (a, b) in `pairs` (all of one Shape)."""
    return cross_terms(shape, [res.params(a) for a, _ in pairs], [sweep[b] for _, b in pairs])


def cross_terms(shape, weights: list[dict], rows: list[dict]) -> np.ndarray:
    """Evaluation terms [len(rows), blocks] of weights[j] (one model's parameters) scored at the
    settings rows[j] on that model's evaluation sample; all of one Shape, in cache-sized groups."""
    G, out = train.group_size(shape), []
    for lo in range(0, len(rows), G):
        idx = list(range(lo, min(lo + G, len(rows))))
        idx += [idx[-1]] * (G - len(idx))
        hp = train.inputs([rows[j] for j in idx], G)
        params = {"params": {k: np.stack([weights[j][k] for j in idx]) for k in weights[idx[0]]}}
        out.append(np.asarray(_evaluate(shape)(params, hp), np.float64)[:len(rows) - lo])
    return np.concatenate(out)


def _paired_gap(diff, shape) -> tuple[float, float]:
    """(difference of two paired loss estimates, its standard error; nan unless "sample")."""
    gap = float(diff.sum())
    se = float(np.std(diff, ddof=1) * math.sqrt(len(diff))) if (
        shape.eval == "sample" and len(diff) > 1) else float("nan")
    return gap, se


def _beaten(gap, se, reference) -> bool:
    return gap > max(SE_MULTIPLE * (0.0 if math.isnan(se) else se), RELATIVE * reference)


def neighbours(res) -> pd.DataFrame:
    """neighbours.parquet: per sweep cell, its kept model scored against its neighbours' ones.

    Columns: the cell's swept settings, model (kept), loss (on its evaluation sample), and the
    best neighbouring solution: neighbour (its model id), neighbour_loss (its weights scored
    here), gap_se, local_minimum (module docstring, LOCAL). Empty without a numeric sweep axis.
    """
    sweep = config.expand(res.config)
    swept, cell_of, kept = _cells(res, sweep)
    losses = res.models.set_index("model")["loss"]
    numeric = [j for j, k in enumerate(swept) if k != config.CASES and all(
        isinstance(c[j], (int, float)) and not isinstance(c[j], bool) for c in kept)]
    pairs = []  # (source model, target model): a neighbour's kept weights at this cell
    for j in numeric:
        values = sorted({c[j] for c in kept})
        step = {v: (values[i - 1] if i else None, values[i + 1] if i + 1 < len(values) else None)
                for i, v in enumerate(values)}
        for cell, target in kept.items():
            for v in step[cell[j]]:
                other = cell[:j] + (v,) + cell[j + 1:]
                if v is not None and other in kept and (
                        train.Shape.of(sweep[kept[other]]) == train.Shape.of(sweep[target])):
                    pairs.append((kept[other], target))
    columns = [settings.column(k) if k != config.CASES else "case" for k in swept]
    rows = {t: {"model": t, **dict(zip(columns, cell_of[t])), "neighbour": -1,
                "loss": float(losses[t]), "neighbour_loss": math.nan, "gap_se": math.nan,
                "local_minimum": False} for t in kept.values()}
    by_shape: dict = {}
    for a, b in pairs:
        by_shape.setdefault(train.Shape.of(sweep[b]), []).append((a, b))
    for shape, some in by_shape.items():
        targets = sorted({b for _, b in some})
        own = dict(zip(targets, _terms(res, shape, sweep, [(b, b) for b in targets])))
        for (a, b), terms in zip(some, _terms(res, shape, sweep, some)):
            gap, se = _paired_gap(own[b] - terms, shape)
            row = rows[b]
            row["loss"] = float(own[b].sum())
            if math.isnan(row["neighbour_loss"]) or terms.sum() < row["neighbour_loss"]:
                row.update(neighbour=a, neighbour_loss=float(terms.sum()), gap_se=se,
                           local_minimum=_beaten(gap, se, float(terms.sum())))
    out = pd.DataFrame(list(rows.values()), columns=["model", *columns, "loss", "neighbour",
                                                     "neighbour_loss", "gap_se", "local_minimum"])
    return out.sort_values("model", ignore_index=True)


def _cells(res, sweep):
    """(swept keys but restarts, each model's cell, {cell: its kept, lowest-loss model})."""
    swept = [k for k in res.config.get("sweep", {}) if k not in settings.RESTARTS]
    cell_of = [tuple(_key(s.get("sweep.case" if k == config.CASES else k)) for k in swept)
               for s in sweep]
    # a diverged model's loss is NaN: any finished seed of its cell is kept before it. A
    # finite-data model is chosen by the loss it was trained on, never by its test loss.
    losses = res.models.set_index("model")["loss"]
    if "dataset_size" in res.models:
        finite = res.models.set_index("model")["dataset_size"] > 0
        losses = losses.where(~finite, res.models.set_index("model")["train_loss"])
    losses = losses.fillna(np.inf)
    kept: dict = {}
    for i, cell in enumerate(cell_of):
        if cell not in kept or losses[i] < losses[kept[cell]]:
            kept[cell] = i
    return swept, cell_of, kept


def kept_models(res) -> list[int]:
    """The lowest-loss model of every sweep cell (every swept setting but settings.RESTARTS)."""
    return sorted(_cells(res, config.expand(res.config))[2].values())


def _key(v):
    """A hashable cell value (lists and tables from a sweep case become text)."""
    return repr(v) if isinstance(v, (list, dict)) else v


def table(res) -> pd.DataFrame:
    """optima.parquet: per model, its loss beside the baselines', trapped or not, dead units."""
    verdicts, per_unit = measure(res)
    res.derived.setdefault("units", per_unit)  # one measurement makes both tables
    return verdicts


def units(res) -> pd.DataFrame:
    """units.parquet: per (model, layer, unit), the largest pre-activation seen and dead or not."""
    verdicts, per_unit = measure(res)
    res.derived.setdefault("optima", verdicts)
    return per_unit


def summary(verdicts: pd.DataFrame, cells: pd.DataFrame) -> str:
    """Lines for the end of a run: how many models are trapped, how many cells are local minima."""
    c = verdicts_mod.toys(verdicts, cells)
    if not c.trapped:
        lines = [f"every one of {c.total} models beats its trivial baselines"]
    else:
        finite = verdicts[verdicts["trapped"].astype(bool) & verdicts["ratio"].notna()]
        worst = ""
        if len(finite):
            w = finite.loc[finite["ratio"].idxmax()]
            worst = (f"; worst: model {int(w['model'])} at {w['ratio']:.3g}x the {w['baseline']} "
                     f"solution")
        lines = [f"{c.trapped} of {c.total} models are trapped (loss above the best trivial "
                 f"baseline, or diverged{verdicts_mod.diverged_words(c)}){worst}: see "
                 f"optima.parquet"]
    local = cells[cells["local_minimum"]]
    if len(local):
        lines.append(f"{len(local)} of {len(cells)} sweep cells are local minima (a neighbouring "
                     f"cell's solution scores lower there, e.g. model {int(local['model'].iloc[0])}"
                     f" beaten by model {int(local['neighbour'].iloc[0])}): see neighbours.parquet")
    return "\n".join(lines)
