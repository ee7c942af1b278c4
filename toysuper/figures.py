"""Paper-style figures, drawn only from a stored results directory (store.Results).

Each figure is a function Results -> matplotlib Figure, registered by name; an experiment file
lists the ones it wants in `figures = [...]`, and `toysuper plot DIR` redraws them.
Where a cell of the sweep holds several seeds, the figure shows the lowest-loss model, the
paper's practice of keeping the best of several runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures go to files; no display is assumed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import colors, gridspec  # noqa: E402

from toysuper import metrics, neurons, phase, structures, theory  # noqa: E402
from toysuper.config import ConfigError  # noqa: E402

DPI = 120
KIND_ORDER = ("linear", "relu", "privileged", "abs")
REPRESENTED = 0.5  # a feature counts as represented when ||W_i|| exceeds this
KIND_TITLE = {"linear": "linear model", "relu": "ReLU output model",
              "privileged": "ReLU hidden layer", "abs": "computation model (|x|)"}


def best_models(models, by):
    """The lowest-loss row of `models` for each combination of the `by` columns."""
    idx = models.groupby(list(by), sort=False)["loss"].idxmin()
    return models.loc[idx.sort_values()]


def _derived(res, name, make):
    """A derived table as stored (or just recomputed by `toysuper plot`), else made now."""
    return res.derived[name] if name in res.derived else make(res)


def _kinds(models):
    found = list(dict.fromkeys(models["kind"]))
    return sorted(found, key=lambda k: (KIND_ORDER.index(k) if k in KIND_ORDER else 99, k))


def feature_plane(res):
    """Intro figure: the n feature vectors W_i in a 2-D hidden plane, one panel per density."""
    best = best_models(res.models, ["kind", "density"]).sort_values(["kind", "density"],
                                                                      ascending=[True, False])
    if (best["n_hidden"] != 2).any():
        raise ConfigError("figure 'feature_plane' needs model.n_hidden = 2 (a hidden plane); "
                          f"this sweep has n_hidden = {sorted(set(best['n_hidden']))}")
    cols, kinds = best["density"].nunique(), _kinds(best)
    fig, axes = plt.subplots(len(kinds), cols, figsize=(2.0 * cols + 1.0, 2.4 * len(kinds) + 0.4),
                             squeeze=False, dpi=DPI, layout="constrained")
    imp_all = res.features["importance"]
    norm = colors.Normalize(imp_all.min(), imp_all.max() if imp_all.max() > imp_all.min() else 1)
    cmap = plt.get_cmap("viridis")
    for r, kind in enumerate(kinds):
        rows = best[best["kind"] == kind]
        for c, (_, row) in enumerate(rows.iterrows()):
            ax = axes[r, c]
            W = res.W(int(row["model"]))
            imp = res.features.loc[res.features["model"] == row["model"], "importance"].to_numpy()
            ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.85", lw=0.8))
            for i in np.argsort(imp):  # most important drawn last, on top
                ax.plot([0, W[0, i]], [0, W[1, i]], color=cmap(norm(imp[i])), lw=2)
                ax.plot(W[0, i], W[1, i], "o", color=cmap(norm(imp[i])), ms=5)
            ax.set(xlim=(-1.35, 1.35), ylim=(-1.35, 1.35), aspect="equal", xticks=[], yticks=[])
            ax.set_title(f"1-S = {row['density']:.3g}\nloss {row['loss']:.2e}", fontsize=9)
        for c in range(len(rows), cols):
            axes[r, c].axis("off")
        axes[r, 0].set_ylabel(KIND_TITLE.get(kind, kind))
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=axes, shrink=0.8, label="importance $I_i$")
    fig.suptitle(f"{res.config.get('name', '')}: features W_i in the hidden plane "
                 f"(n={int(best['n_features'].iloc[0])}, m=2)", fontsize=10)
    return fig


def superposition_grid(res):
    """Section 2 figure: per model W^T W with b beside it, and ||W_i|| bars coloured by superposition."""
    best = best_models(res.models, ["kind", "density"])
    kinds = _kinds(best)
    densities = sorted(best["density"].unique(), reverse=True)
    n = int(best["n_features"].max())
    fig = plt.figure(figsize=(2.05 * len(densities) + 1.2, 4.4 * len(kinds)), dpi=DPI)
    outer = gridspec.GridSpec(len(kinds), 1, figure=fig, hspace=0.18, left=0.07, right=0.9,
                              top=0.92, bottom=0.04)
    heat = colors.Normalize(-1, 1)
    sup_cmap = colors.LinearSegmentedColormap.from_list("sup", ["#101010", "#3b2a8a", "#f5c400"])
    feats = res.features.set_index("model")
    for r, kind in enumerate(kinds):
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
                ax.set_ylabel(f"{KIND_TITLE.get(kind, kind)}\nW$^T$W", fontsize=9)
            axb = fig.add_subplot(pair[1])
            axb.imshow(f["bias"].to_numpy()[:, None], cmap="RdBu_r", norm=heat, aspect="auto",
                       interpolation="nearest")
            axb.set(xticks=[0], xticklabels=["b"], yticks=[])
            axb.tick_params(length=0, labelsize=8)
            axn = fig.add_subplot(cell[1, c])
            sup = np.clip(f["superposition"].to_numpy(), 0, 1)
            axn.barh(np.arange(len(f)), f["norm"], color=sup_cmap(sup), height=0.8)
            axn.set(ylim=(len(f) - 0.5, -0.5), xlim=(0, max(1.1, f["norm"].max() * 1.05)),
                    yticks=[])
            axn.tick_params(labelsize=7)
            k = int((f["norm"] > REPRESENTED).sum())
            axn.text(0.97, 0.03, f"{k} of {len(f)} with\n||W$_i$|| > {REPRESENTED}", fontsize=7,
                     ha="right", va="bottom", transform=axn.transAxes)
            if c == 0:
                axn.set_ylabel("||W$_i$|| by feature", fontsize=9)
    cax = fig.add_axes([0.92, 0.55, 0.012, 0.3])
    fig.colorbar(plt.cm.ScalarMappable(norm=heat, cmap="RdBu_r"), cax=cax, label="W$^T$W and b")
    cax2 = fig.add_axes([0.92, 0.1, 0.012, 0.3])
    fig.colorbar(plt.cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap=sup_cmap), cax=cax2,
                 label="superposition $\\sum_{j\\neq i}(\\hat W_i\\cdot W_j)^2$")
    fig.suptitle(f"{res.config.get('name', '')}: n={n} features, m={int(best['n_hidden'].max())} "
                 f"hidden dimensions", fontsize=11)
    return fig


def loss_curves(res):
    """Training loss against step for every model: colour by density, line style by kind."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=DPI, layout="constrained")
    dens = res.models["density"].astype(float)
    norm = colors.LogNorm(dens.min(), dens.max()) if dens.max() > dens.min() else None
    cmap = plt.get_cmap("viridis")
    styles = dict(zip(_kinds(res.models), ["--", "-", ":", "-."]))
    by_model = res.models.set_index("model")
    for model, h in res.history.groupby("model"):
        row = by_model.loc[model]
        ax.plot(h["step"], h["loss"], ls=styles[row["kind"]], lw=0.9, alpha=0.8,
                color=cmap(norm(row["density"])) if norm else "C0")
    for kind, ls in styles.items():
        ax.plot([], [], ls=ls, color="0.3", label=KIND_TITLE.get(kind, kind))
    ax.legend(fontsize=8)
    if norm:
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="density 1-S")
    ax.set(xscale="log", yscale="log", xlabel="step", ylabel="training loss (mean per interval)",
           title=f"{res.config.get('name', '')}: training loss of {len(res.models)} models")
    return fig


