"""Finite data (docs/finite_data.md): double descent in the training set's size T, and what the
hidden plane holds on either side of it: the training points, or the features."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from toysuper import finite_data, optima, tables
from toysuper.figures.style import DPI, flags, mark_panel, ring, title

FEATURE_COLOUR, POINT_COLOUR = "#1f5fa8", "#d9730d"
NEEDS = finite_data.NEEDS  # every model trained on a finite set


def _kept(res):
    """The kept model of each training-set size T (lowest training loss over its seeds)."""
    kept = res.models.set_index("model").loc[optima.kept_models(res)].reset_index()
    return kept.sort_values("dataset_size", ignore_index=True)


def _peak(kept):
    return kept.loc[kept["loss"].idxmax()] if len(kept) else None


def double_descent(res):
    """Test and training loss against T, beside each feature's and each training point's
    dimensionality (every feature and point of the kept model of each T)."""
    kept = _kept(res)
    every = res.models.sort_values("dataset_size")
    marks = flags(res)
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.0), dpi=DPI)
    ax = axes[0]
    ax.scatter(every["dataset_size"], every["loss"], s=8, color="0.7", zorder=2,
               label="test loss, every seed")
    ax.plot(kept["dataset_size"], kept["loss"], "o-", color="black", ms=4, zorder=3,
            label="test loss (fresh samples)")
    floor = 1e-3  # training losses of memorised sets reach 1e-15: drawn on the bottom edge
    ax.plot(kept["dataset_size"], kept["train_loss"].clip(lower=floor), "s--", color=POINT_COLOUR,
            ms=3.5, zorder=3, label=f"training loss (below {floor:g}: on the edge)")
    peak = _peak(kept)
    if peak is not None:
        ax.axvline(peak["dataset_size"], color="0.5", lw=0.8, ls=":", zorder=1)
        ax.annotate(f"peak at T = {int(peak['dataset_size'])}", (peak["dataset_size"], peak["loss"]),
                    textcoords="offset points", xytext=(6, 6), fontsize=8)
    bad = kept[kept["model"].isin(marks)]
    if len(bad):
        ring(ax, bad["dataset_size"], bad["loss"], label="trapped or local minimum")
    top = max(float(every["loss"].max()), float(kept["train_loss"].max())) * 1.6
    ax.set(xscale="log", yscale="log", ylim=(floor * 0.8, top), xlabel="training set size T",
           ylabel="loss", title="test and training loss")
    ax.legend(fontsize=7, loc="lower left")

    feats = res.features.set_index("model")
    points = tables.get(res, "datapoints").set_index("model")
    for ax, what, colour, label in ((axes[1], "features", FEATURE_COLOUR, "features: $D_i$"),
                                    (axes[2], "points", POINT_COLOUR, "training points: $D_t$")):
        rng = np.random.default_rng(0)
        for _, row in kept.iterrows():
            d = (feats.loc[[row["model"]], "dimensionality"] if what == "features"
                 else points.loc[[row["model"]], "dimensionality"]).to_numpy()
            T = row["dataset_size"]
            x = T * np.exp(rng.uniform(-0.08, 0.08, len(d)))  # jitter on the log axis
            ax.scatter(x, d, s=3, alpha=0.25, color=colour, linewidths=0, rasterized=True)
            ax.scatter([T], [np.sort(d)[-min(len(d), 10):].mean()], s=14, color="black", zorder=3)
        if what == "points":  # T points on a regular polygon in the plane: 2/T each
            T = np.geomspace(max(kept["dataset_size"].min(), 2), kept["dataset_size"].max(), 50)
            ax.plot(T, np.minimum(2 / T, 1), color="0.4", lw=0.8, ls="--",
                    label="2/T: a regular T-gon")
            ax.legend(fontsize=7, loc="upper right")
        ax.set(xscale="log", ylim=(-0.03, 1.03), xlabel="training set size T",
               ylabel="dimensionality", title=f"{label} (black: mean of the top 10)")
        if peak is not None:
            ax.axvline(peak["dataset_size"], color="0.5", lw=0.8, ls=":")
    m = int(res.models["n_hidden"].iloc[0])
    fig.suptitle(f"{title(res)}: double descent, n = {int(res.models['n_features'].iloc[0])}, "
                 f"m = {m}; kept model of each T (lowest training loss)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def _chosen_sizes(kept, count: int = 5) -> list[int]:
    """About `count` sizes spread over log T, the test-loss peak among them."""
    sizes = kept["dataset_size"].to_numpy()
    picks = {int(sizes[np.abs(np.log(sizes) - v).argmin()])
             for v in np.linspace(np.log(sizes.min()), np.log(sizes.max()), count)}
    peak = _peak(kept)
    if peak is not None:
        picks.add(int(peak["dataset_size"]))
    return sorted(picks)


def memorization_planes(res):
    """For a few T: the training points' hidden vectors h_t = W x_t (top) and the features'
    directions W_i (bottom) in the 2-D hidden plane, each scaled to its largest."""
    kept = _kept(res)
    sizes = _chosen_sizes(kept)
    marks = flags(res)
    fig, axes = plt.subplots(2, len(sizes), figsize=(2.5 * len(sizes), 5.3), dpi=DPI,
                             squeeze=False)
    peak = _peak(kept)
    sets = finite_data.training_sets(res, [int(kept.loc[kept["dataset_size"] == T, "model"].iloc[0])
                                           for T in sizes])
    for c, T in enumerate(sizes):
        model = int(kept.loc[kept["dataset_size"] == T, "model"].iloc[0])
        W = res.W(model)
        H = W @ sets[model].T
        for r, (V, colour, what) in enumerate(((H, POINT_COLOUR, "training points h_t"),
                                               (W, FEATURE_COLOUR, "features W_i"))):
            ax = axes[r, c]
            scale = max(np.linalg.norm(V, axis=0).max(), 1e-12)
            V = V / scale
            ax.plot(np.stack([np.zeros(V.shape[1]), V[0]]), np.stack([np.zeros(V.shape[1]), V[1]]),
                    color=colour, lw=0.7, alpha=0.6)
            ax.scatter(V[0], V[1], s=5, color=colour, zorder=3)
            ax.set(xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal", xticks=[], yticks=[])
            if r == 0:
                peak_word = " (test peak)" if peak is not None and T == int(peak["dataset_size"]) else ""
                ax.set_title(f"T = {T}{peak_word}", fontsize=9)
            if c == 0:
                ax.set_ylabel(what, fontsize=9)
            ax.text(0.98, 0.02, f"|max| {scale:.2g}", transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=6.5, color="0.4")
            mark_panel(ax, marks.get(model))
    fig.suptitle(f"{title(res)}: the hidden plane holds the training points when T is small "
                 f"and the features when it is large", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig

