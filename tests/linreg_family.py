"""A family defined in this one file, with no edit anywhere else: linear regression with a known
optimum, trained by the engine as toy models and SAEs are (tests/test_families.py).

Each member fits y = A x + noise * e with a linear map W (n_out x n_in) by Adam on fresh
batches, x ~ N(0, I), e ~ N(0, I). A is drawn from the member's data seed. The optimum is W = A,
whose expected loss (mean squared error over outputs) is noise^2: what every fit must reach.

An experiment of this family has a [linreg] section:

    [linreg]
    n_in = 4
    n_out = 3
    noise = 0.1
    data_seed = 0
"""

from __future__ import annotations

import functools
from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from toysuper import assemble, layout, settings
from toysuper.family import Arrays, Family, register
from toysuper.settings import Setting, nonneg_int, nonneg_number, positive_int

TABLE = (
    Setting("linreg.n_in", 4, positive_int, "shape", "n_in", doc="inputs"),
    Setting("linreg.n_out", 3, positive_int, "shape", "n_out", doc="outputs"),
    Setting("linreg.noise", 0.1, nonneg_number, "model", "noise", doc="noise scale"),
    Setting("linreg.data_seed", 0, nonneg_int, "model", "data_seed", doc="the seed of A"),
    settings.BY_KEY["train.steps"]._replace(default=400),
    settings.BY_KEY["train.batch"]._replace(default=256),
    settings.BY_KEY["train.lr"]._replace(default=0.03),
    settings.BY_KEY["train.log_every"]._replace(default=50),
    settings.BY_KEY["train.seed"],
    settings.BY_KEY["run.chunk_size"],
    settings.BY_KEY["run.memory_gb"],
    settings.BY_KEY["run.on_diverge"],
)


@dataclass(frozen=True)
class Shape:
    n_in: int
    n_out: int
    steps: int
    batch: int
    log_every: int


Hyper = namedtuple("Hyper", ["key", "A", "noise", "lr"])


def shape_of(s: dict) -> Shape:
    return Shape(s["linreg.n_in"], s["linreg.n_out"], s["train.steps"], s["train.batch"],
                 s["train.log_every"])


def the_map(s: dict) -> np.ndarray:
    """A, the true map of a member's data: the optimum its fit must find."""
    rng = np.random.default_rng(s["linreg.data_seed"])
    return rng.standard_normal((s["linreg.n_out"], s["linreg.n_in"])).astype(np.float32)


def inputs(rows: list[dict], width: int) -> Hyper:
    rows = list(rows) + [rows[-1]] * (width - len(rows))
    return Hyper(key=np.stack([np.asarray(jax.random.PRNGKey(s["train.seed"])) for s in rows]),
                 A=np.stack([the_map(s) for s in rows]),
                 noise=np.array([s["linreg.noise"] for s in rows], np.float32),
                 lr=np.array([s["train.lr"] for s in rows], np.float32))


def _loss(W, hp, key, batch):
    kx, ke = jax.random.split(key)
    x = jax.random.normal(kx, (batch, W.shape[1]))
    y = x @ hp.A.T + hp.noise * jax.random.normal(ke, (batch, W.shape[0]))
    return jnp.mean((x @ W.T - y) ** 2)


def _init_one(shape, hp):
    W = jnp.zeros((shape.n_out, shape.n_in))
    return W, optax.adam(hp.lr).init(W)


def _segment_one(shape, state, hp, segment):
    opt = optax.adam(hp.lr)

    def step(state, i):
        W, o = state
        loss, g = jax.value_and_grad(_loss)(W, hp, jax.random.fold_in(hp.key, i), shape.batch)
        updates, o = opt.update(g, o, W)
        return (optax.apply_updates(W, updates), o), loss
    steps = segment * shape.log_every + jnp.arange(shape.log_every)
    state, losses = jax.lax.scan(step, state, steps)
    return state, losses.mean()


def _evaluate_one(shape, W, hp):
    return _loss(W, hp, jax.random.PRNGKey(2**31 - 1), 8192)


def group_size(shape) -> int:
    return layout.group_size(shape.batch * (shape.n_in + shape.n_out))


