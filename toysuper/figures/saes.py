"""Dictionary learning (docs/saes.md): SAEs against the true features they should recover.

Every figure reads saes.parquet (and latents, absorption) of an SAE sweep (families/saes.py) and
the literature's scores in the derived tables sae_metrics and chanin_absorption
(sae_metrics.py). A kind's "sparsity" is its own knob: k for topk and batchtopk, the L1
coefficient for relu_l1, the L0 coefficient for jumprelu. SAEs that lose to the trivial solution
are ringed in red. Kinds are compared only where their budget matches the true L0 (measured L0
within sae_scores.BUDGET of it); cells outside are drawn dashed and pale, or named so.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from toysuper import sae_scores, saes, tables
from toysuper.figures.style import DPI, FLAG, mark_panel, title

# each kind's knob, colour and place in the figures are its own (saes.KIND, read live)
ANGLE = 8.0  # degrees: a true feature is found when its matched latent is this close
# the literature's scores (sae_metrics) and the lab's decoder score under its honest name
SCORES = (("mmcs_signed", "MMCS (Sharkey et al.)"), ("mcc_signed", "MCC of codes, all features"),
          ("mcc", "decoder |cos|, matched pairs only"))


def knob(df):
    """Each SAE's sparsity knob value (its kind's own setting)."""
    return np.array([row[saes.KIND[row["kind"]].knob[0]] for _, row in df.iterrows()], float)


def _kinds(df):
    return [k for k in saes.KIND if k in set(df["kind"])]


def _ring_losing(ax, x, y, beats):
    bad = ~np.asarray(beats, bool)
    if bad.any():
        ax.scatter(np.asarray(x)[bad], np.asarray(y)[bad], s=90, facecolors="none",
                   edgecolors=FLAG, linewidths=1.5, zorder=5)


def scored(res):
    """The trained SAEs of `res` with their knob, d_sae / n, L0 / true L0 and the literature's
    scores (sae_metrics) beside the stored ones."""
    df = res.saes[~res.saes["diverged"]].copy()
    df["knob"] = knob(df)
    df["ratio"] = df["width"] / df["source_n_features"]
    df["l0_ratio"] = df["l0"] / df["true_l0"]
    return df.merge(tables.get(res, "sae_metrics"), on="sae", how="left")


def _budget(cell) -> bool:
    """Whether a cell's (mean) L0 matches the true L0 (sae_scores.BUDGET)."""
    return bool(sae_scores.budget_matched(cell["l0"].mean(), cell["true_l0"].mean()))


def sae_dictionary(res):
    """MMCS, MCC of codes, the decoder score over matched pairs, dead latents and L0 / true L0
    against d_sae / n, a column per kind, a line per value of its sparsity knob (mean over
    seeds, seeds as dots); dashed and pale: a knob whose L0 is not within BUDGET of the true L0;
    grey dotted: what random decoders score over matched pairs."""
    df = scored(res)
    found = _kinds(df)
    rows = SCORES + (("dead_share", "dead latents (share)"), ("l0_ratio", "L0 / true L0"))
    fig, axes = plt.subplots(len(rows), len(found), figsize=(3.2 * len(found) + 0.6, 2.3 * len(rows) + 0.8),
                             dpi=DPI, squeeze=False, sharex=True, layout="constrained")
    m, n = int(df["source_n_hidden"].iloc[0]), int(df["source_n_features"].iloc[0])
    for c, kind in enumerate(found):
        mine = df[df["kind"] == kind]
        knobs = sorted(mine["knob"].unique())
        cmap = plt.get_cmap("viridis")
        for j, v in enumerate(knobs):
            cell = mine[mine["knob"] == v]
            mean = cell.groupby("ratio")[[r for r, _ in rows]].mean()
            colour = cmap(j / max(len(knobs) - 1, 1))
            fair = _budget(cell)
            for r, (col, _) in enumerate(rows):
                ax = axes[r, c]
                ax.plot(mean.index, mean[col], "-" if fair else "--", color=colour,
                        lw=1.6 if fair else 1.0, alpha=1.0 if fair else 0.45,
                        label=f"{saes.KIND[kind].knob[1]} = {v:g}"
                        + ("" if fair else " (L0 off budget)"))
                ax.plot(cell["ratio"], cell[col], ".", color=colour, ms=4, alpha=0.6 if fair else 0.25)
                _ring_losing(ax, cell["ratio"], cell[col], cell["beats_trivial"])
        ratios = sorted(mine["ratio"].unique())
        axes[2, c].plot(ratios, [sae_scores.random_mcc(m, n, int(r * n), draws=20) for r in ratios],
                        color="0.6", ls=":", lw=1.2, label="random decoder")
        axes[0, c].set_title(kind, fontsize=11)
        axes[0, c].legend(fontsize=6.5, loc="lower right")
        axes[-1, c].axhline(1, color="0.6", lw=0.8, ls=":")
        axes[-1, c].set_xscale("log", base=2)
        axes[-1, c].set_xlabel("latents per true feature, d_sae / n")
    for r, (_, label) in enumerate(rows):
        axes[r, 0].set_ylabel(label, fontsize=8.5)
    fig.suptitle(f"{title(res)}: {n} true features in {m} dimensions, true L0 "
                 f"{df['true_l0'].mean():.2g}; dots are seeds; dashed: L0 not within "
                 f"{sae_scores.BUDGET:g}x of the true L0 (not a fair comparison)", fontsize=10)
    return fig


