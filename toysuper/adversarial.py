"""Section 6: how much the worst small input perturbation raises each stored model's loss.

The derived table `adversarial` has a row per (model, eps) for every relative radius eps of
attack.eps. Each model is attacked on `attack.inputs` inputs of its own evaluation sample:
the first blocks of the sample train.evaluate_blocks scores, so the seeds of one sweep cell
face the same inputs (common random numbers). Inputs with no active feature are skipped: the
attack's radius is relative to the input's norm, and a zero input leaves it no room.

For each input x the attack (toysuper/attack.py) looks for the d with ||d|| <= eps ||x|| (L2
norms) that maximises the model's loss L(x + d) on the perturbed input, by projected gradient
ascent, attack.pgd_steps steps from each of attack.restarts starts. The table gives the means
over the inputs of the clean loss L(x), the attacked loss and the loss under RANDOM random
perturbations of the same norm, and

    vulnerability = (mean attacked loss - mean clean loss) / mean clean loss,

the relative loss increase the attack buys (a ratio of means, so that inputs the model
reproduces almost exactly do not divide by almost nothing); random_vulnerability is the same
for the random perturbations, the increase a typical perturbation of that size brings.

Beside it, the paper's own attack and metric (columns `analytic_*`, computed from the same
stored weights). The paper attacks each feature i with its analytic optimal L2 direction,
proportional to row i of W^T W (the gradient of output i with respect to the input of the
linear part), at a norm eps times the *mean* input norm, and reports vulnerability relative to
a model without superposition,

    analytic_vulnerability = (L' - L) / (L'_0 - L_0).

Here L is the model's mean loss over the inputs with an active feature among ANALYTIC_BLOCKS
evaluation blocks (as the PGD attack skips zero inputs), the radius eps times their mean norm;
L' the mean over features i of the mean loss with every input moved by feature i's attack, the
target held at the clean input (the direction maximises how far the outputs move, which is what
it costs only when the target does not move with the perturbation). Only represented features
(||W_i|| >= metrics.REPRESENTED) are attacked; the others add 0 to the mean over all n features.
`analytic_all_*` repeats it over every input, zeros included, the radius eps times the mean
norm of all inputs: at density 0.001 that radius is 50x smaller. The reference L'_0 - L_0 is the same
attack on the top-m exact solution at the same density, the model without superposition that the
paper's linear model converges to (W^T W the identity on the m most important features, 0 on
the rest): its direction for a kept feature i is e_i, which moves output i alone by r and costs
I_i r^2 exactly (the kept features are reproduced exactly, so no cross term), and a dropped
feature has no direction, so L'_0 - L_0 = r^2 sum_{i in top m} I_i / n in closed form.
Untied models (the computation model's W1, W2) have no W^T W: their analytic columns are NaN.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from toysuper import attack, config, metrics, models, train

# Folded into the evaluation key for the attack's random starts and random perturbations, so
# they never coincide with a block of the evaluation sample (fold_in(eval_key, block)).
TAG = 0x61747461
RANDOM = 16      # random perturbations per input, for the comparison
OVERDRAW = 1.5   # candidate inputs drawn per input wanted, beyond the share with an active feature
POOL_ENTRIES = 2 ** 23  # most floats (32 MiB) of one model's candidates, however sparse its data
# Models attacked together (vmapped) hold about this many floats in each live array of the
# ascent (inputs x restarts x n per model), and no more than train.group_size of them.
ATTACK_ENTRIES = 2 ** 22
# Evaluation blocks of train.batch inputs (every input, zeros too) that the paper's analytic
# attack is averaged over, and the mean input norm measured on.
ANALYTIC_BLOCKS = 16


def radii(spec) -> tuple[float, ...]:
    """attack.eps (a number or a list) as a tuple of distinct radii, in the order given."""
    return tuple(dict.fromkeys(float(e) for e in np.atleast_1d(spec)))


def pool_blocks(shape, p, inputs: int) -> int:
    """Evaluation blocks of train.batch inputs drawn to find `inputs` with an active feature.

    At density p an input has one with probability 1 - prod_i (1 - p_i) (features drawn
    independently; sets of correlated features make it rarer, and the table's `inputs` column
    then says how many were found). Rounded up to a power of two so that few sizes compile.
    """
    active = 1.0 - float(np.prod(1.0 - np.asarray(p, float)))
    least = math.ceil(inputs / shape.batch)
    want = inputs * OVERDRAW / max(active, 1e-12) / shape.batch
    most = max(least, POOL_ENTRIES // (shape.batch * shape.n))
    return int(min(max(2 ** math.ceil(math.log2(max(want, 1.0))), least), most))


def group_size(shape, models: int, inputs: int, restarts: int) -> int:
    """Models attacked together: a power of two, at most train.group_size(shape), at most
    ATTACK_ENTRIES / (inputs x restarts x n), and no more than `models` needs (each model's
    attack costs far more than its evaluation, so padding a group with copies is not free)."""
    fit = max(1, ATTACK_ENTRIES // (inputs * restarts * shape.n))
    return int(min(train.group_size(shape), 2 ** int(math.log2(fit)),
                   2 ** math.ceil(math.log2(max(models, 1)))))


def sample(shape, hp, blocks: int, inputs: int):
    """(x[inputs, n], valid[inputs]): the first `inputs` inputs of one model's evaluation sample
    that have an active feature, as rows, in the sample's order; valid is False for the rows
    past the last one found (the pool of `blocks` blocks ran out)."""
    pool = _pool(shape, hp, blocks)
    active = jnp.any(pool != 0, axis=1)
    order = jnp.argsort(~active, stable=True)[:inputs]
    return pool[order], active[order]


def _pool(shape, hp, blocks: int):
    """The first `blocks` blocks of one model's evaluation sample, inputs as rows."""
    def block(i):
        x = train.draw(shape, jax.random.fold_in(hp.eval_key, i), hp)
        return x.T if shape.columns else x

    return jax.lax.map(block, jnp.arange(blocks)).reshape(blocks * shape.batch, shape.n)


