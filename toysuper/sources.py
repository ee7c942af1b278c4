"""Where an SAE's activations come from, and which directions in them are the true features.

An activation is h = W x (m numbers) for sparse features x (n numbers, drawn by data.sample) and
an m x n matrix W whose columns are the true features' directions:

  "synthetic"  W is n random unit directions in m dimensions, fixed by source.seed (so SAEs of
               every seed and setting read the same dictionary), and x follows [data]: densities,
               magnitude law, correlated and anticorrelated sets, and a hierarchy.
  "model"      W is the embedding of a stored toy model (source.results, source.model), and x
               follows that model's own [data]. For a model with a ReLU hidden layer
               (privileged) h = ReLU(W x), and a feature alone writes ReLU(W_i) x_i, so its true
               direction is ReLU(W_i).

A hierarchy ([[parent, child, ...], ...]) makes a child fire only with its parent: the child is
drawn at density p_child / p_parent and silenced where the parent is silent, so it keeps its
stated density p_child.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from toysuper import config, models, settings, store
from toysuper.errors import ConfigError

_SOURCE_DATA = ("data.law", "data.density", "data.correlated", "data.anticorrelated")


def dictionary(seed: int, n: int, m: int) -> np.ndarray:
    """n random unit directions in m dimensions (columns), a function of (seed, n, m) alone."""
    W = np.random.default_rng([seed, n, m, 0x5AE]).standard_normal((m, n))
    return (W / np.linalg.norm(W, axis=0, keepdims=True)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def stored(path: str):
    """A stored toy-model results directory, read once per process."""
    return store.load(path)


# a run that rewrites a directory makes what was read of it stale
store.on_rewrite(lambda path: stored.cache_clear())


def stored_model(path: str, model: int):
    """(toy kind, flat settings, W) of model `model` of the results directory `path`."""
    res = stored(str(path))
    if settings.family(res.config) != "toys":
        raise ConfigError(f"source.results = '{path}' holds SAEs, not toy models; give a results "
                          f"directory of a toy-model experiment")
    if not 0 <= model < len(res.models):
        raise ConfigError(f"source.model = {model}: '{path}' holds models 0..{len(res.models) - 1}")
    kind = res.kind(model)
    if not models.MODELS[kind].readable:
        readable = [k for k, spec in models.MODELS.items() if spec.readable]
        raise ConfigError(f"source.model = {model} of '{path}' is a {kind!r} model; SAEs read the "
                          f"hidden states of {', '.join(readable)} models")
    if bool(res.models.loc[res.models["model"] == model, "diverged"].iloc[0]):
        raise ConfigError(f"source.model = {model} of '{path}' diverged in training (NaN weights)")
    return kind, config.expand(res.config)[model], res.W(model).astype(np.float32)


def filled(s: dict) -> dict:
    """An SAE's flat settings with a stored source's own n, m and [data] written in, and the
    source model's swept settings added as `source.<name>` (read into saes.parquet)."""
    if s["source.kind"] != "model":
        return s
    kind, toy, W = stored_model(s["source.results"], s["source.model"])
    out = {k: v for k, v in s.items() if not k.startswith("data.")}
    out.update({k: toy[k] for k in _SOURCE_DATA})
    out.update({k: v for k, v in toy.items() if settings.FEATURE_KEY.match(k)
                and k.startswith("data.density")})
    out["data.hierarchy"] = s["data.hierarchy"]
    out["source.n_features"], out["source.n_hidden"] = W.shape[1], W.shape[0]
    out["source.toy_kind"] = kind
    if max((i for g in out["data.hierarchy"] for i in g), default=-1) >= W.shape[1]:
        raise ConfigError(f"data.hierarchy = {out['data.hierarchy']} names features beyond the "
                          f"{W.shape[1]} of source.model = {s['source.model']} of '{s['source.results']}'")
    settings.check_hierarchy(out["data.hierarchy"], densities(out),
                             out["data.correlated"] + out["data.anticorrelated"])
    return out


def hidden_relu(s: dict) -> bool:
    """Whether the source's activations pass a ReLU, h = ReLU(W x) (settings `filled`)."""
    return s["source.kind"] == "model" and models.MODELS[s["source.toy_kind"]].neurons


def embedding(s: dict) -> tuple[np.ndarray, bool]:
    """(W [m, n], whether h = ReLU(W x)) of an SAE's source (settings already `filled`)."""
    if s["source.kind"] == "synthetic":
        return dictionary(s["source.seed"], s["source.n_features"], s["source.n_hidden"]), False
    return stored_model(s["source.results"], s["source.model"])[2], hidden_relu(s)


def true_features(W: np.ndarray, relu: bool) -> np.ndarray:
    """The true features' unit directions in the activation space (columns)."""
    D = np.maximum(W, 0) if relu else W
    norms = np.linalg.norm(D, axis=0, keepdims=True)
    return np.where(norms > 0, D / np.where(norms > 0, norms, 1), 0).astype(np.float32)


def densities(s: dict) -> np.ndarray:
    """Each feature's marginal density p_i (n-vector), per-feature overrides applied."""
    p = settings.feature_vector("data.density", s["data.density"], s["source.n_features"])
    for key, value in s.items():
        if m := settings.FEATURE_KEY.match(key):
            p[int(m.group(2))] = float(value)
    return p


def parents(hierarchy, n: int) -> np.ndarray:
    """int[n]: each feature's parent, itself for a feature that is no child."""
    up = np.arange(n)
    for group in hierarchy:
        up[list(group[1:])] = group[0]
    return up


def drawn_densities(s: dict) -> np.ndarray:
    """The densities data.sample draws at: a child's conditional p_child / p_parent."""
    p = densities(s)
    up = parents(s["data.hierarchy"], len(p))
    return np.where(up == np.arange(len(p)), p, p / np.maximum(p[up], 1e-30))


def nest(x, up):
    """Silence every child whose parent is silent (x[B, n], up as `parents`)."""
    return jnp.where(x[:, up] != 0, x, 0.0)
