"""Section 4 (docs/geometry.md): dimensions per feature, feature dimensionalities and the
structures they form; non-uniform and correlated features in a hidden plane."""

from __future__ import annotations

import json
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from toysuper import metrics, structures, tables
from toysuper.figures.style import (
    DPI,
    FLAG,
    FLAG_WORDS,
    best_models,
    flags,
    fraction_lines,
    kind_title,
    kinds,
    mark_panel,
    one_seed,
    ring,
    title,
)

# A per-feature setting in the flat settings ("data.importance[0]") and in the models table
# ("importance[0]"); the index may count from the end ("density[-1]").
FEATURE_SETTING = re.compile(r"data\.(importance|density)\[-?\d+\]")
FEATURE_COLUMN = re.compile(r"(importance|density)\[-?\d+\]")


def swept_feature_settings(settings: list[dict]) -> list[str]:
    """The per-feature settings whose value differs between the models of a sweep."""
    keys = sorted({k for s in settings for k in s if FEATURE_SETTING.fullmatch(k)})
    return [k for k in keys if len({repr(s.get(k)) for s in settings}) > 1]


def dims_per_feature(res):
    """D* = m / ||W||_F^2 against 1/(1-S), with plateaus at the fractions 1, 1/2, 2/5, ...

    One line per (kind, n, m) through the lowest-loss seed of each density, every seed in grey
    behind it (where a density holds several); trapped or local-minimum models ringed in red.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=DPI, layout="constrained")
    single = one_seed(res.models, ["kind", "n_features", "n_hidden", "density"])
    marks, drawn = flags(res), []
    for (kind, n, m), g in res.models.groupby(["kind", "n_features", "n_hidden"], sort=False):
        g = g.assign(inv=1 / g["density"].astype(float))
        best = best_models(g, ["density"]).sort_values("inv")
        if not single:
            ax.scatter(g["inv"], g["dims_per_feature"], s=8, color="0.6", zorder=2)
        ax.plot(best["inv"], best["dims_per_feature"], "o-", ms=3.5, lw=1, zorder=3,
                label=f"{kind_title(kind)}, n={n}, m={m}"
                      + ("" if single else " (lowest-loss seed)"))
        drawn.append(best if single else g)
    ax.set(xscale="log", ylim=(0, 1.08), xlabel="1 / (1-S) = 1 / density",
           ylabel="dimensions per feature D* = m / ||W||$_F^2$")
    fraction_lines(ax, gap=0.05)
    if single:
        ax.plot([], [], " ", label="one seed per density")
    else:
        ax.scatter([], [], s=8, color="0.6", label="every seed")
    shown = pd.concat(drawn)
    shown = shown[shown["model"].isin(list(marks))]
    if len(shown):
        ring(ax, shown["inv"], shown["dims_per_feature"], label=f"red ring: {FLAG_WORDS}")
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{title(res)}: dimensions per feature across sparsity", fontsize=10)
    return fig


def feature_dims(res):
    """Every feature's dimensionality D_i at every density (the lowest-loss seed of each).

    A trapped or local-minimum model's column of features gets a red triangle on the top edge
    and a faint red line through it (ringing each of its features would bury the points).
    """
    best = best_models(res.models, ["kind", "density"])
    f = res.features[res.features["model"].isin(best["model"])].merge(
        best[["model", "density"]].rename(columns={"density": "model_density"}), on="model")
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=DPI, layout="constrained")
    rng = np.random.default_rng(0)
    x = (1 / f["model_density"].astype(float)) * np.exp(rng.uniform(-0.04, 0.04, len(f)))
    learned = f["norm"] >= metrics.REPRESENTED
    ax.scatter(x[learned], f.loc[learned, "dimensionality"], s=3, alpha=0.35, color="C0",
               lw=0, label=f"learned features (||W_i|| \u2265 {metrics.REPRESENTED})")
    ax.scatter(x[~learned], f.loc[~learned, "dimensionality"], s=3, alpha=0.2, color="0.6", lw=0,
               label="not learned")
    ax.set(xscale="log", ylim=(-0.03, 1.08), xlabel="1 / (1-S) = 1 / density",
           ylabel="feature dimensionality D$_i$")
    fraction_lines(ax, gap=0.05)
    bad = best[best["model"].isin(list(flags(res)))]
    for i, x_bad in enumerate(1 / bad["density"].astype(float)):
        ax.axvline(x_bad, color=FLAG, lw=0.8, alpha=0.45, zorder=0,
                   label=f"red line: model {FLAG_WORDS}" if i == 0 else None)
    if len(bad):
        ax.scatter(1 / bad["density"].astype(float), np.ones(len(bad)), marker="v", s=30,
                   color=FLAG, transform=ax.get_xaxis_transform(), clip_on=False, zorder=6)
    ax.legend(fontsize=7, loc="upper right", markerscale=3)
    which = ("" if one_seed(res.models, ["kind", "density"])
             else "\n(the lowest-loss seed of each density)")
    fig.suptitle(f"{title(res)}: feature dimensionalities cluster at the fractions of regular "
                 f"structures{which}", fontsize=10)
    return fig


STRUCTURE_COLOURS = dict(zip(structures.NAMES, ["#1b4f9c", "#4fa3d9", "#2e9e5b", "#a6d96a",
                                                  "#f0b03c", "#d9553b", "#9a9a9a", "#e8e8e8"]))


def structure_mix(res):
    """The share of features in each structure, per density (the lowest-loss seed of each).

    Reads the derived table "structures" (toysuper/structures.py): model, feature, structure.
    A trapped or local-minimum model's density label is red.
    """
    best = best_models(res.models, ["kind", "density"]).sort_values("density", ascending=False)
    labels = tables.get(res, "structures")
    found = kinds(best)
    marks = flags(res)
    fig, axes = plt.subplots(len(found), 1, figsize=(max(6.0, 0.32 * best["density"].nunique() + 3),
                             3.2 * len(found) + 0.6), squeeze=False, dpi=DPI, layout="constrained")
    for ax, kind in zip(axes[:, 0], found):
        rows = best[best["kind"] == kind]
        share = (labels[labels["model"].isin(rows["model"])].groupby("model")["structure"]
                 .value_counts(normalize=True).unstack(fill_value=0.0)
                 .reindex(index=rows["model"], columns=list(structures.NAMES), fill_value=0.0))
        x, base = np.arange(len(rows)), np.zeros(len(rows))
        for name in structures.NAMES:
            ax.bar(x, share[name], bottom=base, width=0.85, color=STRUCTURE_COLOURS[name], label=name)
            base += share[name].to_numpy()
        ax.set_xticks(x, [f"{p:.2g}" for p in rows["density"]], rotation=90, fontsize=7)
        bad = [int(m) in marks for m in rows["model"]]
        for tick, red in zip(ax.get_xticklabels(), bad):
            if red:
                tick.set(color=FLAG, fontweight="bold")
        note = f" (red: {FLAG_WORDS})" if any(bad) else ""
        ax.set(xlabel=f"feature density 1-S (sparser to the right){note}", ylabel="share of features",
               ylim=(0, 1), xlim=(-0.6, len(rows) - 0.4), title=kind_title(kind))
        ax.title.set_fontsize(9)
    axes[0, 0].legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"{title(res)}: structures the features form (toysuper/structures.py)",
                 fontsize=10)
    return fig


def _swept_column(models) -> tuple[str, int]:
    """The models-table column of the swept per-feature setting, and its feature index.

    The figure's needs (figures/__init__.py) guarantee exactly one before training.
    """
    cols = [c for c in models.columns if FEATURE_COLUMN.fullmatch(c) and models[c].nunique() > 1]
    assert len(cols) == 1, f"figure 'nonuniform_plane' drawn from a sweep varying {cols}"
    return cols[0], int(cols[0][cols[0].index("[") + 1:-1])


def nonuniform_plane(res):
    """The n feature vectors in the hidden plane as one feature's setting is swept.

    Panels of the lowest-loss seed at each value, the swept feature in red; below, the loss and
    that feature's norm against the value. A trapped or local-minimum model's panel is framed in
    red, its loss point ringed.
    """
    col, k = _swept_column(res.models)
    best = best_models(res.models, [col]).sort_values(col)
    single = one_seed(res.models, [col])
    cols = min(len(best), 8)
    rows = int(np.ceil(len(best) / cols))
    fig = plt.figure(figsize=(1.9 * cols + 0.6, 2.1 * rows + 2.6), dpi=DPI, layout="constrained")
    gs = fig.add_gridspec(rows + 1, cols, height_ratios=[1] * rows + [1.15])
    n = int(best["n_features"].iloc[0])
    special = k % n
    setting = col.split("[")[0]
    marks = flags(res)
    for idx, (_, row) in enumerate(best.iterrows()):
        ax = fig.add_subplot(gs[idx // cols, idx % cols])
        W = res.W(int(row["model"]))
        ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.85", lw=0.8))
        for i in range(n):
            colour, lw = ("C3", 2.4) if i == special else ("0.35", 1.4)
            ax.plot([0, W[0, i]], [0, W[1, i]], color=colour, lw=lw)
            ax.plot(W[0, i], W[1, i], "o", color=colour, ms=4)
        ax.set(xlim=(-1.4, 1.4), ylim=(-1.4, 1.4), aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"{setting} = {row[col]:.3g}\nloss {row['loss']:.3g}", fontsize=8)
        mark_panel(ax, marks.get(int(row["model"])))
    ax = fig.add_subplot(gs[rows, :])
    ax.plot(best[col], best["loss"], "o-", color="k", ms=3,
            label="loss" if single else "loss (lowest-loss seed)")
    bad = best[best["model"].isin(list(marks))]
    if len(bad):
        ring(ax, bad[col], bad["loss"], label=f"red ring: {FLAG_WORDS}")
    ax.set(xscale="log", xlabel=f"{setting} of feature {special} (red), the others fixed",
           ylabel="loss")
    norm = res.features.set_index(["model", "feature"])["norm"]
    ax2 = ax.twinx()
    ax2.plot(best[col], [norm[(int(m), special)] for m in best["model"]], "s--", color="C3", ms=3,
             label=f"||W$_{special}$||")
    ax2.set_ylabel(f"norm ||W$_{special}$||", color="C3")
    ax2.tick_params(axis="y", colors="C3")
    ax2.set_ylim(0, 1.3)
    # constrained layout leaves no room for a twin axis's labels: keep 0.65 inch on the right
    width = fig.get_figwidth()
    fig.get_layout_engine().set(rect=(0, 0, 1 - 0.65 / width, 1))
    lines = ax.get_legend_handles_labels()
    more = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper left")
    fig.suptitle(f"{title(res)}: n={n} features in m=2 as feature {special}'s {setting} changes",
                 fontsize=10)
    return fig


def _sets(value) -> list:
    return json.loads(value) if isinstance(value, str) else list(value)


def _label_groups(W, close: float) -> list[list[int]]:
    """Features whose vector tips lie within `close` of each other (chained), for one label."""
    groups: list[list[int]] = []
    for i in range(W.shape[1]):
        near = [g for g in groups if any(np.linalg.norm(W[:, i] - W[:, j]) < close for j in g)]
        merged = [i] + [j for g in near for j in g]
        groups = [g for g in groups if g not in near] + [sorted(merged)]
    return sorted(groups)


def sets_plane(res):
    """Features in the hidden plane coloured by correlated / anticorrelated set, per case.

    Features whose vectors (nearly) coincide share one label ("2,3"); the titles give each
    correlated set's share of squared norm on its first principal direction (dotted). A trapped or
    local-minimum model's panel is framed in red.
    """
    by = [c for c in ("case", "density") if c in res.models and res.models[c].nunique() > 1] or ["kind"]
    best = best_models(res.models, by).sort_values(by)
    fig, axes = plt.subplots(1, len(best), figsize=(2.9 * len(best) + 0.3, 3.6), squeeze=False,
                             dpi=DPI, layout="constrained")
    marks = flags(res)
    palette = {"correlated": ["#1f77b4", "#2ca02c", "#17becf"],
               "anticorrelated": ["#d62728", "#ff7f0e", "#e377c2"]}
    for ax, (_, row) in zip(axes[0], best.iterrows()):
        W = res.W(int(row["model"]))
        colour, what = ["0.45"] * W.shape[1], []
        for kind in ("correlated", "anticorrelated"):
            for j, members in enumerate(_sets(row[kind])):
                for i in members:
                    colour[i] = palette[kind][j % 3]
                what.append(f"{kind} {{{', '.join(map(str, members))}}}")
                if kind == "correlated":  # how far the set collapsed onto one direction
                    u, sv, _ = np.linalg.svd(W[:, members])
                    share = sv[0] ** 2 / max((sv ** 2).sum(), 1e-12)
                    what[-1] += f": {share:.0%} on its 1st PC"
                    ax.plot([-1.3 * u[0, 0], 1.3 * u[0, 0]], [-1.3 * u[1, 0], 1.3 * u[1, 0]],
                            ls=":", lw=0.9, color=palette[kind][j % 3])
        ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.85", lw=0.8))
        for i in range(W.shape[1]):
            ax.plot([0, W[0, i]], [0, W[1, i]], color=colour[i], lw=2)
        for group in _label_groups(W, close=0.12):
            tip = W[:, group].mean(axis=1)
            r = np.linalg.norm(tip)
            out = tip / r if r > 1e-3 else np.array([0.7, 0.7])  # push the label outward
            shades, text = {colour[i] for i in group}, ",".join(map(str, group))
            ax.annotate(text, tuple(tip), xytext=tuple((5 + 3 * len(text)) * out),
                        textcoords="offset points", fontsize=8, ha="center", va="center",
                        color=shades.pop() if len(shades) == 1 else "0.2")
        ax.set(xlim=(-1.35, 1.35), ylim=(-1.35, 1.35), aspect="equal", xticks=[], yticks=[])
        ax.set_title("\n".join(what or ["independent"]) + f"\n1-S = {row['density']:.3g}, "
                     f"loss {row['loss']:.3g}", fontsize=8)
        mark_panel(ax, marks.get(int(row["model"])))
    fig.suptitle(f"{title(res)}: features W_i in the hidden plane, coloured by set "
                 f"(grey: independent)", fontsize=10)
    return fig
