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
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from toysuper import attack, config, train

# Folded into the evaluation key for the attack's random starts and random perturbations, so
# they never coincide with a block of the evaluation sample (fold_in(eval_key, block)).
TAG = 0x61747461
RANDOM = 16      # random perturbations per input, for the comparison
OVERDRAW = 1.5   # candidate inputs drawn per input wanted, beyond the share with an active feature
POOL_ENTRIES = 2 ** 23  # most floats (32 MiB) of one model's candidates, however sparse its data
# Models attacked together (vmapped) hold about this many floats in each live array of the
# ascent (inputs x restarts x n per model), and no more than train.group_size of them.
ATTACK_ENTRIES = 2 ** 22


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
    def block(i):
        x = train.draw(shape, jax.random.fold_in(hp.eval_key, i), hp)
        return x.T if shape.columns else x

    pool = jax.lax.map(block, jnp.arange(blocks)).reshape(blocks * shape.batch, shape.n)
    active = jnp.any(pool != 0, axis=1)
    order = jnp.argsort(~active, stable=True)[:inputs]
    return pool[order], active[order]


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
            for j, model in enumerate(part):
                for k, e in enumerate(eps):
                    rows.append({
                        "model": model, "eps": e, "inputs": int(count[j]),
                        "clean_loss": clean[j], "attacked_loss": attacked[j, k],
                        "random_loss": randomly[j, k],
                        "vulnerability": _relative(attacked[j, k], clean[j]),
                        "random_vulnerability": _relative(randomly[j, k], clean[j])})
    columns = ["model", "eps", "inputs", "clean_loss", "attacked_loss", "random_loss",
               "vulnerability", "random_vulnerability"]
    return pd.DataFrame(rows, columns=columns).sort_values(["model", "eps"], ignore_index=True)


def _relative(loss, clean) -> float:
    """(loss - clean) / clean; inf for an increase over a clean loss of 0 (nothing to compare)."""
    if clean > 0:
        return float((loss - clean) / clean)
    return 0.0 if loss <= clean else math.inf