def width_quantum(shape) -> int:
    return layout.width_quantum(group_size(shape))


@functools.lru_cache(maxsize=None)
def programs(shape) -> layout.Programs:
    G = group_size(shape)
    return layout.Programs(
        init=jax.jit(layout.over_models(shape, _init_one, 1, 1, G, "init")),
        segment=jax.jit(layout.over_models(shape, _segment_one, 2, 3, G, "segment")),
        evaluate=jax.jit(layout.over_models(shape, _evaluate_one, 2, 2, G, "evaluate")))


def train(shape, hp, on_segment, start) -> Arrays:
    prog, hp = programs(shape), layout.place(hp)
    state, history = prog.init(hp), []
    for seg in range(shape.steps // shape.log_every):
        state, loss = prog.segment(state, hp, seg)
        history.append(layout.to_host(loss))
        on_segment()
    W = state[0]
    return Arrays({"W": layout.to_host(W)}, np.stack(history, axis=1),
                  layout.to_host(prog.evaluate(W, hp)), {})


def part_shapes(shape, k: int) -> dict:
    return {"history": (k, shape.steps // shape.log_every), "final": (k,),
            "param/W": (k, shape.n_out, shape.n_in)}


def memory(shape) -> tuple[int, int]:
    return 4 * 8 * shape.n_in * shape.n_out, 4 * group_size(shape) * shape.batch * (
        2 * shape.n_in + 3 * shape.n_out)


def assembled(cfg, sweep, chunks, done):
    from toysuper import engine  # the engine's divergence rule, as every family uses it

    rows, history, pieces = [], [], []
    for c in chunks:
        params, hist, final, _ = done[c.index]
        ids = np.array(c.ids)
        bad = engine.diverged(params, hist, final)[0]
        for j, i in enumerate(ids):
            A = the_map(sweep[i])
            rows.append({"fit": int(i), **{settings.column(k): v for k, v in sweep[i].items()
                                           if not k.startswith("run.")},
                         "loss": float(final[j]), "optimum": float(sweep[i]["linreg.noise"]) ** 2,
                         "error": float(np.linalg.norm(params["W"][j] - A) / np.linalg.norm(A)),
                         "diverged": bool(bad[j])})
        history.append(pd.DataFrame({"fit": np.repeat(ids, hist.shape[1]),
                                     "step": np.tile(c.shape.log_every * np.arange(
                                         1, hist.shape[1] + 1), len(ids)),
                                     "loss": hist.ravel()}))
        pieces.append((ids, params))
    tables = {"fits": pd.DataFrame(rows).sort_values("fit", ignore_index=True),
              "history": pd.concat(history).sort_values(["fit", "step"], ignore_index=True)}
    return tables, assemble.stack_padded(len(sweep), pieces), {}


@dataclass
class LinregResults:
    path: Path | None
    config: dict
    fits: pd.DataFrame
    history: pd.DataFrame
    weights: dict = field(repr=False)
    derived: dict = field(repr=False, default_factory=dict)

    @classmethod
    def of(cls, path, config, tables, weights, snapshots=None, derived=None):
        return cls(None if path is None else Path(path), config, tables["fits"], tables["history"],
                   dict(weights), dict(derived or {}))


def summary(res) -> str:
    worst = float((res.fits["loss"] / res.fits["optimum"]).max())
    return f"checked: {len(res.fits)} fits, the worst at {worst:.3f} x the optimal loss"


FAMILY = register(Family(
    name="linreg", noun="fits", member="fit", section="linreg", described="a linreg experiment",
    settings=TABLE, tables=("fits", "history"), results=LinregResults, shape=shape_of,
    inputs=inputs, train=train, group_size=group_size, width_quantum=width_quantum,
    memory=memory, host_bytes=lambda shape, n: 2000 * n, part_shapes=part_shapes,
    label=lambda s: f"linear maps {s.n_out}x{s.n_in} batch={s.batch}", assemble=assembled,
    summary=summary, probe=lambda shape, hp: (programs(shape).segment, programs(shape).init(hp)),
))