def directions(W):
    """n x n: row i is feature i's analytic attack direction, (W^T W)_i / ||(W^T W)_i||, the
    unit input perturbation that moves output i of x' = W^T W x (+ b) the most; 0 for a feature
    the model does not represent (||W_i|| < metrics.REPRESENTED), whose row of W^T W is only
    the residue of training and would otherwise be blown up to a full-size attack."""
    G = W.T @ W
    norm = jnp.linalg.norm(G, axis=1, keepdims=True)
    kept = jnp.linalg.norm(W, axis=0)[:, None] >= metrics.REPRESENTED
    return jnp.where(kept, G / jnp.where(norm > 0, norm, 1.0), 0.0)


def reference_increase(imp, m: int, radius):
    """L'_0 - L_0 of the top-m exact solution under its analytic attacks of norm `radius`:
    r^2 times the mean over all n features of I_i on the m most important (module docstring)."""
    top = jnp.sort(imp)[::-1][:m]
    return radius ** 2 * jnp.sum(top) / imp.shape[0]


def analytic_one(shape, blocks: int, params, hp, eps):
    """One tied model's analytic attacks at each relative radius eps[E], averaged two ways: over
    the inputs with an active feature (the radius eps times their mean norm), and over every
    input, zeros included (eps times the mean norm of all). For each: (mean input norm, mean
    clean loss, mean loss under the analytic attacks [E], the reference's increase [E])."""
    spec = models.MODELS[shape.kind]
    net = spec.build(shape.n, shape.m)
    x = _pool(shape, hp, blocks)
    target = spec.target(x)
    D = directions(params["params"][spec.embed])
    norms = jnp.linalg.norm(x, axis=1)
    active = jnp.any(x != 0, axis=1).astype(x.dtype)

    def over(w):
        w = w / jnp.maximum(w.sum(), 1.0)

        def loss(moved):  # the target stays at the clean input
            return jnp.sum(w * jnp.sum(hp.imp[None, :] * (target - net.apply(params, moved)) ** 2,
                                       axis=1))

        mean_norm = jnp.sum(w * norms)

        def at(e):
            r = e * mean_norm
            attacked = jax.lax.map(lambda d: loss(x + r * d[None, :]), D).mean()
            return attacked, reference_increase(hp.imp, shape.m, r)

        attacked, reference = jax.lax.map(at, eps)
        return mean_norm, loss(x), attacked, reference

    return over(active), over(jnp.ones_like(active))


@functools.lru_cache(maxsize=None)
def _analytic(shape, blocks: int):
    return jax.jit(jax.vmap(functools.partial(analytic_one, shape, blocks), in_axes=(0, 0, None)))


def measure_one(shape, steps: int, restarts: int, params, hp, x, valid, eps):
    """(inputs used, mean clean loss, mean attacked loss [E], mean randomly perturbed loss [E])
    of one model on inputs x[K, n] (valid[K] marks those to count), at each radius eps[E]."""
    loss = functools.partial(attack.example_loss, shape.kind, shape.n, shape.m, params, imp=hp.imp)
    clean = jax.vmap(loss)(x)
    norm = jnp.linalg.norm(x, axis=1)
    keys = jax.random.split(jax.random.fold_in(hp.eval_key, TAG), x.shape[0])

    def at(e):
        def one(xi, r, key):
            k_starts, k_random = jax.random.split(key)
            top, _ = attack.worst(loss, xi, r, k_starts, steps, restarts)
            return top, attack.random_losses(loss, xi, r, k_random, RANDOM).mean()
        return jax.vmap(one)(x, e * norm, keys)

    attacked, randomly = jax.lax.map(at, eps)  # [E, K] each
    w = valid.astype(x.dtype)
    count = w.sum()
    per = jnp.maximum(count, 1.0)
    return (count, (clean * w).sum() / per, (attacked * w[None, :]).sum(axis=1) / per,
            (randomly * w[None, :]).sum(axis=1) / per)


