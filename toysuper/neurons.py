"""Neuron-level views of models with a privileged hidden basis (docs/privileged_basis.md).

With a ReLU on the hidden layer (the model kinds whose models.Spec has neurons=True) the m
hidden neurons are the basis to read a model in. Neuron k's input weights are row k of the
embedding (W, or W1 of the computation model); everything here is computed from stored weights,
never by training.

Settings (module constants, so that a changed rule relabels stored results on `toysuper plot`):
  CARRY      neuron k carries feature i when feature i alone can fire it with a weight of at
             least CARRY times the norm of the weights that can fire it: |W_ki| against ||W_k||
             for signed inputs; for inputs >= 0, W_ki against the norm of W_k's positive part
             (a negative weight there only ever silences the neuron, and sparse models give
             neurons large ones, which would otherwise hide every feature the neuron fires for).
             At 0.3 a carried feature holds at least 9% of that squared norm. A neuron is monosemantic when it
             carries exactly one feature and that feature is its strongest (largest |W_ki|).
  DEAD       a neuron is dead when it can never fire: its largest weight the data can switch on
             (any weight for signed inputs, a positive one for inputs >= 0) is below DEAD times
             the model's largest neuron norm. Dead neurons carry nothing.
  ASYMMETRY  the asymmetric superposition motif needs its two features' weights on the shared
             neuron to differ by at least this factor in magnitude;
  GAIN       ... the shared neuron to pass at least this much of each feature to its output
             (W2_ik |W1_ki| for feature i), so that it computes part of both;
  CANCEL     ... and the other neurons that fire with the big feature must remove at least this
             fraction of its interference on the small feature's output.
  COMPUTED   a feature counts as computed when its expected squared error is below this fraction
             of the error of predicting 0 for it; for signed inputs, each sign of it separately.
"""

from __future__ import annotations

import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from toysuper import data, models
from toysuper.errors import ConfigError

CARRY = 0.3
DEAD = 0.01
ASYMMETRY = 1.5
GAIN = 0.3
CANCEL = 0.5
COMPUTED = 0.2


def monosemanticity(W) -> np.ndarray:
    """max_i |W_ki| / ||W_k|| for every neuron (row) k of W; 0 for a zero row."""
    W = np.asarray(W, float)
    norm = np.linalg.norm(W, axis=1)
    return np.where(norm > 0, np.abs(W).max(axis=1) / np.where(norm > 0, norm, 1.0), 0.0)


def carried(W, signed: bool) -> np.ndarray:
    """m x n booleans: feature i alone fires neuron k with a weight of at least CARRY times the
    norm of the weights that can fire it (see above)."""
    W = np.asarray(W, float)
    firing = np.abs(W) if signed else np.clip(W, 0, None)
    norm = np.linalg.norm(firing, axis=1, keepdims=True)
    return (firing >= CARRY * norm) & (norm > 0)


def dead(W, signed: bool) -> np.ndarray:
    """Neurons that never fire: no weight the data can switch on (see the module docstring)."""
    W = np.asarray(W, float)
    scale = np.linalg.norm(W, axis=1).max(initial=0.0)
    reach = np.abs(W).max(axis=1) if signed else np.clip(W, 0, None).max(axis=1)
    return reach <= DEAD * scale


def neuron_rows(W, signed: bool) -> pd.DataFrame:
    """One row per neuron of one model: its monosemanticity, top feature and carried features."""
    W = np.asarray(W, float)
    off = dead(W, signed)
    carry = carried(W, signed) & ~off[:, None]
    top = np.abs(W).argmax(axis=1)
    count = carry.sum(axis=1)
    return pd.DataFrame({
        "neuron": np.arange(W.shape[0]),
        "norm": np.linalg.norm(W, axis=1),
        "monosemanticity": monosemanticity(W),
        "top_feature": top,
        "top_weight": W[np.arange(W.shape[0]), top],
        "features": count,
        "monosemantic": (count == 1) & carry[np.arange(W.shape[0]), top],
        "dead": off,
    })


def _neuron_models(res) -> list[int]:
    has = res.models["kind"].map(lambda k: models.MODELS[k].neurons)
    if not has.any():
        kinds = [k for k, s in models.MODELS.items() if s.neurons]
        raise ConfigError(f"neuron tables need a model with a ReLU hidden layer (model.kind in "
                          f"{kinds}); this sweep has {sorted(set(res.models['kind']))}")
    return [int(m) for m in res.models.loc[has, "model"]]


def table(res) -> pd.DataFrame:
    """neurons.parquet: one row per (model, neuron) of every model with a privileged basis."""
    laws = res.models.set_index("model")["law"]
    rows = [neuron_rows(res.W(model), signed=laws[model] == "signed").assign(model=model)
            for model in _neuron_models(res)]
    df = pd.concat(rows, ignore_index=True)
    return df[["model"] + [c for c in df.columns if c != "model"]]


