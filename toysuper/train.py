"""Training many toy models at once: one network's step, scanned over steps, mapped over models.

Settings that fix array shapes or control flow form a `Shape`, and each Shape compiles once.
Everything else (PRNG key, importance, density, learning rate, weight decay) is a per-model
array in `Hyper`, so one compiled program trains any mix of them.

How models are laid over the machine: the model axis of a chunk is split evenly over every
visible device (`jax.shard_map` on a one-axis Mesh, across hosts too after
`jax.distributed.initialize()`); on each device, models are vmapped in groups of
`group_size(shape)` and the groups run one after another (`jax.lax.map`). A group's batch is
sized to stay in cache: on a CPU a sweep vmapped whole streams every elementwise pass through
memory, and 20 MB arrays at the ~5 GB/s of our 2-core machine cost more than the matrix products.
Each model is computed by the same group program whatever shares its chunk or device, so its
result does not depend on them.
"""

from __future__ import annotations

import functools
import math
from collections import namedtuple
from dataclasses import dataclass, make_dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toysuper import attack, data, keys, layout, models, settings
from toysuper.layout import (  # noqa: F401  (re-exported: older callers read them here)
    ACCELERATOR_ENTRIES,
    GROUP_ENTRIES,
    MAX_GROUP,
    MIN_GROUP,
    TRACES,
    Programs,
    mesh,
    over_models,
    place,
    to_host,
    use_all_cpu_cores,
)

# Models with fewer weights (n x m) than this train on batches of examples as columns
# (models.py): elementwise work dominates their steps. Measured on 2 CPU cores, model-steps/s
# columns vs rows: n=20, m=5: 24.5k vs 11.6k; n=100, m=10: 4.1k vs 3.5k; n=50, m=10: even;
# n=200, m=20: 1.5k vs 1.9k, where the matrix products dominate.
COLUMNS_BELOW = 2048


@dataclass(frozen=True)
class _ShapeBase:
    @property
    def columns(self) -> bool:
        """Batches laid out n x B (examples as columns) rather than B x n; see models.py.

        A speed choice only: data.sample draws the same numbers for a model in either layout.
        """
        return self.n * self.m < COLUMNS_BELOW

    @property
    def step_batch(self) -> int:
        """Examples per training step: train.batch, or the whole training set when smaller."""
        return min(self.batch, self.dataset) if self.dataset else self.batch

    @classmethod
    def of(cls, s: dict) -> "Shape":
        """The static part of one model's flat settings."""
        return cls(**{field: s[key] for field, key in settings.SHAPE_FIELDS.items()},
                   sets=bool(s["data.correlated"] or s["data.anticorrelated"]))


# The settings compiled into a program (role "shape" in settings.TABLE), as fields named by
# their Setting.field (kind, n, m, steps, batch, ...), plus whether features come in sets
# (correlated or anticorrelated sets share draws). Each distinct Shape compiles once.
Shape = make_dataclass(
    "Shape", [(field, object, settings.BY_KEY[key].default)
              for field, key in settings.SHAPE_FIELDS.items()] + [("sets", bool, False)],
    bases=(_ShapeBase,), frozen=True)
Shape.__module__ = __name__

# Per-model inputs, stacked along a leading model axis for a sweep: the model's own PRNG key
# (initialisation, training data), its evaluation key (shared by models of the same data),
# importance and density n-vectors, the correlated-set layout (data.layout: which feature's
# uniform draw decides feature i, and where its interval starts), and every per-model scalar
# setting (role "model" with a field in settings.TABLE: lr, wd, ...).
Hyper = namedtuple("Hyper", ["key", "eval_key", "imp", "p", "group", "low",
                             *settings.HYPER_SCALARS])


def lr_factor(shape: Shape, count):
    """Multiplier of the peak learning rate at optimizer step `count` (linear warmup, then hold or cosine)."""
    count = jnp.asarray(count, jnp.float32)
    warm = jnp.minimum(1.0, (count + 1) / shape.warmup) if shape.warmup else 1.0
    if shape.schedule == "constant":
        return warm * jnp.ones_like(count)
    t = jnp.clip((count - shape.warmup) / max(shape.steps - shape.warmup, 1), 0.0, 1.0)
    return warm * 0.5 * (1 + jnp.cos(jnp.pi * t))


