"""Section 3 (docs/phase_change.md): the extra feature's phase over its density and importance,
the theory's beside the trained models'."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import gridspec, patheffects

from toysuper import phase, tables, theory
from toysuper.figures.style import DPI, FLAG, flags, title

# Phase colours: hue from blue (alone in its direction) to red (superposition >= 1), faded
# toward white as the extra feature's norm falls to 0 (not represented).
BLUE, RED, WHITE = np.array([0.16, 0.35, 0.85]), np.array([0.85, 0.12, 0.12]), np.ones(3)
# (norm, superposition) that stands for each phase of the theory
THEORY_COLOUR = {"not represented": (0.0, 0.0), "dedicated": (1.0, 0.0), "superposition": (1.0, 1.0)}


def phase_colour(norm, superposition) -> np.ndarray:
    """RGB [..., 3] for the extra feature's norm and superposition (both clipped to [0, 1])."""
    s = np.clip(np.asarray(superposition, float), 0, 1)[..., None]
    a = np.clip(np.asarray(norm, float), 0, 1)[..., None]
    return WHITE + a * ((1 - s) * BLUE + s * RED - WHITE)


def _log_edges(values):
    """Cell edges for pcolormesh on a log axis: geometric midpoints, extended at both ends."""
    v = np.log(np.asarray(values, float))
    mid = (v[1:] + v[:-1]) / 2
    step = (v[1] - v[0]) if len(v) > 1 else 0.1
    return np.exp(np.concatenate([[v[0] - step / 2], mid, [v[-1] + step / 2]]))


def phase_diagram(res):
    """The extra feature's phase over (relative importance r, density p): theory and trained.

    Reads the derived table "phase" (toysuper/phase.py): one row per cell, the lowest-loss seed
    kept. Cells whose trained phase differs from the theory's are ringed; cells whose kept model
    is trapped or at a local minimum get a red cross.
    """
    t = tables.get(res, "phase")
    ps, rs = np.sort(t["p"].unique()), np.sort(t["r"].unique())
    full = pd.MultiIndex.from_product([ps, rs], names=["p", "r"])
    grid = t.set_index(["p", "r"]).reindex(full)  # a missing cell stays blank
    shape = (len(ps), len(rs))
    norm_th, sup_th = np.array([THEORY_COLOUR.get(ph, (0, 0)) for ph in grid["theory_phase"]]).T
    rgb = {"theory": phase_colour(norm_th, sup_th).reshape(*shape, 3),
           "trained": phase_colour(grid["extra_norm"].fillna(0).to_numpy(),
                                   grid["extra_superposition"].fillna(0).to_numpy()).reshape(*shape, 3)}
    n = int(res.models["n_features"].iloc[0])
    xe, ye = _log_edges(rs), _log_edges(ps)
    wrong = t[~t["agree"]]
    flagged = t[t["model"].isin(list(flags(res)))]
    fig = plt.figure(figsize=(10.2, 4.7), dpi=DPI)
    # the trained panel's title grows a line for each kind of mark drawn on it
    top = 0.81 - 0.035 * (len(wrong) > 0) * (len(flagged) > 0)
    gs = gridspec.GridSpec(1, 3, figure=fig, width_ratios=[1, 1, 0.32], wspace=0.28,
                           left=0.07, right=0.97, top=top, bottom=0.17)
    r_line = np.geomspace(xe[0], xe[-1], 400)
    edge = theory.superposition_edge(n, r_line)
    score = phase.agreement(t)
    seeds = int(t["seeds"].max())
    trained = f"trained: best of {seeds} seeds" if seeds > 1 else "trained (one seed per cell)"
    for k, (name, head) in enumerate([("theory", "theory (argmin of the candidate losses)"),
                                       ("trained", trained)]):
        ax = fig.add_subplot(gs[k])
        ax.pcolormesh(xe, ye, rgb[name], shading="flat")
        ax.plot(r_line, np.where(edge > 0, edge, np.nan), color="k", lw=0.8, ls="--")
        # r = 1 splits dropped from dedicated above the edge (for n=3 also below it)
        ax.plot([1, 1], [max(float(theory.superposition_edge(n, 1.0)), ye[0]), ye[-1]], color="k",
                lw=0.8, ls="--")
        if name == "trained" and len(wrong):  # ringed, and counted in the title: no legend to hide cells
            ax.plot(wrong["r"], wrong["p"], "o", ms=2.2, mfc="none", mec="k", mew=0.6)
            head += f"\n(ringed: {len(wrong)} cells unlike the theory)"
        if name == "trained" and len(flagged):  # a cross, not a ring: both may mark one cell
            # outlined in white: the superposition phase is red too
            ax.plot(flagged["r"], flagged["p"], "x", ms=3.4, mec=FLAG, mew=1.0, path_effects=[
                patheffects.withStroke(linewidth=2.2, foreground="w")])
            head += f"\n(red x: {len(flagged)} kept models trapped or at a local minimum)"
        ax.set(xscale="log", yscale="log", xlim=(xe[0], xe[-1]), ylim=(ye[0], ye[-1]),
               xlabel="relative importance r of the extra feature", title=head)
        ax.set_xticks([0.1, 1, 10], ["0.1x", "1x", "10x"])
        ax.set_ylabel("feature density p = 1-S" if k == 0 else "")
        ax.title.set_fontsize(9)
    phase_key(fig.add_subplot(gs[2]))
    cells = len(t)
    fig.suptitle(f"{title(res)}: phase of the extra feature, n={n}, m={n - 1}\n"
                 f"agreement with theory: {score:.1%} of {cells} cells "
                 f"({cells - len(wrong)} / {cells})", fontsize=11)
    return fig


def phase_key(ax):
    """The colour key: norm of the extra feature up, its superposition across."""
    norm, sup = np.meshgrid(np.linspace(0, 1, 41), np.linspace(0, 1, 41), indexing="ij")
    ax.imshow(phase_colour(norm, sup), origin="lower", extent=(0, 1, 0, 1), aspect="auto")
    ax.set_xlabel("superposition\n$\\sum_{j\\neq i}(\\hat W_i\\cdot W_j)^2$", fontsize=8)
    ax.set_ylabel("norm $||W_i||$ of the extra feature", fontsize=8)
    ax.set_xticks([0, 0.5, 1], ["0", "0.5", "\u22651"])
    ax.set_yticks([0, 0.5, 1], ["0", "0.5", "\u22651"])
    ax.tick_params(labelsize=7)
    for text, (x, y) in {"not represented": (0.5, 0.2), "dedicated": (0.22, 0.8),
                         "superposition": (0.78, 0.8)}.items():
        ax.text(x, y, text, ha="center", va="center", fontsize=7, rotation=90 if x != 0.5 else 0,
                color="k" if text == "not represented" else "w")
    ax.set_title("colour key", fontsize=9)
