"""Training loss curves, drawn for an experiment of any section."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib import colors

from toysuper.figures.style import (
    DPI,
    FLAG,
    FLAG_WORDS,
    flags,
    kind_line,
    kind_title,
    kinds,
    log_ticks,
    title,
)


def loss_curves(res):
    """Training loss against step for every model: colour is density, line style model kind.

    The line style of a kind is fixed (models.Spec.line), so it means the same in every
    experiment's figure; a trapped or local-minimum model's curve therefore keeps its style and
    colour and gets a red halo under it instead.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=DPI, layout="constrained")
    # each model's mean feature density: a number, a list or a power law in the settings alike
    dens = res.features.groupby("model")["density"].mean().reindex(res.models["model"])
    # one colour when every model has the same mean density (up to rounding)
    norm = colors.LogNorm(dens.min(), dens.max()) if dens.max() > dens.min() * 1.001 else None
    cmap = plt.get_cmap("viridis")
    by_model = res.models.set_index("model")
    marks = flags(res)
    for model, h in res.history.groupby("model"):
        row = by_model.loc[model]
        if int(model) in marks:
            ax.plot(h["step"], h["loss"], color=FLAG, lw=3.2, alpha=0.35, zorder=1,
                    solid_capstyle="round")
        ax.plot(h["step"], h["loss"], ls=kind_line(row["kind"]), lw=0.9, alpha=0.8,
                color=cmap(norm(dens[model])) if norm else "C0")
    for kind in kinds(res.models):
        ax.plot([], [], ls=kind_line(kind), color="0.3", label=kind_title(kind))
    if any(int(m) in marks for m in res.models["model"]):
        ax.plot([], [], color=FLAG, lw=3.2, alpha=0.35, label=f"red halo: {FLAG_WORDS}")
    where = ("colour: mean density (bar)" if norm else
             f"colour: mean density 1-S = {dens.iloc[0]:.3g}")
    ax.legend(fontsize=8, title=f"line style: model kind\n{where}", title_fontsize=8)
    if norm:
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax,
                     label="mean feature density 1-S")
    ax.set(xscale="log", yscale="log", xlabel="step", ylabel="training loss (mean per interval)",
           title=f"{title(res)}: training loss of {len(res.models)} models")
    log_ticks(ax, 6)
    return fig
