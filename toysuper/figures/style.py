"""What every figure shares: resolution, model-kind order and names, seed handling, colours,
the reference fractions of regular structures, and saving a figure to a file."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors, ticker

DPI = 120
KIND_ORDER = ("linear", "relu", "privileged", "abs")
KIND_TITLE = {"linear": "linear model", "relu": "ReLU output model",
              "privileged": "ReLU hidden layer", "abs": "computation model (|x|)"}
# Line style means model kind in every figure, whatever kinds a sweep holds (colour is density).
KIND_STYLE = {"linear": "--", "relu": "-", "privileged": ":", "abs": "-."}
# superposition sum_{j != i} (W^_i . W_j)^2 of a feature, clipped to [0, 1]: black (alone in its
# direction) through purple to yellow (sharing it fully); used wherever a feature is coloured by it
SUP_CMAP = colors.LinearSegmentedColormap.from_list("sup", ["#101010", "#3b2a8a", "#f5c400"])
SUP_LABEL = "superposition $\\sum_{j\\neq i}(\\hat W_i\\cdot W_j)^2$"

# Dimensionalities D_i = d/k of the regular structures (k features spanning d dimensions;
# docs/geometry.md): dedicated 1, tetrahedron 3/4, triangle 2/3, digon 1/2, pentagon 2/5,
# square antiprism 3/8, and 1/3 (three features per dimension).
FRACTIONS = {"1": 1, "3/4": 3 / 4, "2/3": 2 / 3, "1/2": 1 / 2, "2/5": 2 / 5, "3/8": 3 / 8, "1/3": 1 / 3}


def title(res) -> str:
    """The experiment's name, which every figure title starts with."""
    return res.config.get("name", "")


def best_models(models, by):
    """The lowest-loss row of `models` for each combination of the `by` columns (a cell)."""
    idx = models.groupby(list(by), sort=False)["loss"].idxmin()
    return models.loc[idx.sort_values()]


def one_seed(models, by) -> bool:
    """Whether every cell (combination of the `by` columns) holds a single model.

    Figures then drop their "lowest-loss seed" / "every seed" wording: there was nothing to pick.
    """
    return bool((models.groupby(list(by), sort=False).size() <= 1).all())


def kinds(models) -> list[str]:
    """The model kinds present, in KIND_ORDER (unknown kinds last, by name)."""
    found = list(dict.fromkeys(models["kind"]))
    return sorted(found, key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER else 99, k))


def spread(values, gap: float) -> np.ndarray:
    """Positions near `values` (any order) that are at least `gap` apart, for labels.

    Each run of labels that would overlap is spaced `gap` apart around the run's mean, so an
    isolated label stays where its line is.
    """
    v = np.asarray(values, float)
    order = np.argsort(v)
    groups = [[v[i]] for i in order[:1]]
    for i in order[1:]:
        groups.append([v[i]])
        while len(groups) > 1:  # merge backwards while neighbouring runs overlap
            a, b = groups[-2], groups[-1]
            top_a = np.mean(a) + gap * (len(a) - 1) / 2
            low_b = np.mean(b) - gap * (len(b) - 1) / 2
            if low_b - top_a >= gap:
                break
            groups[-2:] = [a + b]
    placed = np.concatenate([np.mean(g) + gap * (np.arange(len(g)) - (len(g) - 1) / 2)
                             for g in groups]) if groups else np.array([])
    out = np.empty_like(v)
    out[order] = placed
    return out


def fraction_lines(ax, label: bool = True, gap: float = 0.045):
    """Grey reference lines at the FRACTIONS; with `label`, their names at the right edge,
    moved apart where lines are close (1/3, 3/8, 2/5), with a tick to the line each names.

    `gap` is the least distance between labels, in axes-height units (about one line of
    7-point text on a 3-inch panel).
    """
    for y in FRACTIONS.values():
        ax.axhline(y, color="0.82", lw=0.7, zorder=0)
    if not label:
        return
    lo, hi = ax.get_ylim()
    ys = (np.array(list(FRACTIONS.values())) - lo) / (hi - lo)
    for name, y, at in zip(FRACTIONS, ys, spread(ys, gap)):
        ax.annotate(name, xy=(1.0, y), xycoords="axes fraction", xytext=(1.06, at),
                    textcoords="axes fraction", fontsize=7, va="center", color="0.3",
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6,
                                "shrinkA": 0, "shrinkB": 0})


def log_ticks(ax, count: int = 4):
    """At most `count` labelled y ticks at round values on a log axis that may span less than
    a decade (a loss curve's usually does), spread over it; the minor ticks unlabelled."""
    lo, hi = ax.get_ylim()
    decades = range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
    span = np.log10(hi / lo)
    steps = (1,) if span >= 2 else (1, 2, 5) if span >= 0.7 else (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8)
    ticks = [c * 10.0 ** k for k in decades for c in steps if lo <= c * 10.0 ** k <= hi]
    if len(ticks) > count:
        ticks = [ticks[i] for i in np.unique(np.linspace(0, len(ticks) - 1, count).round().astype(int))]
    ax.yaxis.set_major_locator(ticker.FixedLocator(ticks))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def save(fig, path) -> Path:
    """Write `fig` to `path` (PNG at DPI) through a temporary name, then close it."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        fig.savefig(tmp, dpi=DPI)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