# Phase diagram colours: hue from blue (alone in its direction) to red (superposition >= 1),
# faded toward white as the extra feature's norm falls to 0 (not represented).
BLUE, RED, WHITE = np.array([0.16, 0.35, 0.85]), np.array([0.85, 0.12, 0.12]), np.ones(3)


def phase_colour(norm, superposition) -> np.ndarray:
    """RGB [..., 3] for the extra feature's norm and superposition (both clipped to [0, 1])."""
    s = np.clip(np.asarray(superposition, float), 0, 1)[..., None]
    a = np.clip(np.asarray(norm, float), 0, 1)[..., None]
    return WHITE + a * ((1 - s) * BLUE + s * RED - WHITE)


THEORY_COLOUR = {"not represented": (0.0, 0.0), "dedicated": (1.0, 0.0), "superposition": (1.0, 1.0)}


def _log_edges(values):
    """Cell edges for pcolormesh on a log axis: geometric midpoints, extended at both ends."""
    v = np.log(np.asarray(values, float))
    mid = (v[1:] + v[:-1]) / 2
    step = (v[1] - v[0]) if len(v) > 1 else 0.1
    return np.exp(np.concatenate([[v[0] - step / 2], mid, [v[-1] + step / 2]]))


def phase_diagram(res):
    """Section 3 figure: the extra feature's phase, theory beside the trained models, over (r, p)."""
    t = _derived(res, "phase", phase.table)
    ps, rs = np.sort(t["p"].unique()), np.sort(t["r"].unique())
    grid = t.set_index(["p", "r"])
    full = pd.MultiIndex.from_product([ps, rs], names=["p", "r"])
    grid = grid.reindex(full)  # a missing cell stays blank
    shape = (len(ps), len(rs))
    norm_th, sup_th = np.array([THEORY_COLOUR.get(ph, (0, 0)) for ph in grid["theory_phase"]]).T
    rgb = {"theory": phase_colour(norm_th, sup_th).reshape(*shape, 3),
           "trained": phase_colour(grid["extra_norm"].fillna(0).to_numpy(),
                                   grid["extra_superposition"].fillna(0).to_numpy()).reshape(*shape, 3)}
    n = int(res.models["n_features"].iloc[0])
    xe, ye = _log_edges(rs), _log_edges(ps)
    fig = plt.figure(figsize=(10.2, 4.4), dpi=DPI)
    gs = gridspec.GridSpec(1, 3, figure=fig, width_ratios=[1, 1, 0.32], wspace=0.28,
                           left=0.07, right=0.97, top=0.8, bottom=0.13)
    r_line = np.geomspace(xe[0], xe[-1], 400)
    edge = theory.superposition_edge(n, r_line)
    score = phase.agreement(t)
    wrong = t[~t["agree"]]
    for k, (name, title) in enumerate([("theory", "theory (argmin of the candidate losses)"),
                                        ("trained", f"trained: best of {int(t['seeds'].max())} seeds")]):
        ax = fig.add_subplot(gs[k])
        ax.pcolormesh(xe, ye, rgb[name], shading="flat")
        ax.plot(r_line, np.where(edge > 0, edge, np.nan), color="k", lw=0.8, ls="--")
        # r = 1 splits dropped from dedicated above the edge (for n=3 also below it)
        ax.plot([1, 1], [max(float(theory.superposition_edge(n, 1.0)), ye[0]), ye[-1]], color="k",
                lw=0.8, ls="--")
        if name == "trained" and len(wrong):  # ringed, and counted in the title: no legend to hide cells
            ax.plot(wrong["r"], wrong["p"], "o", ms=2.2, mfc="none", mec="k", mew=0.6)
            title += f"\n(ringed: {len(wrong)} cells unlike the theory)"
        ax.set(xscale="log", yscale="log", xlim=(xe[0], xe[-1]), ylim=(ye[0], ye[-1]),
               xlabel="relative importance r of the extra feature", title=title)
        ax.set_xticks([0.1, 1, 10], ["0.1x", "1x", "10x"])
        ax.set_ylabel("feature density p = 1-S" if k == 0 else "")
        ax.title.set_fontsize(9)
    _phase_key(fig.add_subplot(gs[2]))
    cells = len(t)
    fig.suptitle(f"{res.config.get('name', '')}: phase of the extra feature, n={n}, m={n - 1}\n"
                 f"agreement with theory: {score:.1%} of {cells} cells "
                 f"({cells - len(wrong)} / {cells})", fontsize=11)
    return fig