def _decay(shape: Shape, wd):
    """Decoupled weight decay at rate `wd` (a traced per-model scalar), added to Adam's update
    before the learning rate scales it, as optax.adamw does. wd >= 0: the gradient of
    wd ||w||^2 / 2 (the bias too when shape.decay_bias). wd < 0, weight growth: the gradient of
    |wd| (||W_i|| - 1)^2 / 2 for each feature's embedding column W_i, which pulls every feature
    towards unit norm from either side; the bias is left alone."""
    def update(updates, state, params):
        def one(path, g, p):
            name = path[-1].key
            if name == "b":
                return g + wd * p * (wd >= 0) if shape.decay_bias else g
            norms = jnp.sqrt(jnp.sum(p * p, axis=0, keepdims=True)) + 1e-8
            return g + jnp.where(wd >= 0, wd * p, -wd * p * (1 - 1 / norms))
        return jax.tree_util.tree_map_with_path(one, updates, params), state
    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _optimizer(shape: Shape, hp: Hyper):
    """AdamW (optax.adamw's defaults) with the decay of `_decay`."""
    return optax.chain(optax.scale_by_adam(), _decay(shape, hp.wd),
                       optax.scale_by_learning_rate(lambda count: hp.lr * lr_factor(shape, count)))


def _streams(key):
    """Independent key streams for initialisation and training batches."""
    return jax.random.split(key, 2)


def _dataset_key(key):
    """The key of a model's fixed training set (data.dataset_size), apart from both streams."""
    return jax.random.fold_in(_streams(key)[0], 2)


def draw(shape: Shape, key, hp: Hyper, size: int | None = None):
    """A batch of `size` (default train.batch) fresh training or evaluation samples for one model."""
    sets = (hp.group, hp.low) if shape.sets else (None, None)
    x = data.sample(key, hp.p, size or shape.batch, shape.law, *sets, sampler=shape.sampler,
                    columns=shape.columns)
    if shape.unit_norm:  # each sample (a column, or a row) to unit length; zeros stay zero
        norm = jnp.sqrt(jnp.sum(x * x, axis=0 if shape.columns else 1, keepdims=True))
        x = x / jnp.where(norm > 0, norm, 1.0)
    return x


def dataset(shape: Shape, hp: Hyper):
    """One model's fixed training set of data.dataset_size samples (rows, or columns)."""
    return draw(shape, _dataset_key(hp.key), hp, shape.dataset)


def _examples(shape: Shape, X, idx):
    return X[:, idx] if shape.columns else X[idx]


def _loss(shape: Shape, params, x, imp_N):
    """Mean over the batch of sum_i I_i (target_i - x'_i)^2."""
    spec = models.MODELS[shape.kind]
    out = spec.build(shape.n, shape.m).apply(params, x, shape.columns)
    imp = imp_N[:, None] if shape.columns else imp_N[None, :]
    return jnp.mean(jnp.sum(imp * (spec.target(x) - out) ** 2, axis=0 if shape.columns else 1))


def _random_start(shape: Shape, hp: Hyper, params, key):
    """Flax's initial `params` changed as train.weight_init and train.bias_init ask."""
    p = dict(params["params"])
    k_w, k_b = jax.random.split(key)
    if shape.weight_init == "unit":  # every weight N(0, 1/m): each feature's vector has norm ~ 1
        names = sorted(k for k in p if k != "b")
        for name, k in zip(names, jax.random.split(k_w, len(names))):
            p[name] = jax.random.normal(k, p[name].shape, p[name].dtype) / jnp.sqrt(shape.m)
    if shape.bias_init == "mean":  # each output starts at its optimal constant E[target_i]
        mean, _ = models.target_moments(shape.kind, shape.law, hp.p)
        p["b"] = mean.astype(p["b"].dtype)
    elif shape.bias_init == "normal":
        p["b"] = jax.random.normal(k_b, p["b"].shape, p["b"].dtype)
    return {"params": p}


def init_one(shape: Shape, hp: Hyper, start, warm):
    """One model's parameters and optimizer state at step 0.

    `warm` false: Flax's random initialisers from the model's key (and train.bias_init).
    `warm` true: the given `start` (toysuper/starts.py), its weights plus noise of standard
    deviation hp.noise from the same key.
    """
    k_init, _ = _streams(hp.key)
    spec = models.MODELS[shape.kind]
    params = spec.build(shape.n, shape.m).init(k_init, jnp.zeros(shape.n))
    params = _random_start(shape, hp, params, jax.random.fold_in(k_init, 2))
    names = sorted(start["params"])
    noise = dict(zip(names, jax.random.split(jax.random.fold_in(k_init, 1), len(names))))
    start = {"params": {name: v if name == "b" else
                        v + hp.noise * jax.random.normal(noise[name], v.shape, v.dtype)
                        for name, v in start["params"].items()}}
    params = jax.tree.map(lambda r, s: jnp.where(warm, s, r), params, start)
    return params, _optimizer(shape, hp).init(params)


def segment_one(shape: Shape, state, hp: Hyper, segment):
    """Run `log_every` steps from step `segment * log_every`; returns the new state and mean loss."""
    _, k_train = _streams(hp.key)
    opt = _optimizer(shape, hp)
    X = dataset(shape, hp) if shape.dataset else None  # drawn again each segment: no state

    def batch(key):
        if not shape.dataset:
            return draw(shape, key, hp)
        if shape.batch >= shape.dataset:  # full batch
            return X
        return _examples(shape, X, jax.random.randint(key, (shape.batch,), 0, shape.dataset))

    def step(state, i):
        params, opt_state = state
        key = jax.random.fold_in(k_train, segment * shape.log_every + i)
        x = batch(key)
        if shape.adv_steps:  # adversarial training: learn at each example's attacked version
            x = attack.perturb(shape.kind, shape.n, shape.m, params, x, hp.imp, hp.adv_eps,
                               jax.random.fold_in(key, 1), shape.adv_steps, shape.columns)
        loss, grads = jax.value_and_grad(functools.partial(_loss, shape))(params, x, hp.imp)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    state, losses = jax.lax.scan(step, state, jnp.arange(shape.log_every))
    return state, losses.mean()


def evaluate_one(shape: Shape, params, hp: Hyper):
    """Expected loss, estimated from about `eval_batch` points drawn in blocks of `batch`."""
    return evaluate_blocks(shape, params, hp).sum()


def evaluate_blocks(shape: Shape, params, hp: Hyper):
    """The expected loss's estimate split by block: [blocks] terms that sum to it.

    In "sample" mode the blocks are independent batches, so the spread of the terms (or of
    two models' terms on the same blocks) gives the estimate's standard error.

    "sample": the mean loss over fresh samples. "strata": the expectation split over the 2^n
    patterns of active features, each weighted by its exact probability, with magnitudes drawn
    for every pattern. At density p a pair of features is active together in a fraction p^2 of
    samples (1e-4 at p = 0.01), so a plain sample sees a handful of the events that set a sparse
    model's loss, while each stratum gets eval_batch / 2^n of them.
    """
    blocks = math.ceil(shape.eval_batch / shape.batch)
    if shape.eval == "strata":
        patterns = (jnp.arange(2 ** shape.n)[:, None] >> jnp.arange(shape.n)[None, :]) & 1
        prob = jnp.prod(jnp.where(patterns == 1, hp.p[None, :], 1 - hp.p[None, :]), axis=1)

    def block(_, i):
        key = jax.random.fold_in(hp.eval_key, i)
        if shape.eval == "sample":
            x = draw(shape, key, hp)
            return None, _loss(shape, params, x, hp.imp) / blocks
        on = patterns[i % patterns.shape[0]]  # blocks cycle through the patterns
        size = (shape.n, shape.batch) if shape.columns else (shape.batch, shape.n)
        on = on[:, None] if shape.columns else on[None, :]
        x = data.magnitudes(key, size, shape.law, shape.sampler, shape.columns) * on
        weight = prob[i % patterns.shape[0]] * patterns.shape[0] / blocks
        return None, weight * _loss(shape, params, x, hp.imp)

    _, terms = jax.lax.scan(block, None, jnp.arange(blocks))
    return terms


