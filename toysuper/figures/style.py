"""What every figure shares: resolution, model-kind order and names, seed handling, colours,
the reference fractions of regular structures, the marks of flagged models, the footnote, and
saving a figure to a file."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors, ticker

from toysuper import family, tables
from toysuper import verdicts as counting
from toysuper.models import MODELS, Spec

DPI = 120
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
    """The model kinds present, in models.MODELS order (kinds not registered, an old result's,
    last by name)."""
    order = list(MODELS)
    found = list(dict.fromkeys(models["kind"]))
    return sorted(found, key=lambda k: (order.index(k) if k in order else len(order), k))


def _spec(kind: str) -> Spec:
    return MODELS.get(kind) or Spec(None)


def kind_title(kind: str) -> str:
    """A model kind's name in figures (models.Spec.title, the kind itself if it has none)."""
    return _spec(kind).title or kind


def kind_line(kind: str) -> str:
    """A model kind's line style, the same in every figure whatever kinds a sweep holds
    (colour means density)."""
    return _spec(kind).line


def kind_marker(kind: str) -> str:
    """A model kind's scatter marker, the same in every figure."""
    return _spec(kind).marker


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


# Flagged models (toysuper/optima.py): a trapped model (its loss above a trivial exact solution)
# or a cell's kept model at a local minimum (a neighbouring cell's solution scores lower on its
# task) is not evidence of the optimum, so every figure that shows one marks it in this red,
# which no other mark uses, and draw() names the counts in a footnote.
FLAG = "#e8000b"
FLAG_WORDS = "trapped or local minimum"  # for legends: "red ring: " + FLAG_WORDS


def flags(res) -> dict[int, str]:
    """{model id: "trapped", "local minimum" or "trapped, local minimum"} for the flagged models.

    From the derived tables "optima" (every model) and "neighbours" (every cell's kept model),
    as stored beside the results or computed now (tables.get).
    """
    verdicts, cells = tables.get(res, "optima"), tables.get(res, "neighbours")
    found: dict[int, list[str]] = {}
    for word, ids in (("trapped", verdicts.loc[verdicts["trapped"], "model"]),
                      ("local minimum", cells.loc[cells["local_minimum"], "model"])):
        for model in ids:
            found.setdefault(int(model), []).append(word)
    return {model: ", ".join(words) for model, words in sorted(found.items())}


