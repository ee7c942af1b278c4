"""Section 7 (docs/privileged_basis.md), and the computation model of section 8
(docs/computation.md): each neuron's input weights on every feature."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors, patches
from matplotlib.collections import PolyCollection

from toysuper import neurons, tables
from toysuper.figures.style import (
    DPI,
    SUP_CMAP,
    SUP_LABEL,
    best_models,
    flags,
    kind_title,
    mark_panel,
    one_seed,
    title,
)
from toysuper.models import MODELS

# Up to this many features, each gets its own colour (matplotlib's tab10), so a feature can be
# followed from neuron to neuron (section 7's pairs: every feature on two bars); beyond it the
# computation models' 20-100 features are coloured by their superposition instead.
IDENTITY = 10
FEATURE_CMAP = plt.cm.tab10


def neuron_order(W, importance) -> np.ndarray:
    """Neurons sorted by the importance of their largest-|weight| feature, most important first;
    neurons led by the same feature by that weight's size, largest first."""
    top = np.abs(W).argmax(axis=1)
    return np.lexsort((-np.abs(W[np.arange(len(W)), top]), -np.asarray(importance)[top]))


def per_neuron_scale(W) -> np.ndarray:
    """Each row (hidden unit) of W divided by its largest |weight|, so that is 1 (0 rows stay 0).

    The computation model's W1 has no fixed scale (W1 times c and W2 over c compute the same
    function), so its neurons are compared in these units, as the paper draws them.
    """
    big = np.abs(W).max(axis=1, keepdims=True)
    return W / np.where(big > 0, big, 1)


def _neuron_bars(ax, W, order, stack, fill):
    """Stacked bars of each neuron's input weights, positive up and negative down, one segment
    per feature in `stack` order outward from the axis, coloured `fill[i]`.

    Drawn as one collection (a bar call per feature would make thousands of patches).
    """
    x = np.arange(len(order), dtype=float)
    for sign in (1, -1):
        h = np.clip(sign * W[np.ix_(order, stack)], 0, None)     # [neurons, features], >= 0
        top = np.cumsum(h, axis=1)
        keep = h > 1e-6 * max(float(h.max(initial=0)), 1e-12)   # no invisible slivers
        # segments taller than 2% of the tallest stack get a white outline to tell them apart;
        # thinner ones none (their outlines would whiten the whole bar)
        tall = h > 0.02 * max(float(top[:, -1].max(initial=0)), 1e-12)
        for part, edge in ((keep & ~tall, "none"), (keep & tall, "white")):
            k, i = np.nonzero(part)
            lo, hi = sign * (top - h)[k, i], sign * top[k, i]
            left, right = x[k] - 0.4, x[k] + 0.4
            boxes = np.stack([np.stack([left, lo], -1), np.stack([right, lo], -1),
                              np.stack([right, hi], -1), np.stack([left, hi], -1)], axis=1)
            ax.add_collection(PolyCollection(boxes, facecolors=np.asarray(fill)[stack][i],
                                             edgecolors=edge, linewidths=0.3))
    ax.axhline(0, color="k", lw=0.6)


