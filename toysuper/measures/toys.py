"""Measurements for claims: the core toy models (Elhage et al. 2022, sections 1-5).

Every measurement reads the kept model of a sweep cell (its lowest-loss seed, optima.kept_models)
or a set of them. Which cell is chosen by keyword arguments matched against the kept models'
columns: any column of models.parquet (kind, density, n_features, ...), and
  inv_density   1/(1-S) = 1/density; the kept model whose value is nearest, within 5%
  case          the index of a sweep case (sweep.cases), in the order of the experiment file
  importance0   feature 0's importance, density0 its density (the non-uniform sweeps)
  sparser0      how many times sparser feature 0 is than the others (their density / its own)
A name ending in _min or _max bounds that column instead (inv_density_min = 2 keeps 1/(1-S) >= 2).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from toysuper import config, metrics, optima, structures, tables
from toysuper import phase as phases
from toysuper.errors import ConfigError
from toysuper.measures.registry import measure

# The dimensionalities the paper marks in its feature-dimensionality figure (section 4): dedicated,
# tetrahedron, triangle, digon, pentagon, square antiprism.
STICKY = (1.0, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8)
NEAREST = 0.05   # inv_density picks the nearest kept model within this relative distance
ANTIPODAL = -0.9  # two learned features whose cosine is at most this form an antipodal pair


def _kept(res) -> pd.DataFrame:
    """The kept models with the columns a claim may select on (module docstring)."""
    ids = optima.kept_models(res)
    k = res.models.set_index("model").loc[ids].reset_index()
    k["inv_density"] = 1.0 / k["density"]
    cases = [s.get("sweep.case", -1) for s in config.expand(res.config)]
    k["case"] = [cases[int(i)] for i in k["model"]]
    f0 = res.features[res.features["feature"] == 0].set_index("model")
    k["importance0"] = f0.loc[ids, "importance"].to_numpy()
    k["density0"] = f0.loc[ids, "density"].to_numpy()
    others = res.features[res.features["feature"] != 0].groupby("model")["density"].median()
    k["sparser0"] = others.reindex(ids).to_numpy() / k["density0"].to_numpy()
    return k


def _select(res, where: dict) -> pd.DataFrame:
    """The kept models that match `where` (module docstring)."""
    k = _kept(res)
    rows = np.ones(len(k), bool)
    for key, value in where.items():
        col = key[:-4] if key.endswith(("_min", "_max")) else key
        if col not in k:
            raise ConfigError(f"claim argument '{key}' = {value!r}: no column '{col}' among the kept "
                              f"models; allowed: {sorted(k.columns)}")
        if key.endswith("_min"):
            rows &= k[col].to_numpy(float) >= value
        elif key.endswith("_max"):
            rows &= k[col].to_numpy(float) <= value
        elif col == "inv_density":
            rel = np.abs(k[col].to_numpy(float) / value - 1)
            rows &= (rel == rel.min()) & (rel <= NEAREST)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            rows &= np.isclose(k[col].to_numpy(float), value, rtol=1e-3, atol=0)
        else:
            rows &= (k[col] == value).to_numpy()
    return k[rows]


def _one(res, where: dict) -> int:
    """The one kept model that matches `where`."""
    got = _select(res, where)
    if len(got) != 1:
        raise ConfigError(f"claim arguments {where} select {len(got)} kept models; a measurement "
                          f"of one model needs exactly one (add a setting to the arguments)")
    return int(got["model"].iloc[0])


def _learned(W) -> np.ndarray:
    return metrics.norms(W) >= metrics.REPRESENTED


def _angles(W) -> np.ndarray:
    """Angles in degrees of every column of a 2 x n W."""
    return np.degrees(np.arctan2(W[1], W[0])) % 360


def _spearman(a, b) -> float:
    a, b = pd.Series(np.asarray(a, float)), pd.Series(np.asarray(b, float))
    return float(a.rank().corr(b.rank())) if len(a) > 2 else float("nan")


@measure("represented_features", "features with ||W_i|| >= 0.5 in the kept model of a cell")
def represented_features(res, **where) -> float:
    return float(_learned(res.W(_one(res, where))).sum())


@measure("mean_learned_dimensionality", "mean feature dimensionality D_i over the learned "
         "features (||W_i|| >= 0.5) of the kept model of a cell")
def mean_learned_dimensionality(res, **where) -> float:
    W = res.W(_one(res, where))
    learned = _learned(W)
    return float(metrics.dimensionality(W)[learned].mean()) if learned.any() else float("nan")


@measure("polygon_angle_error", "m = 2: largest gap between neighbouring learned features' "
         "angles minus 360/k, in degrees (0 for a regular k-gon), kept model of a cell")
def polygon_angle_error(res, **where) -> float:
    W = res.W(_one(res, where))
    if W.shape[0] != 2 or _learned(W).sum() < 2:
        return float("nan")
    a = np.sort(_angles(W[:, _learned(W)]))
    gaps = np.diff(np.append(a, a[0] + 360))
    return float(np.abs(gaps - 360 / len(a)).max())


@measure("structure_features", "features labelled `structure` (structures.parquet) summed over "
         "the kept models selected")
def structure_features(res, structure: str, **where) -> float:
    if structure not in structures.NAMES:
        raise ConfigError(f"claim argument structure = {structure!r}: allowed {list(structures.NAMES)}")
    ids = _select(res, where)["model"]
    s = tables.get(res, "structures")
    return float((s[s["model"].isin(ids)]["structure"] == structure).sum())


@measure("antipodal_pairs", "pairs of learned features with cosine <= -0.9, kept model of a cell")
def antipodal_pairs(res, **where) -> float:
    W = res.W(_one(res, where))
    U = W[:, _learned(W)] / metrics.norms(W)[_learned(W)]
    cos = U.T @ U
    return float((np.triu(cos, 1) <= ANTIPODAL).sum())


@measure("negative_biases", "learned features whose output bias is below `below`, kept model of a cell")
def negative_biases(res, below: float = -0.01, **where) -> float:
    model = _one(res, where)
    b = res.params(model)["b"]
    return float(((b < below) & _learned(res.W(model))).sum())


@measure("topm_gram_error", "largest |W^T W - P| over the kept models selected, P the identity on "
         "the m most important features and 0 elsewhere (0 for the top-m linear solution)")
def topm_gram_error(res, **where) -> float:
    worst = 0.0
    for model in _select(res, where)["model"]:
        W = res.W(int(model))
        imp = res.features[res.features["model"] == model].sort_values("feature")["importance"]
        top = np.argsort(-imp.to_numpy(), kind="stable")[: W.shape[0]]
        P = np.zeros((W.shape[1], W.shape[1]))
        P[top, top] = 1.0
        worst = max(worst, float(np.abs(W.T @ W - P).max()))
    return worst


@measure("represented_trend", "Spearman rank correlation of 1/(1-S) with the number of learned "
         "features over the kept models selected (1 when sparser always means more features)")
def represented_trend(res, **where) -> float:
    k = _select(res, where)
    counts = [_learned(res.W(int(m))).sum() for m in k["model"]]
    return _spearman(k["inv_density"], counts)


@measure("trapped_models", "models that lose to a trivial baseline of their task (optima.parquet); "
         "kept = true counts only the kept model of each cell")
def trapped_models(res, kept: bool = False) -> float:
    o = tables.get(res, "optima")
    if kept:
        o = o[o["model"].isin(optima.kept_models(res))]
    return float(o["trapped"].sum())


@measure("local_minimum_cells", "sweep cells whose kept model loses to a neighbouring cell's "
         "solution scored at its settings (neighbours.parquet)")
def local_minimum_cells(res) -> float:
    return float(tables.get(res, "neighbours")["local_minimum"].sum())


@measure("phase_agreement", "share of phase-diagram cells whose empirical phase of the extra "
         "feature equals the analytic theory's, by rule 'best' (kept seed) or 'paper'")
def phase_agreement(res, rule: str = "best") -> float:
    if rule not in ("best", "paper"):
        raise ConfigError(f"claim argument rule = {rule!r}: allowed 'best' or 'paper'")
    return phases.agreement(tables.get(res, "phase"), rule)


@measure("phase_share", "share of phase-diagram cells within the given r and p bounds whose "
         "empirical phase (kept seed) is `phase`")
def phase_share(res, phase: str, r_min: float = 0.0, r_max: float = np.inf, p_min: float = 0.0,
                p_max: float = np.inf) -> float:
    t = tables.get(res, "phase")
    cells = t[t["r"].between(r_min, r_max) & t["p"].between(p_min, p_max)]
    return float((cells["phase"] == phase).mean()) if len(cells) else float("nan")


@measure("superposition_edge", "largest density p at which the extra feature is in superposition "
         "(kept seed), on the row of cells whose r is nearest `importance`")
def superposition_edge(res, importance: float = 1.0) -> float:
    t = tables.get(res, "phase")
    dist = np.abs(np.log(t["r"] / importance))
    row = t[np.isclose(dist, dist.min())]
    sup = row[row["phase"] == "superposition"]["p"]
    return float(sup.max()) if len(sup) else float("nan")


@measure("dims_per_feature", "D* = m / ||W||_F^2 of the kept model of a cell")
def dims_per_feature(res, **where) -> float:
    return metrics.dims_per_feature(res.W(_one(res, where)))


@measure("sticky_span", "longest run of neighbouring densities whose kept models' D* lies within "
         "`tol` of `value`, as the ratio of 1/(1-S) at its ends (1 for a single cell, 0 for none)")
def sticky_span(res, value: float, tol: float = 0.03, **where) -> float:
    k = _select(res, where).sort_values("inv_density")
    near = np.array([abs(metrics.dims_per_feature(res.W(int(m))) - value) <= tol for m in k["model"]])
    inv, best, start = k["inv_density"].to_numpy(), 0.0, None
    for i, ok in enumerate(near):
        if ok:
            start = i if start is None else start
            best = max(best, inv[i] / inv[start])
        else:
            start = None
    return best


def _learned_dims(res, where) -> np.ndarray:
    dims = []
    for model in _select(res, where)["model"]:
        W = res.W(int(model))
        dims.append(metrics.dimensionality(W)[_learned(W)])
    return np.concatenate(dims) if dims else np.zeros(0)


@measure("dims_near", "learned features (||W_i|| >= 0.5) whose D_i lies within `tol` of "
         "`fraction`, counted over the kept models selected")
def dims_near(res, fraction: float, tol: float = 0.04, **where) -> float:
    return float((np.abs(_learned_dims(res, where) - fraction) <= tol).sum())


@measure("dims_share_sticky", "share of learned features, over the kept models selected, whose "
         "D_i lies within `tol` of one of the paper's fractions 1, 3/4, 2/3, 1/2, 2/5, 3/8")
def dims_share_sticky(res, tol: float = 0.04, **where) -> float:
    d = _learned_dims(res, where)
    near = np.abs(d[:, None] - np.array(STICKY)[None, :]).min(axis=1) <= tol
    return float(near.mean()) if len(d) else float("nan")


def _sets(res, model: int, kind: str) -> list:
    if kind not in ("correlated", "anticorrelated"):
        raise ConfigError(f"claim argument sets = {kind!r}: allowed 'correlated' or 'anticorrelated'")
    value = res.models.set_index("model").loc[model, kind]
    return json.loads(value) if isinstance(value, str) else list(value)


@measure("set_pc_share", "share of a feature set's squared norm on its first principal direction "
         "(1/k for k orthogonal members of equal norm, 1 when collapsed), kept model of a cell")
def set_pc_share(res, which: int = 0, sets: str = "correlated", **where) -> float:
    model = _one(res, where)
    members = _sets(res, model, sets)[which]
    s = np.linalg.svd(res.W(model)[:, members], compute_uv=False)
    return float(s[0] ** 2 / (s ** 2).sum())


@measure("set_cosine", "cosine between the first two members of a feature set, kept model of a cell")
def set_cosine(res, which: int = 0, sets: str = "correlated", **where) -> float:
    model = _one(res, where)
    a, b = _sets(res, model, sets)[which][:2]
    W = res.W(model)
    return float(W[:, a] @ W[:, b] / (np.linalg.norm(W[:, a]) * np.linalg.norm(W[:, b])))


@measure("cross_set_cosine", "most negative cosine between a member of set `a` and one of set "
         "`b`, kept model of a cell (-1 when the sets lie antipodal)")
def cross_set_cosine(res, a: int = 0, b: int = 1, sets: str = "correlated", **where) -> float:
    model = _one(res, where)
    groups = _sets(res, model, sets)
    U = res.W(model) / metrics.norms(res.W(model))
    return float((U[:, groups[a]].T @ U[:, groups[b]]).min())


@measure("collapsed_sets", "feature sets whose first principal direction holds at least "
         "`share` of their squared norm, kept model of a cell")
def collapsed_sets(res, share: float = 0.9, sets: str = "correlated", **where) -> float:
    model = _one(res, where)
    n = len(_sets(res, model, sets))
    return float(sum(set_pc_share(res, which=i, sets=sets, **where) >= share for i in range(n)))


@measure("feature0_norm", "||W_0|| of the kept model of a cell")
def feature0_norm(res, **where) -> float:
    return float(metrics.norms(res.W(_one(res, where)))[0])


def _room(W) -> float:
    """m = 2: degrees between feature 0's two angular neighbours among the learned features."""
    learned = _learned(W)
    if W.shape[0] != 2 or not learned[0] or learned.sum() < 3:
        return float("nan")
    a = _angles(W)
    others = np.sort((a[learned] - a[0]) % 360)[1:]   # feature 0 itself is at 0
    return float(360 - others[-1] + others[0])