def _phase_key(ax):
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


def _neuron_bars(ax, W, order, cmap, fnorm):
    """Stacked bars of each neuron's input weights, positive up and negative down, by feature."""
    x = np.arange(len(order))
    for sign in (1, -1):
        base = np.zeros(len(order))
        for i in range(W.shape[1]):  # feature 0 nearest the axis, the rest stacked outward
            h = np.clip(sign * W[order, i], 0, None) * sign
            ax.bar(x, h, bottom=base, width=0.8, color=cmap(fnorm(i)), linewidth=0)
            base += h
    ax.axhline(0, color="k", lw=0.6)


def neuron_weights(res):
    """Sections 7 and 8: per density, every neuron's feature weights, sorted by monosemanticity."""
    t = _derived(res, "neurons", neurons.table)
    best = best_models(res.models[res.models["model"].isin(t["model"])], ["kind", "density"])
    best = best.sort_values(["kind", "density"], ascending=[True, False])
    m, n = int(best["n_hidden"].max()), int(best["n_features"].max())
    wide = m > 12  # many neurons: one row per density, else one column per density
    k = len(best)
    rows, cols = (k, 1) if wide else (1, k)
    size = (min(0.22 * m + 2.5, 14), 1.9 * k + 0.8) if wide else (1.9 * k + 1.4, 3.6)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False, dpi=DPI, layout="constrained")
    cmap, fnorm = plt.get_cmap("turbo"), colors.Normalize(0, max(n - 1, 1))
    lims = []
    for ax, (_, row) in zip(axes.ravel(), best.iterrows()):
        model = int(row["model"])
        W = res.W(model)
        nt = t[t["model"] == model].set_index("neuron")
        order = nt.sort_values(["monosemantic", "monosemanticity"], ascending=False).index.to_numpy()
        _neuron_bars(ax, W, order, cmap, fnorm)
        lims.append(max(np.clip(W, 0, None).sum(axis=1).max(), np.clip(-W, 0, None).sum(axis=1).max()))
        mono, m_here = int(nt["monosemantic"].sum()), W.shape[0]
        label = f"1-S = {row['density']:.3g}: {mono}/{m_here} monosemantic, loss {row['loss']:.2g}"
        ax.set_xticks(np.arange(m_here), [str(int(v)) for v in order], fontsize=6 if m > 12 else 8)
        ylabel = "W1$_{ki}$" if res.kind(model) == "abs" else "W$_{ki}$"
        if wide:
            ax.set_ylabel(ylabel, fontsize=8)
            ax.set_title(label, fontsize=9, loc="left")
        else:
            ax.set_title(label.replace(": ", "\n", 1).replace(", loss", "\nloss"), fontsize=8)
            ax.set_xlabel("neuron", fontsize=8)
            if ax is axes[0, 0]:
                ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
    # the computation model's W1 has no fixed scale (W1 times c and W2 over c are the same
    # network), so its panels get their own limits; the tied models' panels share theirs
    shared = best["kind"].iloc[0] != "abs"
    for ax, lim in zip(axes.ravel(), lims):
        lim = max(lims) if shared else lim
        ax.set_ylim(-lim * 1.05, lim * 1.05)
    fig.colorbar(plt.cm.ScalarMappable(norm=fnorm, cmap=cmap), ax=axes, shrink=0.7 if wide else 0.9,
                 label="feature i (0 = most important)")
    kind = KIND_TITLE.get(best["kind"].iloc[0], best["kind"].iloc[0])
    fig.suptitle(f"{res.config.get('name', '')}: input weights of each neuron, {kind}, n={n}, m={m}\n"
                 f"bars stacked by feature, positive up, negative down; neurons sorted by "
                 f"monosemanticity (monosemantic first)", fontsize=9)
    return fig


