"""Section 5 (docs/dynamics.md): the loss and every feature's dimensionality over training."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from toysuper import metrics
from toysuper.figures.style import (
    DPI,
    best_models,
    flags,
    fraction_lines,
    log_ticks,
    mark_panel,
    one_seed,
    title,
)


def _few_log_ticks(axis, count: int = 4):
    """At most `count` labelled decades on a log axis, unlabelled minor ticks between."""
    axis.set_major_locator(ticker.LogLocator(base=10, numticks=count))
    axis.set_major_formatter(ticker.LogFormatterSciNotation())
    axis.set_minor_locator(ticker.LogLocator(base=10, subs=np.arange(2, 10), numticks=12))
    axis.set_minor_formatter(ticker.NullFormatter())


def dynamics(res):
    """Per density: the training loss, and each feature's D_i at every snapshot (log steps).

    Needs train.snapshots > 0 (declared in figures/__init__.py). The lowest-loss seed of each
    density is drawn; grey lines mark the fractions of regular structures, named at the right.
    A trapped or local-minimum model's loss panel is framed in red, the flag under its title.
    """
    best = best_models(res.models, ["kind", "density"]).sort_values("density", ascending=False)
    cols = len(best)
    fig, axes = plt.subplots(2, cols, figsize=(3.6 * cols + 1.0, 6.0), squeeze=False, dpi=DPI,
                             sharex="col", height_ratios=[1, 1.6], layout="constrained")
    cmap = plt.get_cmap("turbo")
    marks = flags(res)
    for c, (_, row) in enumerate(best.iterrows()):
        model = int(row["model"])
        steps, Ws = res.snapshot_W(model)
        D = np.array([metrics.dimensionality(np.asarray(W, np.float64)) for W in Ws])  # [k, n]
        h = res.history[res.history["model"] == model]
        top, bottom = axes[0, c], axes[1, c]
        top.plot(h["step"], h["loss"], color="k", lw=1)
        top.set(yscale="log", title=f"1-S = {row['density']:.3g}, n={int(row['n_features'])}, "
                                    f"m={int(row['n_hidden'])}")
        top.title.set_fontsize(9)
        mark_panel(top, marks.get(model), where="title")  # the curve starts in the top-left corner
        log_ticks(top)
        for i in range(D.shape[1]):
            bottom.plot(steps, D[:, i], "-", marker=".", ms=3, lw=0.8, alpha=0.8,
                        color=cmap(i / max(D.shape[1] - 1, 1)))
        bottom.set(xscale="log", ylim=(-0.03, 1.05), xlabel="step")
        _few_log_ticks(bottom.xaxis, 4)
        bottom.set_yticks([0, 0.25, 0.5, 0.75, 1])
        fraction_lines(bottom, label=c == cols - 1, gap=0.04)
        for ax in (top, bottom):
            ax.tick_params(labelsize=7)
        if c == 0:
            top.set_ylabel("training loss", fontsize=9)
            bottom.set_ylabel("feature dimensionality $D_i$ (one line per feature)", fontsize=9)
    which = "" if one_seed(res.models, ["kind", "density"]) else " (lowest-loss seed of each density)"
    fig.suptitle(f"{title(res)}: learning dynamics{which}\ndimensionalities jump between the "
                 f"fractions of regular structures (grey lines, named at the right)", fontsize=10)
    return fig
