"""Section 1 (docs/intro.md): the features of a small model in its 2-D hidden plane."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors

from toysuper.figures.style import DPI, best_models, flags, kind_title, kinds, mark_panel, title


def feature_plane(res):
    """The n feature vectors W_i in the hidden plane (m = 2), one panel per density and kind.

    Colour is the feature's importance; where a cell holds several seeds the lowest-loss model
    is drawn. A trapped or local-minimum model's panel is framed in red (style.mark_panel).
    """
    best = best_models(res.models, ["kind", "density"]).sort_values(["kind", "density"],
                                                                      ascending=[True, False])
    cols, found = best["density"].nunique(), kinds(best)
    fig, axes = plt.subplots(len(found), cols, figsize=(2.0 * cols + 1.0, 2.4 * len(found) + 0.4),
                             squeeze=False, dpi=DPI, layout="constrained")
    imp_all = res.features["importance"]
    norm = colors.Normalize(imp_all.min(), imp_all.max() if imp_all.max() > imp_all.min() else 1)
    cmap = plt.get_cmap("viridis")
    marks = flags(res)
    for r, kind in enumerate(found):
        rows = best[best["kind"] == kind]
        for c, (_, row) in enumerate(rows.iterrows()):
            ax = axes[r, c]
            W = res.W(int(row["model"]))
            imp = res.features.loc[res.features["model"] == row["model"], "importance"].to_numpy()
            ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.85", lw=0.8))
            for i in np.argsort(imp, kind="stable"):  # most important drawn last, on top
                ax.plot([0, W[0, i]], [0, W[1, i]], color=cmap(norm(imp[i])), lw=2)
                ax.plot(W[0, i], W[1, i], "o", color=cmap(norm(imp[i])), ms=5)
            ax.set(xlim=(-1.35, 1.35), ylim=(-1.35, 1.35), aspect="equal", xticks=[], yticks=[])
            ax.set_title(f"1-S = {row['density']:.3g}\nloss {row['loss']:.2e}", fontsize=9)
            mark_panel(ax, marks.get(int(row["model"])))
        for c in range(len(rows), cols):
            axes[r, c].axis("off")
        axes[r, 0].set_ylabel(kind_title(kind))
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.8,
                 label="importance $I_i$")
    fig.suptitle(f"{title(res)}: features W_i in the hidden plane "
                 f"(n={int(best['n_features'].iloc[0])}, m=2)", fontsize=10)
    return fig