def neuron_weights(res):
    """Per density, every neuron's input weights on every feature, as stacked bars.

    Reads the derived table "neurons" (toysuper/neurons.py). Both kinds of model order their
    neurons the same way: by the importance of the feature each neuron weights most (most
    important first; features are importance-ranked in res.features), so a neuron dedicated to
    an important feature comes first whether or not it is monosemantic. Each bar segment is one
    feature: with at most IDENTITY features coloured by which feature it is (one colour per
    feature, a legend), with more by that feature's superposition; x labels give each neuron's largest
    feature, in black where the neuron is monosemantic and grey where not. The computation
    model's hidden units are rescaled so each one's largest |W1| is 1 (per_neuron_scale); the
    tied models' W keeps its own scale. The lowest-loss seed of each density is drawn; a trapped
    or local-minimum one's panel is framed in red, the flag under its title (style.mark_panel).
    """
    t = tables.get(res, "neurons")
    has = res.models[res.models["model"].isin(t["model"])]
    best = best_models(has, ["kind", "density"]).sort_values(["kind", "density"],
                                                            ascending=[True, False])
    m, n = int(best["n_hidden"].max()), int(best["n_features"].max())
    wide = m > 12  # many neurons: one row per density, else one column per density
    k = len(best)
    rows, cols = (k, 1) if wide else (1, k)
    size = (min(0.25 * m + 3.0, 14), 1.9 * k + 1.0) if wide else (1.9 * k + 1.6, 3.8)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False, dpi=DPI, layout="constrained")
    feats = res.features.set_index(["model", "feature"])
    lims, scaled = [], False
    identity = n <= IDENTITY
    marks = flags(res)
    for ax, (_, row) in zip(axes.ravel(), best.iterrows()):
        model = int(row["model"])
        W = res.W(model)
        spec = MODELS[res.kind(model)]
        if not spec.tied:  # the computation model's W1: each neuron to its own scale
            W, scaled = per_neuron_scale(W), True
        f = feats.loc[model].reindex(np.arange(W.shape[1]))
        importance = f["importance"].to_numpy()
        order = neuron_order(W, importance)
        stack = np.argsort(-importance, kind="stable")  # most important nearest the axis
        fill = (FEATURE_CMAP(np.arange(W.shape[1]) % FEATURE_CMAP.N) if identity
                else SUP_CMAP(np.clip(f["superposition"].to_numpy(), 0, 1)))
        _neuron_bars(ax, W, order, stack, fill)
        lims.append(max(np.clip(W, 0, None).sum(axis=1).max(), np.clip(-W, 0, None).sum(axis=1).max()))
        nt = t[t["model"] == model].set_index("neuron")
        mono = nt["monosemantic"].reindex(order).fillna(False).to_numpy(bool)
        if identity:  # the features each neuron carries, so the pairs can be read off
            signed = res.models.set_index("model").loc[model, "law"] == "signed"
            carry = neurons.carried(W, signed) & ~neurons.dead(W, signed)[:, None]
            names = [",".join(map(str, np.flatnonzero(carry[k]))) or "-" for k in order]
        else:
            names = [str(i) for i in np.abs(W[order]).argmax(axis=1)]
        ax.set_xticks(np.arange(len(order)), names, fontsize=6 if wide or identity else 8)
        for tick, yes in zip(ax.get_xticklabels(), mono):
            tick.set_color("k" if yes else "0.6")
        ax.set_xlim(-0.6, len(order) - 0.4)
        label = (f"1-S = {row['density']:.3g}: {int(mono.sum())}/{len(order)} monosemantic, "
                 f"loss {row['loss']:.2g}")
        e = spec.embed
        ylabel = f"{e}$_{{ki}}$ / max$_i$|{e}$_{{ki}}$|" if not spec.tied else f"{e}$_{{ki}}$"
        if wide:
            ax.set_ylabel(ylabel, fontsize=8)
            ax.set_title(label, fontsize=9, loc="left")
        else:
            ax.set_title(label.replace(": ", "\n", 1).replace(", loss", "\nloss"), fontsize=8)
            if ax is axes[0, 0]:
                ax.set_ylabel(ylabel, fontsize=8)
        mark_panel(ax, marks.get(model), where="title")  # the bars may fill any corner
        ax.tick_params(labelsize=7)
    fig.supxlabel("neurons, each labelled by " + ("the features it carries (weight >= "
                  f"{neurons.CARRY:g} of its firing weights' norm)" if identity else "its largest feature")
                  + " (0 = most important)", fontsize=8)
    # the tied models' panels share one scale; the rescaled |x| models' each get their own,
    # since a dense one's bars stay within +-1 while a sparse one's stacks reach far beyond
    for ax, lim in zip(axes.ravel(), lims):
        lim = lim if scaled else max(lims)
        ax.set_ylim(-lim * 1.05, lim * 1.05)
    if identity:
        fig.legend(handles=[patches.Patch(color=FEATURE_CMAP(i % FEATURE_CMAP.N), label=str(i))
                            for i in range(n)], title="feature", loc="outside right center",
                   fontsize=7, title_fontsize=8, frameon=False)
    else:
        fig.colorbar(plt.cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap=SUP_CMAP), ax=axes,
                     shrink=0.7 if wide else 0.9, label="feature's " + SUP_LABEL)
    kinds = sorted(set(best["kind"]))
    kind = ", ".join(kind_title(x) for x in kinds)
    seeds = "" if one_seed(has, ["kind", "density"]) else "; lowest-loss seed of each density"
    say = (f"one segment per feature{' (colour: which feature)' if identity else ''}, "
           f"positive up, negative down"
           f"{'; each neuron scaled so its largest |W1| is 1' if scaled else ''}; neurons sorted "
           f"by the importance of their largest feature (label black: monosemantic){seeds}")
    fig.suptitle(f"{title(res)}: input weights of each neuron, {kind}, n={n}, m={m}\n"
                 + textwrap.fill(say, width=int(13 * size[0])), fontsize=9)
    return fig
