"""The local learning coefficient along training (docs/llc.md; Chen et al. 2023)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from toysuper import tables
from toysuper.figures.style import DPI, FLAG, flags, title

# the lowest LLC drawn: snapshots far from any critical point (the first few hundred steps)
# give large negative estimates; they are drawn as triangles on the bottom edge
FLOOR = -3.0


def _k_colours(ks):
    cmap = plt.get_cmap("tab10")  # neighbouring k told apart
    return {k: cmap(k % 10) for k in ks}


def llc_kgons(res):
    """Per snapshot of every model: the training-set loss (top) and the LLC estimate with its
    standard error (bottom) against the step, points coloured by k, the features with
    ||W_i|| >= 0.5; the regular k-gons' loss and LLC (table llc_kgons) as dashed lines.
    Hollow points: estimates flagged by llc.verdict (negative chains, disagreeing chains, ...)."""
    snap, kg = tables.get(res, "llc_snapshots"), tables.get(res, "llc_kgons")
    marks = flags(res)
    colours = _k_colours(sorted(set(snap["k"]) | set(kg["k"])))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.0, 7.2), sharex=True, dpi=DPI,
                                      height_ratios=[1, 1.3], layout="constrained")
    for model, rows in snap.groupby("model"):
        line = FLAG if int(model) in marks else "0.7"
        top.plot(rows["step"], rows["loss"], "-", color=line, lw=0.8, zorder=1)
        shown = rows["llc"].clip(lower=FLOOR)
        bottom.plot(rows["step"], shown, "-", color=line, lw=0.8, zorder=1)
    ok = snap["verdict"] == "ok"
    low = snap["llc"] < FLOOR
    for k, rows in snap.groupby("k"):
        c = colours[k]
        fill = ok[rows.index]
        top.scatter(rows["step"], rows["loss"], s=16, color=c, zorder=3, edgecolors="none")
        for solid in (True, False):
            part = rows[(fill == solid) & ~low[rows.index]]
            face = c if solid else "white"
            bottom.errorbar(part["step"], part["llc"], yerr=part["llc_se"], fmt="o", ms=4,
                            mfc=face, mec=c, ecolor=c, elinewidth=0.8, capsize=0, zorder=3)
        under = rows[low[rows.index]]
        bottom.scatter(under["step"], np.full(len(under), FLOOR), marker="v", s=22, color=c,
                       zorder=3)
    right = snap["step"].max() * 1.05
    for _, row in kg.iterrows():
        c = colours[int(row["k"])]
        for ax, y, text in ((top, row["loss"], f"{int(row['k'])}-gon {row['loss']:.3f}"),
                            (bottom, row["llc"], f"{int(row['k'])}-gon {row['llc']:.1f}")):
            ax.axhline(y, color=c, ls="--", lw=1.0, zorder=2)
            ax.annotate(text, (1.0, y), xycoords=("axes fraction", "data"), xytext=(4, 0),
                        textcoords="offset points", va="center", fontsize=7.5, color=c)
    top.set(yscale="log", ylabel="training-set loss")
    bottom.set(xscale="log", xlabel="training step", xlim=(snap["step"].min() * 0.8, right),
               ylabel=r"LLC $\hat\lambda$ ($\pm$ s.e.)")
    ylo = FLOOR - 0.4 if low.any() else min(0.0, snap["llc"].min() - 0.5)
    bottom.set_ylim(ylo, max(snap["llc"].max(), kg["llc"].max()) + 1.0)
    bottom.axhline(0, color="0.5", lw=0.6)
    for ax in (top, bottom):
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25, which="major")
    handles = [Line2D([], [], marker="o", ls="", color=colours[k], label=f"k = {k}")
               for k in sorted(snap["k"].unique())]
    handles += [Line2D([], [], marker="o", ls="", mfc="white", mec="0.3",
                       label="estimate flagged (llc.verdict)"),
                Line2D([], [], color="0.4", ls="--", label="regular k-gon (critical point)")]
    if low.any():
        handles.append(Line2D([], [], marker="v", ls="", color="0.3", label=f"estimate below {FLOOR:g}"))
    if marks:
        handles.append(Line2D([], [], color=FLAG, label="trapped or local-minimum model"))
    bottom.legend(handles=handles, fontsize=7.5, loc="upper left", ncol=2, framealpha=0.9)
    s = snap.iloc[0]
    fig.suptitle(f"{title(res)}: loss and LLC over training, {snap['model'].nunique()} models; "
                 f"colour: k, the features with $||W_i|| \\geq 0.5$\n"
                 f"SGLD n$\\beta$ = {s['n_beta']:.1f} (n = {int(s['n'])}), $\\gamma$ = {s['gamma']:g}, "
                 f"$\\epsilon$ = {s['eps']:g}, {int(s['chains'])} chains x {int(s['draws'])} draws; "
                 f"one line per model",
                 fontsize=10)
    return fig


# models drawn by llc_traces: one panel each, the first ones of the table
TRACE_PANELS = 6


def llc_traces(res):
    """The SGLD chains behind each estimate: per model (up to TRACE_PANELS), every chain's
    n beta (L_batch(w_t) - L_batch(w*)) against the SGLD step, smoothed over 50 steps, the
    burn-in shaded, and the estimate with its standard error as a band. A chain that is not
    finite, drifted from w* or averaged below 0 is drawn in red; the verdict heads the panel."""
    per_model, steps = tables.get(res, "llc"), tables.get(res, "llc_traces")
    shown = per_model.head(TRACE_PANELS)
    cols = min(3, len(shown))
    rows = int(np.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.2 * rows), dpi=DPI, squeeze=False)
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    for ax, (_, row) in zip(axes.ravel(), shown.iterrows()):
        mine = steps[steps["model"] == row["model"]]
        burn = int(row["burn_in"])
        ax.axvspan(0, burn, color="0.92", zorder=0)
        for _, chain in mine.groupby("chain"):
            gap = row["n_beta"] * (chain["loss"].to_numpy() - chain["base"].to_numpy())
            smooth = np.convolve(gap, np.ones(50) / 50, mode="valid")
            after = gap[burn:]
            bad = (not np.all(np.isfinite(gap))) or np.nanmean(after) < 0
            ax.plot(np.arange(len(smooth)) + 25, smooth, lw=0.8,
                    color=FLAG if bad else "C0", alpha=0.8)
        est, se = row["llc"], row["llc_se"]
        ax.axhspan(est - se, est + se, color="black", alpha=0.15)
        ax.axhline(est, color="black", lw=0.9)
        verdict = row["verdict"]
        ax.set_title(f"model {int(row['model'])}: {est:.2f} +- {se:.2f}\n{verdict}", fontsize=8,
                     color="black" if verdict == "ok" else FLAG)
        ax.set(xlabel="SGLD step", ylabel="n beta (L(w_t) - L(w*))")
    fig.suptitle(f"{title(res)}: SGLD chains of the LLC (grey: burn-in; band: estimate +- s.e.; "
                 f"red: a chain below 0 or not finite)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