def dataset_blocks(shape: Shape, params, hp: Hyper):
    """The loss on the model's own training set (data.dataset_size), as a one-term array like
    evaluate_blocks: the objective a finite-data model was trained on."""
    return _loss(shape, params, dataset(shape, hp), hp.imp)[None]


def objective_blocks(shape: Shape, params, hp: Hyper):
    """Terms of the loss the model was trained to minimise: the training set's, or the
    expected loss's estimate (toysuper/optima.py judges models on this)."""
    return dataset_blocks(shape, params, hp) if shape.dataset else evaluate_blocks(shape, params, hp)


def group_size(shape: Shape) -> int:
    """Models vmapped together on a device: a group's batch holds about layout.GROUP_ENTRIES
    entries (batch x n_features per model) on a CPU (layout.group_size)."""
    return layout.group_size(max(shape.step_batch, shape.dataset) * shape.n)


def width_quantum(shape: Shape) -> int:
    """A chunk's model axis is a multiple of this: whole groups on every device."""
    return layout.width_quantum(group_size(shape))


def n_params(shape: Shape) -> int:
    """Parameters of one model of this shape (read off Flax's init, nothing computed)."""
    return sum(math.prod(a.shape[1:]) for a in jax.tree.leaves(blank(shape, 0)))


def memory(shape: Shape) -> tuple[int, int]:
    """(bytes per model, bytes per device in flight) of a chunk on its devices, estimated.

    Per model: parameters, Adam's two moments and their donated next copy and gradients
    (7 copies), plus its inputs (Hyper). In flight: one group's step, whose arrays are
    batch-sized: the batch, pre-activations, outputs, residuals and their gradients (8 n x B)
    and the hidden layer with its gradient (4 m x B), in float32.
    """
    per_model = 4 * (7 * n_params(shape) + 4 * shape.n + 8)
    in_flight = 4 * group_size(shape) * (shape.step_batch * (8 * shape.n + 4 * shape.m)
                                          + shape.dataset * shape.n)
    return per_model, in_flight


def host_bytes(shape: Shape, models: int) -> int:
    """Host memory a sweep's results take, mostly tables: the expanded settings (Python dicts),
    table rows (features, loss history) and weights, twice over while tables are concatenated;
    calibrated on a million n=2 models (estimate 3.9 GB, measured peak 4.3 GB)."""
    P = n_params(shape)
    return 2 * models * (1500 + 150 * shape.n + 60 * (shape.steps // shape.log_every)
                         + 8 * P * (1 + shape.snapshots))


def inputs(rows: list[dict], width: int) -> Hyper:
    """Stack the per-model inputs of models with flat settings `rows`, repeating the last model
    up to `width` (padding a chunk to whole groups; the copies are dropped after training)."""
    rows = list(rows) + [rows[-1]] * (width - len(rows))
    vecs = [settings.feature_vectors(s) for s in rows]
    layouts = [data.layout(len(p), p, s["data.correlated"], s["data.anticorrelated"])
               for s, (_, p) in zip(rows, vecs)]
    salts = [keys.salt(s) for s in rows]
    return Hyper(
        key=keys.model_keys([s["train.seed"] for s in rows], salts),
        eval_key=keys.eval_keys(salts),
        imp=np.stack([v[0] for v in vecs]).astype(np.float32),
        p=np.stack([v[1] for v in vecs]).astype(np.float32),
        group=np.stack([g for g, _ in layouts]),
        low=np.stack([lo for _, lo in layouts]).astype(np.float32),
        **{field: np.array([s[key] for s in rows], np.float32)
           for field, key in settings.HYPER_SCALARS.items()},
    )


@functools.lru_cache(maxsize=None)
def programs(shape: Shape) -> Programs:
    """The jitted programs of one Shape over a chunk of models (compiled on first call, then cached)."""
    G = group_size(shape)
    return Programs(
        init=jax.jit(over_models(shape, init_one, 3, 3, G, "init")),           # (hp, start, warm)
        segment=jax.jit(over_models(shape, segment_one, 2, 3, G, "segment"),   # (state, hp, seg)
                        donate_argnums=0),
        evaluate=jax.jit(over_models(shape, evaluate_one, 2, 2, G, "evaluate")),  # (params, hp)
    )


def snapshot_steps(steps: int, log_every: int, count: int) -> np.ndarray:
    """`count` distinct steps, about log-spaced, at segment ends, the last one the final step."""
    segments = steps // log_every
    if count == 0:
        return np.zeros(0, int)
    idx = np.round(np.geomspace(1, segments, count)).astype(int) if count > 1 else np.array([segments])
    for k in range(1, count):  # early ones collide on a log scale: keep them apart
        idx[k] = max(idx[k], idx[k - 1] + 1)
    idx = np.minimum(idx, segments - np.arange(count)[::-1])
    return idx * log_every


class Trained(NamedTuple):
    params: dict          # final parameters, model axis first
    history: np.ndarray   # [M, steps / log_every] mean training loss per segment
    final: np.ndarray     # [M] final loss (train.eval)
    snapshots: dict       # parameter name -> [M, shape.snapshots, ...] at snapshot_steps


def blank(shape: Shape, width: int) -> dict:
    """Zero parameters for `width` models of this shape (the start of models that start at random)."""
    net = models.MODELS[shape.kind].build(shape.n, shape.m)
    tree = jax.eval_shape(net.init, jax.random.PRNGKey(0), jax.ShapeDtypeStruct((shape.n,), jnp.float32))
    return jax.tree.map(lambda a: np.zeros((width, *a.shape), a.dtype), tree)


def initial(shape: Shape, hp: Hyper, start=None):
    """A chunk's (parameters, optimizer state) at step 0, from placed inputs; `start` as in train."""
    width = len(hp.lr)
    params, warm = start if start is not None else (blank(shape, width), np.zeros(width, bool))
    return programs(shape).init(hp, *place((params, np.asarray(warm, bool))))


def train(shape: Shape, hp: Hyper, on_segment=lambda: None, start=None) -> Trained:
    """Train the stacked models of one Shape.

    `on_segment` is called after each finished segment, for progress reporting. `start`:
    (stacked parameters, bool[width]) for models that start from given weights
    (toysuper/starts.py); None when every model starts at random.
    """
    width, q = len(hp.lr), width_quantum(shape)
    if width % q:
        raise ValueError(f"{width} models: a chunk of this shape must be a multiple of "
                         f"{q} (groups of {group_size(shape)} on {len(jax.devices())} device(s))")
    prog = programs(shape)
    hp = place(hp)
    state = initial(shape, hp, start)
    history, pending, snaps = [], None, []
    at = set(snapshot_steps(shape.steps, shape.log_every, shape.snapshots) // shape.log_every - 1)
    for seg in range(shape.steps // shape.log_every):
        state, loss = prog.segment(state, hp, seg)
        if seg in at:  # a copy: the next segment reuses (donates) these buffers
            snaps.append(to_host(state[0]))
        # Wait for the previous segment, not this one, so the device always has work queued.
        if pending is not None:
            history.append(to_host(pending))
            on_segment()
        pending = loss
    history.append(to_host(pending))
    on_segment()
    params = state[0]
    final = to_host(prog.evaluate(params, hp))
    stacked = jax.tree.map(lambda *a: np.stack(a, axis=1), *snaps) if snaps else {}
    return Trained(to_host(params), np.stack(history, axis=1), final, stacked)