def computed_features(res):
    """Section 8: how many features a model computes, and how monosemantic its neurons are."""
    comp = _derived(res, "computation", neurons.computation)
    t = _derived(res, "neurons", neurons.table)
    per = pd.DataFrame({"computed": comp.groupby("model")["computed"].sum(),
                        "one_sign": comp.assign(one=comp["signs"] == 1).groupby("model")["one"].sum(),
                        "mono": t.groupby("model")["monosemantic"].mean()})
    df = res.models.set_index("model").join(per)
    best = best_models(df.reset_index(), ["kind", "density"]).sort_values("density")
    n, m = int(df["n_features"].max()), int(df["n_hidden"].max())
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4.0), dpi=DPI, layout="constrained")
    for col, colour, label in (("computed", "C3", "|x| computed (both signs)"),
                               ("one_sign", "C1", "one sign only (ReLU(x) or ReLU(-x))")):
        ax.scatter(df["density"], df[col], s=9, color=colour, alpha=0.35, zorder=2)
        ax.plot(best["density"], best[col], "o-", color=colour, label=f"{label}, best seed", zorder=3)
    ax.scatter([], [], s=9, color="0.5", alpha=0.5, label="every seed")
    for y, text in ((m / 2, "m/2: a neuron pair per feature"), (m, "m: one neuron per feature"),
                    (n, "n: every feature")):
        ax.axhline(y, color="0.5", lw=0.7, ls="--")
        ax.text(0.99, y, text, fontsize=7, ha="right", va="bottom", color="0.3",
                transform=ax.get_yaxis_transform())
    ax.set(xscale="log", xlabel="feature density 1-S", ylim=(0, n * 1.08),
           ylabel=f"features (error < {neurons.COMPUTED:g} x predicting 0, per sign)",
           title="features computed")
    ax.invert_xaxis()
    ax.legend(fontsize=7, loc="upper left")
    ax2.plot(best["density"], best["mono"], "o-", color="C0")
    ax2.set(xscale="log", xlabel="feature density 1-S", ylim=(-0.03, 1.03),
            ylabel="fraction of neurons monosemantic", title="monosemantic neurons (best seed)")
    ax2.invert_xaxis()
    fig.suptitle(f"{res.config.get('name', '')}: computation in superposition, n={n}, m={m} "
                 f"(sparser to the right)", fontsize=10)
    return fig