def mark_panel(ax, flag: str | None, where: str = "corner"):
    """A red frame round a panel that shows a flagged model, and the flag's words: in its
    top-left corner (on a pale box, so they read over whatever is drawn there), or with
    where="title" under the panel's title, turned red (for a panel filled edge to edge, such as
    a matrix, where a corner would hide data). No flag: no mark."""
    if not flag:
        return
    for spine in ax.spines.values():
        spine.set(visible=True, color=FLAG, linewidth=2)
    if where == "title":
        loc = next((loc for loc in ("center", "left", "right") if ax.get_title(loc)), "center")
        size = {"center": ax.title, "left": ax._left_title, "right": ax._right_title}[loc]
        ax.set_title(f"{ax.get_title(loc)}\n{flag}".strip(), loc=loc, color=FLAG,
                     fontsize=size.get_fontsize())
        return
    ax.text(0.02, 0.98, flag, transform=ax.transAxes, ha="left", va="top", fontsize=6.5,
            color=FLAG, fontweight="bold", zorder=10,
            bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


def ring(ax, x, y, **kw):
    """Red rings round the points (x, y) of flagged models: hollow and wider than a point, so
    the point shows inside with a gap, even a red one."""
    return ax.scatter(x, y, s=130, facecolors="none", edgecolors=FLAG, linewidths=1.3, zorder=6,
                      **kw)


def footnote_text(res) -> tuple[str, bool]:
    """(the footnote's words, whether a kept model is flagged): trapped models counted over
    every model of `res` (every seed) and over the kept ones, local minima over every sweep
    cell's kept model. Red only when a kept model, the one figures show, is flagged: a trapped
    seed that lost to a better one of its cell is the search working, so it is counted in grey.

    A clean result says so too: silence could not be told from a figure drawn without the check.
    Each family words its own (family.footnote): an SAE sweep's counts the SAEs that lose to
    their trivial solution instead.
    """
    fam = family.of(res.config)
    return fam.footnote(res) if fam.footnote else ("", False)


def toy_footnote_text(res) -> tuple[str, bool]:
    """footnote_text of a toy-model sweep."""
    c = counting.toys(tables.get(res, "optima"), tables.get(res, "neighbours"))
    where = "optima.parquet, neighbours.parquet"
    if not c.compared:
        cell_words = "no sweep cell has a neighbouring cell to compare with"
    elif c.local:
        cell_words = f"{c.local} of {c.kept} sweep cells' kept models at a local minimum"
    else:
        cell_words = f"none of {c.kept} sweep cells' kept models beaten by a neighbour's solution"
    if c.flagged:
        return (f"marked in red where shown: {c.trapped} of {c.total} models trapped (loss "
                f"above a trivial baseline, or diverged{counting.diverged_words(c)}), "
                f"{c.kept_trapped} of them kept; {cell_words}. See {where}"), True
    if c.trapped:
        return (f"checked: all {c.kept} kept models beat their trivial baselines ({c.trapped} "
                f"of {c.total} runs, none kept, did not, or diverged{counting.diverged_words(c)}); "
                f"{cell_words} ({where})"), False
    return (f"checked: all {c.total} models beat their trivial baselines; {cell_words} "
            f"({where})"), False


def sae_footnote_text(saes) -> tuple[str, bool]:
    """(words, flagged) for an SAE sweep: SAEs whose loss is not below the trivial solution's
    (the decoder bias alone at the mean activation), and diverged ones."""
    c = counting.saes(saes)  # a diverged SAE loses too
    if c.trapped:
        return (f"{c.trapped} of {c.total} SAEs do not beat the trivial solution (decoder bias "
                f"alone, or diverged{counting.diverged_words(c)}); see sae_optima.parquet"), True
    return (f"checked: all {c.total} SAEs beat the trivial solution (decoder bias alone; "
            f"sae_optima.parquet, loss_ratio)"), False


def footnote(fig, text: str, flagged: bool):
    """Write `text` at the foot of `fig`, in room added below what is drawn (the figure grows
    by as many lines as it takes, so nothing is covered): red when `flagged`, else grey."""
    if fig.get_layout_engine() is not None:
        # lay the figure out once at its own size and keep that: a layout engine would place
        # a supxlabel at the new bottom edge, over the footnote
        fig.draw_without_rendering()
        fig.set_layout_engine("none")
    width, height = fig.get_size_inches()
    lines = textwrap.wrap(text, width=max(40, int(width * 15)))  # ~15 characters of 7 pt per inch
    pad = 0.06 + 0.13 * len(lines)  # inches
    fig.set_size_inches(width, height + pad)
    low = pad / (height + pad)  # what was drawn keeps its size in inches, above `low`

    def lift(y):
        return low + y * (1 - low)

    for ax in fig.axes:
        x, y, w, h = ax.get_position(original=True).bounds
        ax.set_position([x, lift(y), w, h * (1 - low)])
    for t in fig.texts:  # suptitle and supxlabel among them
        if t.get_transform() == fig.transFigure:
            t.set_y(lift(t.get_position()[1]))
    fig.text(0.5, 0.03 / (height + pad), "\n".join(lines), ha="center", va="bottom",
             fontsize=7, color=FLAG if flagged else "0.45", linespacing=1.1)


def save(fig, path) -> Path:
    """Write `fig` to `path` (PNG at DPI) through a temporary name, then close it."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        tmp.unlink(missing_ok=True)  # a leftover, perhaps a link out of the folder: never written through
        fig.savefig(tmp, dpi=DPI)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