@functools.lru_cache(maxsize=None)
def sampler(shape, blocks: int, inputs: int):
    """`sample` compiled for one model's Hyper (unstacked)."""
    return jax.jit(functools.partial(sample, shape, blocks=blocks, inputs=inputs))


@functools.lru_cache(maxsize=None)
def _measure(shape, steps: int, restarts: int):
    one = functools.partial(measure_one, shape, steps, restarts)
    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, 0, None)))


def _one(hp, j: int):
    """Model j's inputs from stacked per-model inputs."""
    return jax.tree.map(lambda a: a[j], hp)


def table(res) -> pd.DataFrame:
    """adversarial.parquet: per (model, eps), the clean, attacked and randomly perturbed mean
    losses over the model's inputs, and the vulnerability they give (module docstring)."""
    sweep = config.expand(res.config)
    groups: dict = {}  # models attacked by one compiled program, with one list of radii
    for i, s in enumerate(sweep):
        what = (train.Shape.of(s), s["attack.pgd_steps"], s["attack.restarts"], s["attack.inputs"],
                radii(s["attack.eps"]))
        groups.setdefault(what, []).append(i)
    rows = []
    for (shape, steps, restarts, inputs, eps), ids in groups.items():
        G = group_size(shape, len(ids), inputs, restarts)
        for lo in range(0, len(ids), G):  # groups of G, the last one padded
            part = ids[lo:lo + G]
            pad = part + [part[-1]] * (G - len(part))
            hp = train.inputs([sweep[i] for i in pad], G)
            xs, valid = zip(*(sampler(shape, pool_blocks(shape, hp.p[j], inputs), inputs)(_one(hp, j))
                              for j in range(G)))
            params = {"params": {k: np.stack([res.params(i)[k] for i in pad])
                                 for k in res.params(pad[0])}}
            out = _measure(shape, steps, restarts)(params, hp, jnp.stack(xs), jnp.stack(valid),
                                                   jnp.asarray(eps, jnp.float32))
            count, clean, attacked, randomly = (np.asarray(a, np.float64) for a in out)
            tied = models.MODELS[shape.kind].tied
            if tied:
                paper = _analytic(shape, ANALYTIC_BLOCKS)(params, hp, jnp.asarray(eps, jnp.float32))
                paper = [[np.asarray(a, np.float64) for a in way] for way in paper]
            for j, model in enumerate(part):
                for k, e in enumerate(eps):
                    rows.append({
                        "model": model, "eps": e, "inputs": int(count[j]),
                        "clean_loss": clean[j], "attacked_loss": attacked[j, k],
                        "random_loss": randomly[j, k],
                        "vulnerability": _relative(attacked[j, k], clean[j]),
                        "random_vulnerability": _relative(randomly[j, k], clean[j]),
                        **_paper(paper, j, k, e, tied)})
    columns = ["model", "eps", "inputs", "clean_loss", "attacked_loss", "random_loss",
               "vulnerability", "random_vulnerability", *ANALYTIC, *ANALYTIC_ALL]
    return pd.DataFrame(rows, columns=columns).sort_values(["model", "eps"], ignore_index=True)


# The paper's attack over inputs with an active feature, then over every input (zeros too).
ANALYTIC = ["analytic_radius", "analytic_clean_loss", "analytic_attacked_loss",
            "analytic_reference", "analytic_vulnerability"]
ANALYTIC_ALL = ["analytic_all_radius", "analytic_all_vulnerability"]


def _paper(paper, j: int, k: int, e: float, tied: bool) -> dict:
    """The analytic columns of model j's row at radius eps[k] = e (module docstring)."""
    if not tied:
        return dict.fromkeys(ANALYTIC + ANALYTIC_ALL, np.nan)
    (norm, clean, attacked, ref), (norm_all, clean_all, attacked_all, ref_all) = paper

    def vuln(a, c, r):
        return float((a - c) / r) if r > 0 else np.nan

    return dict(zip(ANALYTIC + ANALYTIC_ALL, (
        float(norm[j] * e), float(clean[j]), float(attacked[j, k]), float(ref[j, k]),
        vuln(attacked[j, k], clean[j], ref[j, k]), float(norm_all[j] * e),
        vuln(attacked_all[j, k], clean_all[j], ref_all[j, k]))))


def _relative(loss, clean) -> float:
    """(loss - clean) / clean; inf for an increase over a clean loss of 0 (nothing to compare)."""
    if clean > 0:
        return float((loss - clean) / clean)
    return 0.0 if loss <= clean else math.inf