def code_of(W, signed: bool) -> dict:
    """How one model's neurons share its features: the connected groups of the carried relation.

    Features and live neurons are linked when the neuron carries the feature (CARRY); each
    connected group of f features on k neurons is named "dedicated" (1 on 1) or "f in k" (3
    features in 2 neurons, 8 in 5, pairs "2 in 1"), and the code lists them, most features
    first, with how many features no neuron carries ("dropped"). A group of k >= 3 neurons in
    which every feature sits on exactly two neurons, no two features on the same two, is the
    paper's sparsest regime, where "each feature simply corresponds to a pair of neurons"
    (section 7): it is named "f in k on neuron pairs (q of C(k,2))", q the pairs occupied, since
    "10 in 5" alone would hide that every one of the C(5,2) = 10 pairs carries one feature.
    The paper's regimes read directly: "3 x dedicated + 3 in 2", "8 in 5", "5 x 2 in 1",
    "10 in 5 on neuron pairs (10 of 10)".

    Beside the code: `neurons_per_feature`, the mean over carried features of the neurons
    carrying each; `paired`, the features carried by exactly two neurons; `distinct_pairs`, the
    different neuron pairs those occupy; `pair_map`, every carried feature with the neurons that
    carry it ("0:1+4 1:1+3 ...", features and neurons by index).
    """
    carry = carried(W, signed) & ~dead(W, signed)[:, None]
    m, n = carry.shape
    group = list(range(m + n))  # union-find over neurons 0..m-1 and features m..m+n-1

    def root(a):
        while group[a] != a:
            group[a] = group[group[a]]
            a = group[a]
        return a

    for k, i in zip(*np.nonzero(carry)):
        group[root(int(k))] = root(m + int(i))
    members: dict = {}
    for node in range(m + n):
        members.setdefault(root(node), []).append(node)
    on = [tuple(np.flatnonzero(carry[:, i]).tolist()) for i in range(n)]  # neurons of feature i
    parts: collections.Counter = collections.Counter()
    for nodes in members.values():
        feats = [v - m for v in nodes if v >= m]
        f, k = len(feats), len(nodes) - len(feats)
        if f and k:
            parts[f, k, _paired(f, k, [on[i] for i in feats])] += 1
    names = sorted(((f, k, _group_name(f, k, q), count) for (f, k, q), count in parts.items()),
                   key=lambda t: (t[2] != "dedicated", -t[0], t[1]))
    code = " + ".join(f"{count} x {name}" if count > 1 else name for _, _, name, count in names)
    dropped = int(n - carry.any(axis=0).sum())
    counts = np.array([len(c) for c in on if c])
    pairs = [c for c in on if len(c) == 2]
    return {"code": (code or "nothing carried") + (f"; {dropped} dropped" if dropped else ""),
            "dedicated": sum(c for (f, k, _), c in parts.items() if (f, k) == (1, 1)),
            "largest": max((f for f, _, _ in parts), default=0),
            "carried": n - dropped, "dropped": dropped,
            "neurons_per_feature": float(counts.mean()) if counts.size else float("nan"),
            "paired": len(pairs), "distinct_pairs": len(set(pairs)),
            "pair_map": " ".join(f"{i}:{'+'.join(map(str, c))}" for i, c in enumerate(on) if c)}


def _paired(f: int, k: int, neurons_of: list) -> int:
    """The neuron pairs a group occupies when each of its f features sits on exactly two of its
    k >= 3 neurons and no two share a pair (the paper's pairs regime); 0 otherwise."""
    if k < 3 or any(len(c) != 2 for c in neurons_of) or len(set(neurons_of)) != f:
        return 0
    return f


def _group_name(f: int, k: int, pairs: int) -> str:
    if (f, k) == (1, 1):
        return "dedicated"
    if pairs:
        return f"{f} in {k} on neuron pairs ({pairs} of {k * (k - 1) // 2})"
    return f"{f} in {k}"


def codes(res) -> pd.DataFrame:
    """codes.parquet: one row per model with a privileged basis: its code (code_of) and counts."""
    laws = res.models.set_index("model")["law"]
    return pd.DataFrame([{"model": model, **code_of(res.W(model), laws[model] == "signed")}
                         for model in _neuron_models(res)])


