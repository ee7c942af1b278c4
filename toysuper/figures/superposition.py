"""Section 2 (docs/superposition.md): W^T W, the bias and the feature norms across sparsity."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors, gridspec

from toysuper import metrics
from toysuper.figures.style import (
    DPI,
    SUP_CMAP,
    SUP_LABEL,
    best_models,
    flags,
    kind_title,
    kinds,
    mark_panel,
    title,
)


def superposition_grid(res):
    """Per model W^T W with b beside it, and ||W_i|| bars coloured by superposition.

    One row per kind, one column per density (sparser to the right); the lowest-loss seed of
    each cell. A trapped or local-minimum model's panels are framed in red (style.mark_panel).
    """
    best = best_models(res.models, ["kind", "density"])
    found = kinds(best)
    densities = sorted(best["density"].unique(), reverse=True)
    n = int(best["n_features"].max())
    fig = plt.figure(figsize=(2.05 * len(densities) + 1.2, 4.4 * len(found)), dpi=DPI)
    outer = gridspec.GridSpec(len(found), 1, figure=fig, hspace=0.18, left=0.07, right=0.9,
                              top=0.92, bottom=0.04)
    heat = colors.Normalize(-1, 1)
    feats = res.features.set_index("model")
    marks = flags(res)
    for r, kind in enumerate(found):
        cell = gridspec.GridSpecFromSubplotSpec(2, len(densities), subplot_spec=outer[r],
                                                height_ratios=[1, 1], hspace=0.12, wspace=0.25)
        for c, p in enumerate(densities):
            match = best[(best["kind"] == kind) & (best["density"] == p)]
            if match.empty:
                continue
            row = match.iloc[0]
            W = res.W(int(row["model"]))
            f = feats.loc[[row["model"]]]
            pair = gridspec.GridSpecFromSubplotSpec(1, 2, subplot_spec=cell[0, c],
                                                    width_ratios=[n, 1.6], wspace=0.08)
            ax = fig.add_subplot(pair[0])
            ax.imshow(W.T @ W, cmap="RdBu_r", norm=heat, interpolation="nearest")
            ax.set(xticks=[], yticks=[])
            ax.set_title(f"1-S = {p:.3g}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{kind_title(kind)}\nW$^T$W", fontsize=9)
            axb = fig.add_subplot(pair[1])
            axb.imshow(f["bias"].to_numpy()[:, None], cmap="RdBu_r", norm=heat, aspect="auto",
                       interpolation="nearest")
            axb.set(xticks=[0], xticklabels=["b"], yticks=[])
            axb.tick_params(length=0, labelsize=8)
            axn = fig.add_subplot(cell[1, c])
            sup = np.clip(f["superposition"].to_numpy(), 0, 1)
            axn.barh(np.arange(len(f)), f["norm"], color=SUP_CMAP(sup), height=0.8)
            axn.set(ylim=(len(f) - 0.5, -0.5), xlim=(0, max(1.1, f["norm"].max() * 1.05)),
                    yticks=[])
            axn.tick_params(labelsize=7)
            k = int((f["norm"] >= metrics.REPRESENTED).sum())
            axn.text(0.97, 0.03, f"{k} of {len(f)} with\n||W$_i$|| \u2265 {metrics.REPRESENTED}",
                     fontsize=7, ha="right", va="bottom", transform=axn.transAxes)
            if c == 0:
                axn.set_ylabel("||W$_i$|| by feature", fontsize=9)
            # W^T W fills its panel: the flag goes under its title, not over the matrix
            mark_panel(ax, marks.get(int(row["model"])), where="title")
    cax = fig.add_axes([0.92, 0.55, 0.012, 0.3])
    fig.colorbar(plt.cm.ScalarMappable(norm=heat, cmap="RdBu_r"), cax=cax, label="W$^T$W and b")
    cax2 = fig.add_axes([0.92, 0.1, 0.012, 0.3])
    fig.colorbar(plt.cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap=SUP_CMAP), cax=cax2,
                 label=SUP_LABEL)
    fig.suptitle(f"{title(res)}: n={n} features, m={int(best['n_hidden'].max())} "
                 f"hidden dimensions", fontsize=11)
    return fig