def asymmetric_motif(res):
    """Section 8: how often the asymmetric superposition motif appears, and one instance of it."""
    found = _derived(res, "motifs", neurons.motifs)
    abs_models = res.models[res.models["kind"] == "abs"].set_index("model")
    counts = found.groupby("model").size().reindex(abs_models.index, fill_value=0)
    fig = plt.figure(figsize=(13, 4.2), dpi=DPI, layout="constrained")
    gs = fig.add_gridspec(1, 3, width_ratios=[0.8, 1, 1])
    ax = fig.add_subplot(gs[0])
    dens = abs_models["density"]
    jitter = np.exp(np.random.default_rng(0).uniform(-0.08, 0.08, len(dens)))
    ax.scatter(dens * jitter, counts, s=14, color="0.55", label="one model (seed)", zorder=2)
    mean = counts.groupby(dens).mean()
    ax.plot(mean.index, mean.to_numpy(), "o-", color="C3", label="mean over seeds", zorder=3)
    ax.set(xscale="log", xlabel="feature density 1-S", ylabel="motifs per model",
           title="asymmetric superposition motifs")
    ax.invert_xaxis()
    ax.legend(fontsize=7)
    if found.empty:
        fig.add_subplot(gs[1:]).axis("off")
        fig.suptitle(f"{res.config.get('name', '')}: no asymmetric superposition motif found "
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
    row = abs_models.loc[model]
    fig.suptitle(
        f"{res.config.get('name', '')}: model {model} (1-S = {row['density']:.3g}, seed "
        f"{int(row['seed'])}): neuron {k} = ReLU({ex['big_weight']:.2f} x{i} "
        f"{ex['small_weight']:+.2f} x{j} + ...) computes part of |x{i}| and |x{j}|;\n"
        f"when x{i} fires it alone, it leaks into y{j}, and neuron {c} (with the other neurons firing "
        f"on x{i}) takes back {ex['cancelled']:.0%} of that leak", fontsize=9)
    return fig


def _swept_feature(models):
    """The per-feature setting column ('importance[0]', 'density[-1]', ...) the sweep varies."""
    cols = [c for c in models.columns if re.fullmatch(r"(importance|density)\[-?\d+\]", c)
            and models[c].nunique() > 1]
    if len(cols) != 1:
        raise ConfigError("figure 'nonuniform_plane' needs a sweep over one feature's setting, "
                          "e.g. [sweep] \"data.importance[0]\" = {logspace = [0.2, 5], num = 12}; "
                          f"this sweep varies {cols or 'none'}")
    col = cols[0]
    return col, int(col[col.index("[") + 1:-1])


def nonuniform_plane(res):
    """Section 4: the n feature vectors in the hidden plane as one feature's setting is swept."""
    col, k = _swept_feature(res.models)
    best = best_models(res.models, [col]).sort_values(col)
    if (best["n_hidden"] != 2).any():
        raise ConfigError("figure 'nonuniform_plane' needs model.n_hidden = 2 (a hidden plane)")
    cols = min(len(best), 8)
    rows = int(np.ceil(len(best) / cols))
    fig = plt.figure(figsize=(1.9 * cols + 0.4, 2.1 * rows + 2.6), dpi=DPI, layout="constrained")
    gs = fig.add_gridspec(rows + 1, cols, height_ratios=[1] * rows + [1.15])
    n = int(best["n_features"].iloc[0])
    special = k % n
    for idx, (_, row) in enumerate(best.iterrows()):
        ax = fig.add_subplot(gs[idx // cols, idx % cols])
        W = res.W(int(row["model"]))
        ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.85", lw=0.8))
        for i in range(n):
            colour, lw = ("C3", 2.4) if i == special else ("0.35", 1.4)
            ax.plot([0, W[0, i]], [0, W[1, i]], color=colour, lw=lw)
            ax.plot(W[0, i], W[1, i], "o", color=colour, ms=4)
        ax.set(xlim=(-1.4, 1.4), ylim=(-1.4, 1.4), aspect="equal", xticks=[], yticks=[])
        ax.set_title(f"{col.split('[')[0]} = {row[col]:.3g}\nloss {row['loss']:.3g}", fontsize=8)
    ax = fig.add_subplot(gs[rows, :])
    ax.plot(best[col], best["loss"], "o-", color="k", ms=3, label="loss (best seed)")
    ax.set(xscale="log", xlabel=f"{col} of feature {special} (red), the others fixed",
           ylabel="loss")
    norm = res.features.set_index(["model", "feature"])["norm"]
    ax2 = ax.twinx()
    ax2.plot(best[col], [norm[(int(m), special)] for m in best["model"]], "s--", color="C3", ms=3,
             label=f"||W_{special}||")
    ax2.set_ylabel(f"||W$_{special}$||", color="C3")
    ax2.set_ylim(0, 1.3)
    fig.suptitle(f"{res.config.get('name', '')}: n={n} features in m=2 as feature {special}'s "
                 f"{col.split('[')[0]} changes", fontsize=10)
    return fig


def _sets(value) -> list:
    return json.loads(value) if isinstance(value, str) else list(value)


def sets_plane(res):
    """Section 4: features in the hidden plane coloured by correlated / anticorrelated set, per case."""
    by = [c for c in ("case", "density") if c in res.models and res.models[c].nunique() > 1] or ["kind"]
    best = best_models(res.models, by).sort_values(by)
    if (best["n_hidden"] != 2).any():
        raise ConfigError("figure 'sets_plane' needs model.n_hidden = 2 (a hidden plane)")
    fig, axes = plt.subplots(1, len(best), figsize=(2.9 * len(best) + 0.3, 3.6), squeeze=False,
                             dpi=DPI, layout="constrained")
    palette = {"correlated": ["#1f77b4", "#2ca02c", "#17becf"], "anticorrelated": ["#d62728", "#ff7f0e", "#e377c2"]}
    for ax, (_, row) in zip(axes[0], best.iterrows()):
        W = res.W(int(row["model"]))
        colour, what = ["0.45"] * W.shape[1], []
        for kind in ("correlated", "anticorrelated"):
            for j, members in enumerate(_sets(row[kind])):
                for i in members:
                    colour[i] = palette[kind][j % 3]
                what.append(f"{kind} {{{', '.join(map(str, members))}}}")
                if kind == "correlated":  # how far the set collapsed onto one direction
                    u, sv, _ = np.linalg.svd(W[:, members])
                    share = sv[0] ** 2 / max((sv ** 2).sum(), 1e-12)
                    what[-1] += f": {share:.0%} on its 1st PC"
                    ax.plot([-1.3 * u[0, 0], 1.3 * u[0, 0]], [-1.3 * u[1, 0], 1.3 * u[1, 0]],
                            ls=":", lw=0.9, color=palette[kind][j % 3])
        ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.85", lw=0.8))
        for i in range(W.shape[1]):
            ax.plot([0, W[0, i]], [0, W[1, i]], color=colour[i], lw=2)
            ax.annotate(str(i), (W[0, i], W[1, i]), xytext=(3, 3), textcoords="offset points",
                        fontsize=8, color=colour[i])
        ax.set(xlim=(-1.35, 1.35), ylim=(-1.35, 1.35), aspect="equal", xticks=[], yticks=[])
        ax.set_title("\n".join(what or ["independent"]) + f"\n1-S = {row['density']:.3g}, "
                     f"loss {row['loss']:.3g}", fontsize=8)
    fig.suptitle(f"{res.config.get('name', '')}: features W_i in the hidden plane, coloured by "
                 f"set (grey: independent)", fontsize=10)
    return fig


# Dimensionalities of the regular structures of SCIENCE.md item 4 (d dimensions, k features: d/k)
FRACTIONS = {"1": 1, "3/4": 3 / 4, "2/3": 2 / 3, "1/2": 1 / 2, "2/5": 2 / 5, "3/8": 3 / 8, "1/3": 1 / 3}


def dynamics(res):
    """Section 5: loss over training and every feature's dimensionality D_i at each snapshot."""
    best = best_models(res.models, ["kind", "density"]).sort_values("density", ascending=False)
    cols = len(best)
    fig, axes = plt.subplots(2, cols, figsize=(3.6 * cols + 0.6, 6.0), squeeze=False, dpi=DPI,
                             sharex="col", height_ratios=[1, 1.6], layout="constrained")
    cmap = plt.get_cmap("turbo")
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
        for y in FRACTIONS.values():
            bottom.axhline(y, color="0.85", lw=0.7, zorder=0)
        for i in range(D.shape[1]):
            bottom.plot(steps, D[:, i], "-", marker=".", ms=3, lw=0.8, alpha=0.8,
                        color=cmap(i / max(D.shape[1] - 1, 1)))
        bottom.set(xscale="log", ylim=(-0.03, 1.05), xlabel="step")
        bottom.set_yticks(list(FRACTIONS.values()) + [0], list(FRACTIONS) + ["0"])
        bottom.tick_params(labelsize=7)
        if c == 0:
            top.set_ylabel("training loss", fontsize=9)
            bottom.set_ylabel("feature dimensionality $D_i$ (one line per feature)", fontsize=9)
    fig.suptitle(f"{res.config.get('name', '')}: learning dynamics; dimensionalities jump between "
                 f"the fractions of regular structures (grey lines)", fontsize=10)
    return fig


def _fraction_lines(ax):
    """Grey reference lines at the dimensionalities of the regular structures, labelled."""
    for label, y in FRACTIONS.items():
        ax.axhline(y, color="0.8", lw=0.7, zorder=0)
        ax.text(1.01, y, label, transform=ax.get_yaxis_transform(), fontsize=7, va="center",
                color="0.35")


def dims_per_feature(res):
    """Section 4: D* = m / ||W||_F^2 against 1/(1-S); sticky plateaus at 1, 1/2, ... (best seed)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=DPI, layout="constrained")
    for (kind, n, m), g in res.models.groupby(["kind", "n_features", "n_hidden"], sort=False):
        g = g.assign(inv=1 / g["density"].astype(float))
        best = best_models(g, ["density"]).sort_values("inv")
        ax.scatter(g["inv"], g["dims_per_feature"], s=8, color="0.6", zorder=2)
        ax.plot(best["inv"], best["dims_per_feature"], "o-", ms=3.5, lw=1, zorder=3,
                label=f"{KIND_TITLE.get(kind, kind)}, n={n}, m={m} (lowest-loss seed)")
    _fraction_lines(ax)
    ax.set(xscale="log", ylim=(0, 1.08), xlabel="1 / (1-S) = 1 / density",
           ylabel="dimensions per feature D* = m / ||W||$_F^2$")
    ax.scatter([], [], s=8, color="0.6", label="every seed")
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{res.config.get('name', '')}: dimensions per feature across sparsity", fontsize=10)
    return fig


def feature_dims(res):
    """Section 4: every feature's dimensionality D_i at every density (lowest-loss seed)."""
    best = best_models(res.models, ["kind", "density"])
    f = res.features[res.features["model"].isin(best["model"])].merge(
        best[["model", "density"]].rename(columns={"density": "model_density"}), on="model")
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=DPI, layout="constrained")
    rng = np.random.default_rng(0)
    x = (1 / f["model_density"].astype(float)) * np.exp(rng.uniform(-0.04, 0.04, len(f)))
    learned = f["norm"] >= structures.LEARNED
    ax.scatter(x[learned], f.loc[learned, "dimensionality"], s=3, alpha=0.35, color="C0",
               lw=0, label=f"learned features (||W_i|| >= {structures.LEARNED})")
    ax.scatter(x[~learned], f.loc[~learned, "dimensionality"], s=3, alpha=0.2, color="0.6", lw=0,
               label="not learned")
    _fraction_lines(ax)
    ax.set(xscale="log", ylim=(-0.03, 1.08), xlabel="1 / (1-S) = 1 / density",
           ylabel="feature dimensionality D$_i$")
    ax.legend(fontsize=7, loc="upper right", markerscale=3)
    fig.suptitle(f"{res.config.get('name', '')}: feature dimensionalities cluster at the "
                 f"fractions of regular structures", fontsize=10)
    return fig


STRUCTURE_COLOURS = dict(zip(structures.NAMES, ["#1b4f9c", "#4fa3d9", "#2e9e5b", "#a6d96a",
                                                  "#f0b03c", "#d9553b", "#9a9a9a", "#e8e8e8"]))


def structure_mix(res):
    """Section 4: the share of features in each structure, per density (best seed per density)."""
    best = best_models(res.models, ["kind", "density"]).sort_values("density", ascending=False)
    feats = res.features
    if "structure" not in feats:  # results stored before labels existed: label them now
        feats = feats.assign(structure=np.concatenate([structures.label(res.W(int(m)))
                                                       for m in feats["model"].unique()]))
    kinds = _kinds(best)
    fig, axes = plt.subplots(len(kinds), 1, figsize=(max(6.0, 0.32 * best["density"].nunique() + 3),
                             3.2 * len(kinds) + 0.6), squeeze=False, dpi=DPI, layout="constrained")
    for ax, kind in zip(axes[:, 0], kinds):
        rows = best[best["kind"] == kind]
        share = (feats[feats["model"].isin(rows["model"])].groupby("model")["structure"]
                 .value_counts(normalize=True).unstack(fill_value=0.0)
                 .reindex(index=rows["model"], columns=list(structures.NAMES), fill_value=0.0))
        x, base = np.arange(len(rows)), np.zeros(len(rows))
        for name in structures.NAMES:
            ax.bar(x, share[name], bottom=base, width=0.85, color=STRUCTURE_COLOURS[name], label=name)
            base += share[name].to_numpy()
        ax.set_xticks(x, [f"{p:.2g}" for p in rows["density"]], rotation=90, fontsize=7)
        ax.set(xlabel="feature density 1-S (sparser to the right)", ylabel="share of features",
               ylim=(0, 1), xlim=(-0.6, len(rows) - 0.4), title=KIND_TITLE.get(kind, kind))
        ax.title.set_fontsize(9)
    axes[0, 0].legend(fontsize=7, ncol=1, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"{res.config.get('name', '')}: structures the features form (toysuper/structures.py)",
                 fontsize=10)
    return fig


FIGURES = {
    "feature_plane": feature_plane,
    "superposition_grid": superposition_grid,
    "loss_curves": loss_curves,
    "phase_diagram": phase_diagram,
    "neuron_weights": neuron_weights,
    "computed_features": computed_features,
    "asymmetric_motif": asymmetric_motif,
    "dynamics": dynamics,
    "structure_mix": structure_mix,
    "dims_per_feature": dims_per_feature,
    "feature_dims": feature_dims,
    "nonuniform_plane": nonuniform_plane,
    "sets_plane": sets_plane,
}


def draw(res, names=None) -> list[Path]:
    """Draw the named figures (default: the experiment's own) into DIR/figures/NAME.png."""
    names = res.config.get("figures", []) if names is None else names
    folder = Path(res.path) / "figures"
    folder.mkdir(exist_ok=True)
    paths = []
    for name in names:
        fig = FIGURES[name](res)
        path = folder / f"{name}.png"
        tmp = folder / f".{name}.tmp.png"
        fig.savefig(tmp, dpi=DPI)
        plt.close(fig)
        tmp.replace(path)
        paths.append(path)
    return paths