def sae_matched(res):
    """The kinds compared where their budget matches the true L0 (measured L0 within BUDGET of
    it): MMCS and MCC of codes against d_sae / n, a line per (kind, knob) that qualifies (mean
    over seeds, dots are seeds). Cells off budget are left out, not drawn."""
    df = scored(res)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), dpi=DPI, squeeze=False, sharex=True,
                             layout="constrained")
    styles = ["-", "--", "-.", ":"]
    left_out = []
    for kind in _kinds(df):
        mine = df[df["kind"] == kind]
        fair = [v for v in sorted(mine["knob"].unique()) if _budget(mine[mine["knob"] == v])]
        left_out += [f"{kind} {v:g}" for v in sorted(mine["knob"].unique()) if v not in fair]
        for j, v in enumerate(fair):
            cell = mine[mine["knob"] == v]
            mean = cell.groupby("ratio")[["mmcs_signed", "mcc_signed", "l0_ratio"]].mean()
            for ax, col in zip(axes[0], ("mmcs_signed", "mcc_signed")):
                ax.plot(mean.index, mean[col], styles[j % len(styles)],
                        color=saes.KIND[kind].colour, lw=1.6,
                        label=f"{kind} {saes.KIND[kind].knob[1].split(' (')[0]} = {v:g} "
                              f"(L0 {mean['l0_ratio'].mean():.2g}x true)")
                ax.plot(cell["ratio"], cell[col], ".", color=saes.KIND[kind].colour, ms=4, alpha=0.5)
                _ring_losing(ax, cell["ratio"], cell[col], cell["beats_trivial"])
    for ax, (_, label) in zip(axes[0], SCORES):
        ax.set(xscale="log", ylabel=label, xlabel="latents per true feature, d_sae / n", ylim=(None, 1.02))
        ax.set_xscale("log", base=2)
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{title(res)}: kinds at a budget within {sae_scores.BUDGET:g}x of the true L0 "
                 f"{df['true_l0'].mean():.2g}; left out: {', '.join(left_out) or 'none'}\n"
                 f"TopK and BatchTopK here train without the AuxK dead-latent loss of Gao et al. 2024",
                 fontsize=9)
    return fig