@measure("feature0_room", "m = 2: degrees between feature 0's two neighbours (144 in a regular "
         "pentagon), kept model of a cell; NaN when feature 0 is not learned")
def feature0_room(res, **where) -> float:
    return _room(res.W(_one(res, where)))


@measure("room_trend", "Spearman rank correlation of `by` with feature 0's room over the kept "
         "models in which feature 0 is learned (1: more room the larger `by`)")
def room_trend(res, by: str = "importance0", **where) -> float:
    k = _select(res, where)
    room = np.array([_room(res.W(int(m))) for m in k["model"]])
    ok = np.isfinite(room)
    return _spearman(k[by].to_numpy()[ok], room[ok])


@measure("switch_point", "geometric midpoint of `by` between the kept cells on either side of "
         "the one place where feature 0 changes between learned and dropped; NaN unless one change")
def switch_point(res, by: str = "importance0", **where) -> float:
    k = _select(res, where).sort_values(by)
    learned = np.array([_learned(res.W(int(m)))[0] for m in k["model"]])
    change = np.flatnonzero(learned[1:] != learned[:-1])
    if len(change) != 1:
        return float("nan")
    v = k[by].to_numpy(float)
    return float(np.sqrt(v[change[0]] * v[change[0] + 1]))


@measure("represented_changes", "times the number of learned features changes between neighbouring "
         "kept cells, sorted by `by` (1: one jump)")
