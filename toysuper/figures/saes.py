"""Dictionary learning (docs/saes.md): SAEs against the true features they should recover.

Every figure reads saes.parquet (and latents, absorption) of an SAE sweep (sae_sweep.py). A
kind's "sparsity" is its own knob: k for topk and batchtopk, the L1 coefficient for relu_l1,
the L0 coefficient for jumprelu. SAEs that lose to the trivial solution are ringed in red.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from toysuper import sae_scores
from toysuper.figures.style import DPI, FLAG, mark_panel, title

KIND_ORDER = ("relu_l1", "jumprelu", "topk", "batchtopk", "matryoshka")
KNOB = {"relu_l1": ("l1_coefficient", "L1 coefficient"), "jumprelu": ("l0_coefficient", "L0 coefficient"),
        "topk": ("k", "k"), "batchtopk": ("k", "k (mean per example)"), "matryoshka": ("k", "k")}
ANGLE = 8.0  # degrees: a true feature is found when its matched latent is this close


def knob(df):
    """Each SAE's sparsity knob value (its kind's own setting)."""
    return np.array([row[KNOB[row["kind"]][0]] for _, row in df.iterrows()], float)


def _kinds(df):
    return [k for k in KIND_ORDER if k in set(df["kind"])]


def _ring_losing(ax, x, y, beats):
    bad = ~np.asarray(beats, bool)
    if bad.any():
        ax.scatter(np.asarray(x)[bad], np.asarray(y)[bad], s=90, facecolors="none",
                   edgecolors=FLAG, linewidths=1.5, zorder=5)


def sae_dictionary(res):
    """MCC, dead latents and L0 / true L0 against d_sae / n, a column per kind, a line per
    value of its sparsity knob (mean over seeds, seeds as dots); grey: what random decoders
    score."""
    df = res.saes[~res.saes["diverged"]].copy()
    df["knob"] = knob(df)
    df["ratio"] = df["width"] / df["source_n_features"]
    found = _kinds(df)
    rows = (("mcc", "MCC"), ("dead_share", "dead latents (share)"), ("l0_ratio", "L0 / true L0"))
    df["l0_ratio"] = df["l0"] / df["true_l0"]
    fig, axes = plt.subplots(len(rows), len(found), figsize=(3.2 * len(found) + 0.6, 7.6), dpi=DPI,
                             squeeze=False, sharex=True, layout="constrained")
    m, n = int(df["source_n_hidden"].iloc[0]), int(df["source_n_features"].iloc[0])
    for c, kind in enumerate(found):
        mine = df[df["kind"] == kind]
        knobs = sorted(mine["knob"].unique())
        cmap = plt.get_cmap("viridis")
        for j, v in enumerate(knobs):
            cell = mine[mine["knob"] == v]
            mean = cell.groupby("ratio")[[r for r, _ in rows]].mean()
            colour = cmap(j / max(len(knobs) - 1, 1))
            for r, (col, _) in enumerate(rows):
                ax = axes[r, c]
                ax.plot(mean.index, mean[col], "-", color=colour, lw=1.6,
                        label=f"{KNOB[kind][1]} = {v:g}")
                ax.plot(cell["ratio"], cell[col], ".", color=colour, ms=4, alpha=0.6)
                _ring_losing(ax, cell["ratio"], cell[col], cell["beats_trivial"])
        ratios = sorted(mine["ratio"].unique())
        axes[0, c].plot(ratios, [sae_scores.random_mcc(m, n, int(r * n), draws=20) for r in ratios],
                        color="0.6", ls=":", lw=1.2, label="random decoder")
        axes[0, c].set_title(kind, fontsize=11)
        axes[0, c].legend(fontsize=7, loc="lower right")
        axes[2, c].axhline(1, color="0.6", lw=0.8, ls=":")
        axes[-1, c].set_xscale("log", base=2)
        axes[-1, c].set_xlabel("latents per true feature, d_sae / n")
    for r, (_, label) in enumerate(rows):
        axes[r, 0].set_ylabel(label)
    fig.suptitle(f"{title(res)}: {n} true features in {m} dimensions, true L0 "
                 f"{df['true_l0'].mean():.2g}; dots are seeds", fontsize=11)
    return fig


def sae_angles(res):
    """The 2-D activation plane: true feature directions (grey) and every seed's decoder
    directions, a panel per SAE setting (columns) and start (rows); each title counts the seeds
    whose every true feature has a matched latent within ANGLE degrees."""
    df = res.saes[~res.saes["diverged"]].copy()
    df["knob"] = knob(df)
    by = ["kind", "knob", "resample_every"]
    cells = df.drop_duplicates(by).sort_values(
        by, key=lambda s: s.map(KIND_ORDER.index) if s.name == "kind" else s)
    starts = [s for s in ("random", "features") if s in set(df["init"])]
    size = (1.9 * len(cells) + 0.4, 2.3 * len(starts) + 0.8)
    fig, axes = plt.subplots(len(starts), len(cells), figsize=size, dpi=DPI, squeeze=False,
                             layout="constrained")
    for r, start in enumerate(starts):
        for c, (_, cell) in enumerate(cells.iterrows()):
            ax = axes[r, c]
            mine = df[(df[by] == cell[by]).all(axis=1) & (df["init"] == start)]
            F = res.params(int(mine["sae"].iloc[0]))["features"]
            for i in range(F.shape[1]):
                ax.plot([0, F[0, i]], [0, F[1, i]], color="0.75", lw=4, solid_capstyle="round")
            for _, row in mine.iterrows():
                D = res.params(int(row["sae"]))["W_dec"]
                D = D / np.maximum(np.linalg.norm(D, axis=0, keepdims=True), 1e-12)
                good = row["worst_angle"] <= ANGLE
                ax.plot(np.stack([np.zeros(D.shape[1]), D[0]]), np.stack([np.zeros(D.shape[1]), D[1]]),
                        color="#1f77b4" if good else "#d62728", lw=0.7, alpha=0.5)
            ok = int((mine["worst_angle"] <= ANGLE).sum())
            ax.set(xlim=(-1.15, 1.15), ylim=(-1.15, 1.15), aspect="equal", xticks=[], yticks=[])
            again = f", resample {cell['resample_every']}" if cell["resample_every"] else ""
            ax.set_title(f"{cell['kind']} {KNOB[cell['kind']][1].split(' ')[0]}={cell['knob']:g}"
                         f"{again}\n{ok}/{len(mine)} within {ANGLE:g}°", fontsize=7.5)
            losing = int((~mine["beats_trivial"].astype(bool)).sum())
            mark_panel(ax, f"{losing} lose to trivial" if losing else None)
            if c == 0:
                ax.set_ylabel(f"start: {start}", fontsize=9)
    fig.suptitle(f"{title(res)}: decoder directions (blue: all {int(df['source_n_features'].iloc[0])} "
                 f"features within {ANGLE:g}°, red: not) over the true features (grey)", fontsize=10)
    return fig


def sae_absorption(res):
    """Absorption against each kind's sparsity knob: the share of child-active examples on
    which the parent's latent is silent, beyond its silence when the parent fires alone (mean
    over the hierarchy's pairs; seeds as dots), beside the SAEs' MCC."""
    df = res.saes[~res.saes["diverged"]].copy()
    df["knob"] = knob(df)
    pairs = res.derived["absorption"].groupby("sae")[["absorption", "silent_alone"]].mean()
    df = df.join(pairs, on="sae")
    found = _kinds(df)
    fig, axes = plt.subplots(2, len(found), figsize=(3.6 * len(found) + 0.4, 5.6), dpi=DPI,
                             squeeze=False, layout="constrained")
    for c, kind in enumerate(found):
        mine = df[df["kind"] == kind].sort_values("knob")
        mean = mine.groupby("knob")[["absorption", "silent_alone", "mcc"]].mean()
        ax = axes[0, c]
        ax.plot(mean.index, mean["absorption"], "o-", color="#d62728", label="absorption")
        ax.plot(mean.index, mean["silent_alone"], "s--", color="0.5", ms=4,
                label="parent latent silent, parent alone")
        ax.plot(mine["knob"], mine["absorption"], ".", color="#d62728", alpha=0.4)
        ax.set(ylim=(-0.03, 1.03), title=kind)
        ax.legend(fontsize=7)
        axes[1, c].plot(mean.index, mean["mcc"], "o-", color="#1f77b4")
        axes[1, c].plot(mine["knob"], mine["mcc"], ".", color="#1f77b4", alpha=0.4)
        _ring_losing(axes[1, c], mine["knob"], mine["mcc"], mine["beats_trivial"])
        axes[1, c].set_xlabel(KNOB[kind][1])
        if kind in ("relu_l1", "jumprelu"):
            for ax in axes[:, c]:
                ax.set_xscale("log")
    axes[0, 0].set_ylabel("absorption rate")
    axes[1, 0].set_ylabel("MCC")
    fig.suptitle(f"{title(res)}: feature absorption in a parent-child hierarchy", fontsize=11)
    return fig