def sae_angles(res):
    """The 2-D activation plane: true feature directions (grey) and every seed's decoder
    directions, a panel per SAE setting (columns) and start (rows); each title counts the seeds
    whose every true feature has a matched latent within ANGLE degrees."""
    df = res.saes[~res.saes["diverged"]].copy()
    df["knob"] = knob(df)
    by = ["kind", "knob", "resample_every"]
    cells = df.drop_duplicates(by).sort_values(
        by, key=lambda s: s.map(list(saes.KIND).index) if s.name == "kind" else s)
    starts = [s for s in ("random", "features") if s in set(df["init"])]
    size = (1.9 * len(cells) + 0.4, 2.5 * len(starts) + 0.8)
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
            ratio = mine["l0"].mean() / mine["true_l0"].mean()
            budget = "" if _budget(mine) else ", off budget"
            knob_name = saes.KIND[cell["kind"]].knob[1].split(" ")[0]
            ax.set_title(f"{cell['kind']} {knob_name}={cell['knob']:g}"
                         f"{again}\n{ok}/{len(mine)} within {ANGLE:g}°\nL0 {ratio:.2g}x true{budget}",
                         fontsize=7, color="0.45" if budget else "black")
            losing = int((~mine["beats_trivial"].astype(bool)).sum())
            mark_panel(ax, f"{losing} lose to trivial" if losing else None)
            if c == 0:
                ax.set_ylabel(f"start: {start}", fontsize=9)
    fig.suptitle(f"{title(res)}: decoder directions (blue: all {int(df['source_n_features'].iloc[0])} "
                 f"features within {ANGLE:g}°, red: not) over the true features (grey); true L0 "
                 f"{df['true_l0'].mean():.2g}, off budget: L0 not within {sae_scores.BUDGET:g}x of it",
                 fontsize=10)
    return fig


def sae_absorption(res):
    """Absorption against each kind's sparsity knob (mean over the hierarchy's pairs; seeds as
    dots): the lab's rate (the parent's latent silent when a child fires, beyond its silence
    when the parent fires alone; absorption.parquet) beside Chanin et al.'s (the parent's latent
    silent while the child's latent, which took on the parent's direction, fires;
    chanin_absorption.parquet); below, MMCS and the MCC of codes (sae_metrics)."""
    df = scored(res)
    pairs = res.derived["absorption"].groupby("sae")[["absorption", "silent_alone"]].mean()
    chanin = tables.get(res, "chanin_absorption").groupby("sae")[["chanin_absorption"]].mean()
    df = df.join(pairs, on="sae").join(chanin, on="sae")
    found = _kinds(df)
    fig, axes = plt.subplots(2, len(found), figsize=(3.6 * len(found) + 0.4, 5.8), dpi=DPI,
                             squeeze=False, layout="constrained")
    for c, kind in enumerate(found):
        mine = df[df["kind"] == kind].sort_values("knob")
        cols = ["absorption", "silent_alone", "chanin_absorption", "mmcs_signed", "mcc_signed"]
        mean = mine.groupby("knob")[cols].mean()
        ax = axes[0, c]
        ax.plot(mean.index, mean["absorption"], "o-", color="#d62728", label="absorption (lab's)")
        ax.plot(mean.index, mean["chanin_absorption"], "^-", color="#ff7f0e",
                label="absorption (Chanin et al.)")
        ax.plot(mean.index, mean["silent_alone"], "s--", color="0.5", ms=4,
                label="parent latent silent, parent alone")
        ax.plot(mine["knob"], mine["absorption"], ".", color="#d62728", alpha=0.4)
        ax.plot(mine["knob"], mine["chanin_absorption"], ".", color="#ff7f0e", alpha=0.4)
        ax.set(ylim=(-0.03, 1.03), title=kind)
        ax.legend(fontsize=7)
        for col, colour, label in (("mmcs_signed", "#1f77b4", "MMCS"),
                                   ("mcc_signed", "#2ca02c", "MCC of codes")):
            axes[1, c].plot(mean.index, mean[col], "o-", color=colour, label=label)
            axes[1, c].plot(mine["knob"], mine[col], ".", color=colour, alpha=0.4)
            _ring_losing(axes[1, c], mine["knob"], mine[col], mine["beats_trivial"])
        axes[1, c].legend(fontsize=7)
        axes[1, c].set_xlabel(saes.KIND[kind].knob[1])
        if not saes.KIND[kind].uses_k:  # penalty coefficients span decades
            for ax in axes[:, c]:
                ax.set_xscale("log")
    axes[0, 0].set_ylabel("absorption rate")
    axes[1, 0].set_ylabel("score over all features")
    fig.suptitle(f"{title(res)}: feature absorption in a parent-child hierarchy (true L0 "
                 f"{df['true_l0'].mean():.2g})", fontsize=11)
    return fig
