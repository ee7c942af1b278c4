"""Training many SAEs at once, as train.py trains toy models: one SAE's step, scanned, vmapped.

Settings that fix shapes (sae.kind, sae.width, sae.k, the source's n and m, the hierarchy, steps,
batch, ...) form an `SaeShape`, compiled once; the rest (keys, the source's embedding W and
densities, lr, penalties) are per-SAE arrays in `SaeHyper`. SAEs share train.py's layout over
the machine (layout.over_models): split over devices, vmapped in groups.

Each step draws a fresh batch of features x from the SAE's data key, makes the activations
h = W x (ReLU(W x) for a source with a ReLU hidden layer) and takes one Adam step on the SAE's
loss (saes.py). SAEs of one seed and source read the same batches whatever their kind or
penalty (the data key is salted by the source and [data] alone), so they are compared on the
same data; evaluation uses a sample shared by every SAE of the source.
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

from toysuper import data, keys, layout, saes, settings, sources, train


@dataclass(frozen=True)
class _ShapeBase:
    @classmethod
    def of(cls, s: dict) -> "SaeShape":
        """The static part of one SAE's flat settings (already sources.filled)."""
        fields = {field: s[key] for field, key in settings.SAE_SHAPE_FIELDS.items()}
        fields["hierarchy"] = tuple(tuple(g) for g in s["data.hierarchy"])
        return cls(**fields, sets=bool(s["data.correlated"] or s["data.anticorrelated"]),
                   relu=sources.hidden_relu(s))

    @property
    def pairs(self) -> tuple:
        """(parent, child) of every child of the hierarchy, in order."""
        return tuple((g[0], c) for g in self.hierarchy for c in g[1:])

    def part_shapes(self, k: int) -> dict:
        """The shape of every array a finished chunk of k SAEs stores (families/saes.py: parameters as
        param/NAME, the evaluation sums in the part's snapshot slot as snap/NAME)."""
        params = {"W_enc": (self.d, self.m), "b_enc": (self.d,), "W_dec": (self.m, self.d),
                  "b_dec": (self.m,),
                  **{name: a.shape for name, a in jax.eval_shape(
                      lambda: saes.KIND[self.kind].extra(self.d, 1.0)).items()}}
        sums = {"mse": (), "penalty": (), "h_sum": (self.m,), "h_sq": (), "dot": (), "l0": (),
                "fires": (self.d,), "true_l0": (), "pairs": (max(len(self.pairs), 1), 4)}
        return {"history": (k, self.steps // self.log_every, 2), "final": (k,),
                **{f"param/{n}": (k, *s) for n, s in params.items()},
                **{f"snap/{n}": (k, *s) for n, s in sums.items()}}


# fields: every "shape" setting of settings.SAE_TABLE (hierarchy included, as tuples), whether
# features come in sets, and whether the activations pass a ReLU (a privileged source)
SaeShape = make_dataclass(
    "SaeShape", [(field, object, None) for field in settings.SAE_SHAPE_FIELDS]
    + [("hierarchy", tuple, ()), ("sets", bool, False), ("relu", bool, False)],
    bases=(_ShapeBase,), frozen=True)
SaeShape.__module__ = __name__

# per-SAE inputs: init key, data key (shared by SAEs of one seed and source), evaluation key
# (shared by SAEs of one source), the source's embedding W [m, n] and unit true features F
# [m, n], drawn densities p, the set layout (data.layout) and the scalar settings
SaeHyper = namedtuple("SaeHyper", ["key", "data_key", "eval_key", "W", "F", "p", "group", "low",
                                   *settings.SAE_HYPER_SCALARS])

# SAE settings that enter the data key's salt (and the evaluation key's): the source and [data]
_DATA = ("source.", "data.")


def draw(shape, key, hp, batch: int):
    """(features x [B, n], activations h [B, m]) of one batch."""
    sets = (hp.group, hp.low) if shape.sets else (None, None)
    x = data.sample(key, hp.p, batch, shape.law, *sets)
    if shape.hierarchy:
        x = sources.nest(x, np.asarray(sources.parents(shape.hierarchy, shape.n)))
    h = x @ hp.W.T
    return x, (jax.nn.relu(h) if shape.relu else h)


def _optimizer(shape, hp):
    adam = optax.adam(lambda count: hp.lr * train.lr_factor(shape, count))
    return optax.chain(optax.clip_by_global_norm(shape.grad_clip), adam) if shape.grad_clip else adam


def init_one(shape, hp):
    """One SAE's parameters and Adam state; b_dec starts at the mean activation of a batch,
    where the decoder bias alone is the trivial solution."""
    _, h = draw(shape, jax.random.fold_in(hp.eval_key, 2**31 - 1), hp, shape.batch)
    params = saes.init(hp.key, shape.m, shape.d, shape.kind, hp.threshold, h.mean(axis=0),
                       hp.init_norm)
    if shape.init == "features":
        j = min(shape.d, shape.n)
        W_dec = params["W_dec"].at[:, :j].set(hp.F[:, :j])
        params = {**params, "W_dec": W_dec, "W_enc": W_dec.T}
    return (params, _optimizer(shape, hp).init(params),
            jnp.zeros(shape.d, jnp.int32))  # steps since each latent last fired


def _latents(tree, keep, kind: str):
    """`tree` (parameters or Adam moments) with the latents where keep is False set to 0 (the
    kind's own per-latent parameters too)."""
    axis = {"W_enc": (slice(None), None), "W_dec": (None, slice(None)), "b_enc": (slice(None),),
            **{name: (slice(None),) for name in saes.KIND[kind].per_latent}}
    return {k: v * keep[axis[k]] if k in axis else v for k, v in tree.items()}


def _resample(shape, params, opt_state, quiet, h, x_hat):
    """Dead latents (silent for `resample` steps) restart along the batch's worst-reconstructed
    activations, the i-th dead latent along the i-th worst, at a fifth of unit encoder norm, with
    their Adam moments cleared."""
    dead = quiet >= shape.resample
    err = h - x_hat
    worst = jax.lax.top_k(jnp.sum(err ** 2, axis=1), min(shape.d, h.shape[0]))[1]
    rank = jnp.clip(jnp.cumsum(dead) - 1, 0, worst.shape[0] - 1)
    direction = err[worst[rank]]                                   # [d, m]
    direction = direction / jnp.maximum(jnp.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
    keep = (~dead).astype(jnp.float32)
    new = {**params,
           "W_enc": jnp.where(dead[:, None], 0.2 * direction, params["W_enc"]),
           "W_dec": jnp.where(dead[None, :], direction.T, params["W_dec"]),
           "b_enc": jnp.where(dead, 0.0, params["b_enc"])}
    opt_state = jax.tree.map(
        lambda s: s._replace(mu=_latents(s.mu, keep, shape.kind), nu=_latents(s.nu, keep, shape.kind))
        if isinstance(s, optax.ScaleByAdamState) else s,
        opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
    return new, opt_state, jnp.where(dead, 0, quiet)


def segment_one(shape, state, hp, segment):
    """`log_every` steps from step segment * log_every; returns the state and mean (loss, mse)."""
    opt = _optimizer(shape, hp)

    def step(state, i):
        params, opt_state, quiet = state
        t = segment * shape.log_every + i
        x, h = draw(shape, jax.random.fold_in(hp.data_key, t), hp, shape.batch)
        (total, (mse, _, f, _)), grads = jax.value_and_grad(saes.loss, has_aux=True)(
            params, h, shape.kind, shape.k, hp, quiet >= shape.aux_dead, shape.aux_k)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        params = saes.KIND[shape.kind].after_step(params, f, t)  # BatchTopK's threshold
        quiet = jnp.where((f > 0).any(axis=0), 0, quiet + 1)
        if shape.resample:
            x_hat = saes.forward(params, h, shape.kind, shape.k, hp, train=True)[0]
            due = (t + 1) % shape.resample == 0
            params, opt_state, quiet = jax.lax.cond(
                due, lambda: _resample(shape, params, opt_state, quiet, h, x_hat),
                lambda: (params, opt_state, quiet))
        return (params, opt_state, quiet), jnp.stack([total, mse])

    state, losses = jax.lax.scan(step, state, jnp.arange(shape.log_every))
    return state, losses.mean(axis=0)


class Scores(NamedTuple):
    """Sums over the evaluation sample of one SAE (sae_scores.py turns them into scores)."""
    mse: jnp.ndarray        # sum of ||h - x_hat||^2
    penalty: jnp.ndarray    # sum over blocks of the batch penalty x block size
    h_sum: jnp.ndarray      # [m] sum of h
    h_sq: jnp.ndarray       # sum of ||h||^2
    dot: jnp.ndarray        # sum of <x_hat, h>
    l0: jnp.ndarray         # sum of latents firing
    fires: jnp.ndarray      # [d] examples each latent fires on
    true_l0: jnp.ndarray    # sum of features active
    pairs: jnp.ndarray      # [max(pairs, 1), 4]: child active; parent latent silent then;
    #                         parent active without the child; parent latent silent then


def evaluated(shape) -> int:
    """Activations in the evaluation sample: eval_batch rounded up to whole batches."""
    return math.ceil(shape.eval_batch / shape.batch) * shape.batch


def evaluate_one(shape, params, hp):
    """Sums of one SAE over eval_batch activations, drawn in blocks of train.batch.

    For absorption, the parent's and child's latents are each feature's best-aligned latent
    (largest cosine between decoder column and true direction).
    """
    blocks = math.ceil(shape.eval_batch / shape.batch)
    W_dec = saes.decoder(params, shape.kind)
    unit = W_dec / jnp.maximum(jnp.linalg.norm(W_dec, axis=0, keepdims=True), 1e-12)
    best = jnp.argmax(unit.T @ hp.F, axis=0)        # [n] each feature's best-aligned latent
    P = np.array(shape.pairs, int).reshape(-1, 2)

    def block(acc, i):
        x, h = draw(shape, jax.random.fold_in(hp.eval_key, i), hp, shape.batch)
        x_hat, pre, f = saes.forward(params, h, shape.kind, shape.k, hp, train=False)
        penalty = saes.KIND[shape.kind].penalty(params, h, pre, f, hp) * shape.batch
        on = f > 0
        pair = jnp.zeros((max(len(P), 1), 4))  # a row even without pairs: lax.map cannot
        #                                       batch an empty axis
        if len(P):
            parent_on, child_on = x[:, P[:, 0]] != 0, x[:, P[:, 1]] != 0
            silent = ~on[:, best[P[:, 0]]]
            alone = parent_on & ~child_on
            pair = jnp.stack([child_on.sum(0), (child_on & silent).sum(0),
                              alone.sum(0), (alone & silent).sum(0)], axis=1).astype(jnp.float32)
        s = Scores(jnp.sum((h - x_hat) ** 2), penalty, h.sum(0), jnp.sum(h ** 2),
                   jnp.sum(x_hat * h), on.sum().astype(jnp.float32), on.sum(0).astype(jnp.float32),
                   (x != 0).sum().astype(jnp.float32), pair)
        return jax.tree.map(jnp.add, acc, s), None

    zero = Scores(*(jnp.zeros(()),) * 2, jnp.zeros(shape.m), *(jnp.zeros(()),) * 3,
                  jnp.zeros(shape.d), jnp.zeros(()), jnp.zeros((max(len(P), 1), 4)))
    out, _ = jax.lax.scan(block, zero, jnp.arange(blocks))
    return out


def group_size(shape) -> int:
    """SAEs vmapped together: about train.GROUP_ENTRIES batch entries of latents and features
    per group on a CPU (layout.group_size's reasoning), a power of two in [2, 64]."""
    return layout.group_size(shape.batch * (shape.d + shape.n))


def width_quantum(shape) -> int:
    return layout.width_quantum(group_size(shape))


def memory(shape) -> tuple[int, int]:
    """(bytes per SAE, bytes per device in flight), estimated as train.memory does: parameters
    with Adam's moments, gradients and a donated copy (7 copies) plus the source's W and F; a
    group's step holds a few batch x (n + m + d) arrays."""
    params = 2 * shape.m * shape.d + 2 * shape.d + shape.m
    per_model = 4 * (7 * params + 2 * shape.m * shape.n + 3 * shape.n)
    in_flight = 4 * group_size(shape) * shape.batch * (3 * shape.n + 4 * shape.m + 6 * shape.d)
    return per_model, in_flight


@functools.lru_cache(maxsize=None)
def programs(shape) -> layout.Programs:
    G = group_size(shape)
    return layout.Programs(
        init=jax.jit(layout.over_models(shape, init_one, 1, 1, G, "init")),
        segment=jax.jit(layout.over_models(shape, segment_one, 2, 3, G, "segment"), donate_argnums=0),
        evaluate=jax.jit(layout.over_models(shape, evaluate_one, 2, 2, G, "evaluate")),
    )


def inputs(rows: list[dict], width: int) -> SaeHyper:
    """Stacked per-SAE inputs of SAEs with (filled) flat settings `rows`, the last repeated up
    to `width`."""
    rows = list(rows) + [rows[-1]] * (width - len(rows))
    own = [keys.salt_of(s) for s in rows]
    shared = [keys.salt_of(s, _DATA) for s in rows]
    seeds = [s["train.seed"] for s in rows]
    made = [sources.embedding(s) for s in rows]
    layouts = [data.layout(s["source.n_features"], sources.drawn_densities(s), s["data.correlated"],
                           s["data.anticorrelated"]) for s in rows]
    return SaeHyper(
        key=keys.model_keys(seeds, own), data_key=keys.model_keys(seeds, shared),
        eval_key=keys.eval_keys(shared),
        W=np.stack([W for W, _ in made]), F=np.stack([sources.true_features(W, r) for W, r in made]),
        p=np.stack([sources.drawn_densities(s) for s in rows]).astype(np.float32),
        group=np.stack([g for g, _ in layouts]),
        low=np.stack([lo for _, lo in layouts]).astype(np.float32),
        **{field: np.array([s[key] for s in rows], np.float32)
           for field, key in settings.SAE_HYPER_SCALARS.items()})


class Trained(NamedTuple):
    params: dict          # final parameters, SAE axis first
    history: np.ndarray   # [M, segments, 2]: mean (loss, mse) per segment
    scores: Scores        # evaluation sums, SAE axis first


def train_saes(shape, hp: SaeHyper, on_segment=lambda: None) -> Trained:
    """Train the stacked SAEs of one SaeShape (a multiple of width_quantum of them)."""
    width, q = len(hp.lr), width_quantum(shape)
    if width % q:
        raise ValueError(f"{width} SAEs: a chunk of this shape must be a multiple of {q}")
    prog = programs(shape)
    hp = layout.place(hp)
    state = prog.init(hp)
    history, pending = [], None
    for seg in range(shape.steps // shape.log_every):
        state, loss = prog.segment(state, hp, seg)
        if pending is not None:  # wait for the previous segment, so the device stays busy
            history.append(layout.to_host(pending))
            on_segment()
        pending = loss
    history.append(layout.to_host(pending))
    on_segment()
    scores = layout.to_host(prog.evaluate(state[0], hp))
    return Trained(layout.to_host(state[0]), np.stack(history, axis=1), scores)


def host_bytes(shape, models: int) -> int:
    """Host memory a sweep's results take: per SAE its settings and table rows (a row per
    latent, per logged segment) and its weights with the source's W, twice over while tables
    are concatenated (train.host_bytes's reasoning, not calibrated for SAEs)."""
    weights = 4 * (2 * shape.m * shape.d + 2 * shape.d + 2 * shape.m * shape.n)
    return 2 * models * (2000 + 80 * shape.d + 60 * (shape.steps // shape.log_every) + weights)


def initial(shape, hp):
    """A chunk's (parameters, Adam state, silent steps) at step 0, from placed inputs."""
    return programs(shape).init(hp)



def label(shape) -> str:
    """How --plan names a shape of SAEs."""
    k = f" k={shape.k}" if saes.KIND[shape.kind].uses_k else ""
    return f"{shape.kind} SAEs d_sae={shape.d}{k} on n={shape.n} m={shape.m} batch={shape.batch}"