def represented_changes(res, by: str = "importance0", **where) -> float:
    k = _select(res, where).sort_values(by)
    counts = np.array([_learned(res.W(int(m))).sum() for m in k["model"]])
    return float((counts[1:] != counts[:-1]).sum())


def _dims_over_training(res, where, after: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(steps, D_i [snapshots, n]) of the kept model of a cell, snapshots at step >= `after`."""
    steps, Ws = res.snapshot_W(_one(res, where))
    keep = steps >= after
    return steps[keep], metrics.dimensionality(Ws[keep])


@measure("final_dims_near", "features whose D_i at the end of training lies within `tol` of "
         "`fraction`, kept model of a cell")
def final_dims_near(res, fraction: float, tol: float = 0.05, **where) -> float:
    _, D = _dims_over_training(res, where)
    return float((np.abs(D[-1] - fraction) <= tol).sum())


@measure("largest_dim_jump", "largest change of one feature's D_i between neighbouring snapshots "
         "from step `after` on, kept model of a cell")
def largest_dim_jump(res, after: int = 0, **where) -> float:
    _, D = _dims_over_training(res, where, after)
    return float(np.abs(np.diff(D, axis=0)).max())


@measure("dim_change_concentration", "share of the summed |change of D_i| over training that "
         "falls in the `top` share of snapshot intervals with the largest change, kept model of a "
         "cell (about `top` if D_i drift steadily, near 1 if they jump)")
def dim_change_concentration(res, top: float = 0.1, after: int = 0, **where) -> float:
    _, D = _dims_over_training(res, where, after)
    per = np.abs(np.diff(D, axis=0)).sum(axis=1)
    k = max(1, int(round(top * len(per))))
    return float(np.sort(per)[::-1][:k].sum() / per.sum()) if per.sum() > 0 else float("nan")


@measure("loss_drop_at_jumps", "share of the fall in training loss between the first and last "
         "snapshot from step `after` on that happens in the `top` share of snapshot intervals where "
         "D_i change most, kept model of a cell")
def loss_drop_at_jumps(res, top: float = 0.1, after: int = 0, **where) -> float:
    model = _one(res, where)
    steps, D = _dims_over_training(res, where, after)
    per = np.abs(np.diff(D, axis=0)).sum(axis=1)
    k = max(1, int(round(top * len(per))))
    h = res.history[res.history["model"] == model].set_index("step")["loss"]
    loss = h.reindex(steps).interpolate(limit_direction="both").to_numpy()
    drops = loss[:-1] - loss[1:]
    chosen = np.argsort(per)[::-1][:k]
    total = loss[0] - loss[-1]
    return float(drops[chosen].sum() / total) if total > 0 else float("nan")


@measure("first_superposed_feature", "index of the most important learned feature whose "
         "superposition sum_{j != i} (W^_i . W_j)^2 is at least 0.5, kept model of a cell "
         "(features ordered by importance; n when none is)")
def first_superposed_feature(res, **where) -> float:
    model = _one(res, where)
    W = res.W(model)
    imp = res.features[res.features["model"] == model].sort_values("feature")["importance"].to_numpy()
    order = np.argsort(-imp, kind="stable")
    shared = (metrics.superposition(W) >= 0.5) & _learned(W)
    hits = [rank for rank, i in enumerate(order) if shared[i]]
    return float(hits[0]) if hits else float(W.shape[1])


@measure("largest_positive_interference", "largest W_i . W_j over pairs of distinct learned "
         "features, kept model of a cell")
def largest_positive_interference(res, **where) -> float:
    W = res.W(_one(res, where))
    V = W[:, _learned(W)]
    g = V.T @ V
    return float(np.where(np.eye(len(g), dtype=bool), -np.inf, g).max()) if len(g) > 1 else float("nan")


@measure("baseline_ratio", "loss of the kept model(s) selected over its best trivial baseline's "
         "(optima.parquet, column ratio); `stat` = max, min or one (exactly one model)")
def baseline_ratio(res, stat: str = "max", **where) -> float:
    if stat not in ("max", "min", "one"):
        raise ConfigError(f"claim argument stat = {stat!r}: allowed 'max', 'min' or 'one'")
    ids = [_one(res, where)] if stat == "one" else list(_select(res, where)["model"])
    ratio = tables.get(res, "optima").set_index("model").loc[ids, "ratio"]
    return float(ratio.min() if stat == "min" else ratio.max())


@measure("structure_share", "share of the learned features (||W_i|| >= 0.5) of the kept models "
         "selected that are labelled `structure` (structures.parquet)")
def structure_share(res, structure: str, **where) -> float:
    learned = structure_features(res, structure="not learned", **where)
    total = sum(res.W(int(m)).shape[1] for m in _select(res, where)["model"])
    hits = structure_features(res, structure=structure, **where)
    return float(hits / (total - learned)) if total > learned else float("nan")


@measure("phase_disagreements", "phase-diagram cells whose kept seed's phase differs from the "
         "theory's; below = true counts only those whose trained loss is below the theory's "
         "(a solution the candidate set lacks), below = false only those above it")
def phase_disagreements(res, below: bool | None = None) -> float:
    t = tables.get(res, "phase")
    off = t[~t["agree"].astype(bool)]
    if below is not None:
        off = off[(off["loss"] < off["theory_loss"]) == below]
    return float(len(off))