def motifs_of(W1, W2) -> pd.DataFrame:
    """Asymmetric superposition motifs of one computation model (y = ReLU(W2 ReLU(W1 x) + b)).

    A motif is a neuron k whose two largest input weights belong to features i ("big") and j
    ("small") with opposite signs and |W1_ki| >= ASYMMETRY |W1_kj|, and which computes part of
    both features' outputs (gains W2_ik |W1_ki| and W2_jk |W1_kj| of at least GAIN). Whenever i
    is active with the sign that fires k, k then leaks
    W2_jk |W1_ki| |x_i| into y_j; the motif is complete when the other neurons firing on that
    same sign of x_i write back at least CANCEL of it negatively into y_j. The neuron doing most
    of the cancelling is reported as `canceller`.
    """
    W1, W2 = np.asarray(W1, float), np.asarray(W2, float)
    off = dead(W1, signed=True)
    carry = carried(W1, signed=True)
    rows = []
    for k in np.flatnonzero(~off) if W1.shape[1] >= 2 else ():  # a motif needs two features
        order = np.argsort(-np.abs(W1[k]))
        i, j = int(order[0]), int(order[1])
        big, small = W1[k, i], W1[k, j]
        if not (carry[k, i] and carry[k, j]) or big * small >= 0:
            continue
        if abs(big) < ASYMMETRY * abs(small) or min(W2[i, k] * abs(big), W2[j, k] * abs(small)) < GAIN:
            continue
        leak = W2[j, k] * abs(big)
        fires = (np.sign(W1[:, i]) == np.sign(big)) & ~off
        fires[k] = False
        back = np.where(fires, W2[j, :] * np.abs(W1[:, i]), 0.0)  # each neuron's write into y_j
        cancelled = -back.sum() / leak
        if cancelled < CANCEL:
            continue
        rows.append({"neuron": int(k), "big_feature": i, "small_feature": j, "big_weight": big,
                     "small_weight": small, "ratio": abs(big / small),
                     "canceller": int(np.argmin(back)), "cancelled": cancelled})
    return pd.DataFrame(rows, columns=["neuron", "big_feature", "small_feature", "big_weight",
                                       "small_weight", "ratio", "canceller", "cancelled"])


def motifs(res) -> pd.DataFrame:
    """motifs.parquet: every asymmetric superposition motif of every computation model."""
    ids = [m for m in _neuron_models(res) if "W2" in res.params(m)]
    if not ids:
        raise ConfigError("the motif table needs computation models (model.kind = 'abs'); "
                          f"this sweep has {sorted(set(res.models['kind']))}")
    frames = [motifs_of(res.params(m)["W1"], res.params(m)["W2"]).assign(model=m) for m in ids]
    df = pd.concat(frames, ignore_index=True)
    df["model"] = df["model"].astype(int)
    return df[["model"] + [c for c in df.columns if c != "model"]]


# --- which features a model computes -------------------------------------------------------

@functools.partial(jax.jit, static_argnums=(0, 4, 5, 6))
def _feature_errors(kind, params, p_N, key, batch, law, sampler="fast"):
    """n x 3: E[(target_i - y_i)^2] given x_i active and positive, active and negative, inactive.

    A plain sample at density 0.001 sees feature i active a handful of times, so each feature is
    scored on batches with x_i forced to +|u|, to -|u| and to 0 (the others drawn as usual).
    """
    spec = models.MODELS[kind]
    n = p_N.shape[0]
    net = spec.build(n, params[spec.embed].shape[0])
    k_x, k_i = jax.random.split(key)
    x = data.sample(k_x, p_N, batch, law, sampler=sampler)
    mag = jnp.abs(data.magnitudes(k_i, (batch,), law, sampler))

    def one(i):
        def err(xi):
            xs = x.at[:, i].set(xi)
            y = net.apply({"params": params}, xs)
            return jnp.mean((spec.target(xs[:, i]) - y[:, i]) ** 2)
        return jnp.stack([err(mag), err(-mag), err(jnp.zeros(batch))])

    return jax.lax.map(one, jnp.arange(n))


def computation(res, batch: int = 4096) -> pd.DataFrame:
    """computation.parquet: how well each model computes each feature's target.

    Per (model, feature): `error`, the expected squared error of its output; `zero_error`, that of
    predicting 0 (p_i E[u^2]); `relative`, their ratio. For signed inputs the error is also split
    by the sign of x_i (`error_pos`, `error_neg`; the error while x_i is inactive is shared
    equally), since a ReLU neuron computes |x| one sign at a time: `signs` counts the signs whose
    error is under COMPUTED times their share of `zero_error`, and `computed` means all of them.
    A feature computed for one sign only has `relative` near 0.5.
    """
    frames = []
    laws = res.models.set_index("model")["law"]
    # the evaluation draws with the sampler each model was trained with
    samplers = res.models.set_index("model")["sampler"]
    for model, f in res.features.groupby("model", sort=True):
        model, law = int(model), laws[model]
        p = f["density"].to_numpy()
        params = {k: jnp.asarray(v) for k, v in res.params(model).items()}
        e_pos, e_neg, e_off = np.asarray(_feature_errors(
            res.kind(model), params, jnp.asarray(p, jnp.float32), jax.random.PRNGKey(model),
            batch, law, samplers[model]), float).T
        zero = p * data.MOMENTS[law][2]
        if law == "signed":
            halves = [p / 2 * e + (1 - p) / 2 * e_off for e in (e_pos, e_neg)]
            error, signs = halves[0] + halves[1], sum((h < COMPUTED * zero / 2) for h in halves)
            pos, neg, both = halves[0], halves[1], 2
        else:  # magnitudes >= 0: one sign, nothing to split
            error = p * e_pos + (1 - p) * e_off
            signs, pos, neg, both = (error < COMPUTED * zero).astype(int), error, np.nan, 1
        frames.append(pd.DataFrame({"model": model, "feature": f["feature"].to_numpy(),
                                    "error": error, "zero_error": zero, "relative": error / zero,
                                    "error_pos": pos, "error_neg": neg, "signs": signs,
                                    "computed": signs == both}))
    return pd.concat(frames, ignore_index=True)
