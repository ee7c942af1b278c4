"""Section 8 (docs/computation.md): how many features a computation model computes, and the
asymmetric superposition motif."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colors

from toysuper import neurons, tables
from toysuper.figures.style import (
    DPI,
    FLAG_WORDS,
    best_models,
    flags,
    mark_panel,
    one_seed,
    ring,
    title,
)


def computed_features(res):
    """Features computed (|x| for both signs, or one sign only) and monosemantic neurons, per density.

    Reads the derived tables "computation" and "neurons" (toysuper/neurons.py). Lines follow
    the lowest-loss seed of each density, with every seed as dots where a density holds several.
    Trapped or local-minimum models' points are ringed in red.
    """
    comp = tables.get(res, "computation")
    t = tables.get(res, "neurons")
    per = pd.DataFrame({"computed": comp.groupby("model")["computed"].sum(),
                        "one_sign": comp.assign(one=comp["signs"] == 1).groupby("model")["one"].sum(),
                        "mono": t.groupby("model")["monosemantic"].mean()})
    df = res.models.set_index("model").join(per)
    single = one_seed(res.models, ["kind", "density"])
    best = best_models(df.reset_index(), ["kind", "density"]).sort_values("density")
    n, m = int(df["n_features"].max()), int(df["n_hidden"].max())
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.0), dpi=DPI, layout="constrained")
    marks = list(flags(res))
    drawn = df.reset_index() if not single else best  # the points on the plot, as dots or line
    bad = drawn[drawn["model"].isin(marks)]
    for col, colour, label in (("computed", "C3", "|x| computed (both signs)"),
                               ("one_sign", "C1", "one sign only (ReLU(x) or ReLU(-x))")):
        if not single:
            ax.scatter(df["density"], df[col], s=9, color=colour, alpha=0.35, zorder=2)
        ax.plot(best["density"], best[col], "o-", color=colour, zorder=3,
                label=label if single else f"{label}, lowest-loss seed")
        ring(ax, bad["density"], bad[col])
    if not single:
        ax.scatter([], [], s=9, color="0.5", alpha=0.5, label="every seed")
    if len(bad):
        ring(ax, [], [], label=f"red ring: {FLAG_WORDS}")
    # reference counts, named outside the right edge where no data point can sit under them
    for y, text in ((m / 2, "m/2\n(a neuron pair\nper feature)"), (m, "m\n(a neuron\nper feature)"),
                    (n, "n\n(every feature)")):
        ax.axhline(y, color="0.5", lw=0.7, ls="--")
        ax.text(1.01, y, text, fontsize=7, ha="left", va="center", color="0.3",
                transform=ax.get_yaxis_transform(), linespacing=0.95)
    ax.set(xscale="log", xlabel="feature density 1-S", ylim=(0, n * 1.08),
           ylabel=f"features (error < {neurons.COMPUTED:g} x predicting 0, per sign)",
           title="features computed")
    ax.invert_xaxis()
    ax.legend(fontsize=7, loc="upper left")
    ax2.plot(best["density"], best["mono"], "o-", color="C0")
    shown = best[best["model"].isin(marks)]
    ring(ax2, shown["density"], shown["mono"])
    ax2.set(xscale="log", xlabel="feature density 1-S", ylim=(-0.03, 1.03),
            ylabel="fraction of neurons monosemantic",
            title="monosemantic neurons" + ("" if single else " (lowest-loss seed)"))
    ax2.invert_xaxis()
    fig.suptitle(f"{title(res)}: computation in superposition, n={n}, m={m} "
                 f"(sparser to the right)", fontsize=10)
    return fig


def asymmetric_motif(res):
    """How often the asymmetric superposition motif appears per density, and its clearest instance.

    Reads the derived table "motifs" (toysuper/neurons.py); needs a computation model
    (model.kind = 'abs'), declared in figures/__init__.py. Trapped or local-minimum models'
    points are ringed in red; if the example is one, its panels are framed in red.
    """
    found = tables.get(res, "motifs")
    # the motif is the |x| computation model's own science (section 8), so this names its kind
    abs_models = res.models[res.models["kind"] == "abs"].set_index("model")
    counts = found.groupby("model").size().reindex(abs_models.index, fill_value=0)
    single = one_seed(abs_models, ["density"])
    marks = flags(res)
    bad = abs_models.index.isin(list(marks))
    fig = plt.figure(figsize=(13, 4.2), dpi=DPI, layout="constrained")
    gs = fig.add_gridspec(1, 3, width_ratios=[0.8, 1, 1])
    ax = fig.add_subplot(gs[0])
    dens = abs_models["density"]
    if single:
        order = np.argsort(dens.to_numpy())
        ax.plot(dens.to_numpy()[order], counts.to_numpy()[order], "o-", color="C3",
                label="one model per density", zorder=3)
        ring(ax, dens[bad], counts[bad])
    else:
        jitter = np.exp(np.random.default_rng(0).uniform(-0.08, 0.08, len(dens)))
        ax.scatter(dens * jitter, counts, s=14, color="0.55", label="one model (seed)", zorder=2)
        ring(ax, (dens * jitter)[bad], counts[bad])
        mean = counts.groupby(dens).mean()
        ax.plot(mean.index, mean.to_numpy(), "o-", color="C3", label="mean over seeds", zorder=3)
    ax.set(xscale="log", xlabel="feature density 1-S", ylabel="motifs per model",
           title="asymmetric superposition motifs")
    ax.invert_xaxis()
    if bad.any():
        ring(ax, [], [], label=f"red ring: {FLAG_WORDS}")
    ax.legend(fontsize=7)
    if found.empty:
        fig.add_subplot(gs[1:]).axis("off")
        fig.suptitle(f"{title(res)}: no asymmetric superposition motif found "
                     f"in {len(abs_models)} models", fontsize=10)
        return fig
    ex = found.sort_values("cancelled", ascending=False).iloc[0]  # the clearest instance
    model = int(ex["model"])
    p = res.params(model)
    k, c, i, j = (int(ex[key]) for key in ("neuron", "canceller", "big_feature", "small_feature"))
    # the motif's circuit: input weights of the two neurons on the two features, and output
    # weights of the two neurons into the two features' outputs, with their values written in
    blocks = (("input weights W1[neuron, feature]", p["W1"][np.ix_([k, c], [i, j])]),
              ("output weights W2[feature, neuron]$^T$", p["W2"][np.ix_([i, j], [k, c])].T))
    for slot, (name, M) in enumerate(blocks, start=1):
        ax = fig.add_subplot(gs[slot])
        scale = colors.Normalize(-np.abs(M).max(), np.abs(M).max())
        ax.imshow(M, cmap="RdBu_r", norm=scale)
        for (r, col), v in np.ndenumerate(M):
            ax.text(col, r, f"{v:+.2f}", ha="center", va="center", fontsize=11,
                    color="w" if abs(v) > 0.6 * np.abs(M).max() else "k")
        ax.set_yticks([0, 1], [f"shared neuron {k}", f"cancelling neuron {c}"], fontsize=8)
        ax.set_xticks([0, 1], [f"big feature {i}", f"small feature {j}"], fontsize=8)
        ax.set_title(name, fontsize=9)
        mark_panel(ax, marks.get(model), where="title")  # the matrix fills the panel
    row = abs_models.loc[model]
    fig.suptitle(
        f"{title(res)}: model {model} (1-S = {row['density']:.3g}, seed "
        f"{int(row['seed'])}): neuron {k} = ReLU({ex['big_weight']:.2f} x{i} "
        f"{ex['small_weight']:+.2f} x{j} + ...) computes part of |x{i}| and |x{j}|;\n"
        f"when x{i} fires it alone, it leaks into y{j}, and neuron {c} (with the other neurons firing "
        f"on x{i}) takes back {ex['cancelled']:.0%} of that leak", fontsize=9)
    return fig
