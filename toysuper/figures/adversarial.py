"""Section 6 (docs/adversarial.md): vulnerability to the worst small perturbation, across sparsity."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from toysuper import tables
from toysuper.figures.style import (
    DPI,
    FLAG_WORDS,
    best_models,
    flags,
    kind_line,
    kind_marker,
    kind_title,
    kinds,
    one_seed,
    ring,
    title,
)


def vulnerability(res):
    """Vulnerability against 1-S beside features per dimension 1/D*, and the two against each
    other, for the lab's attack and for the paper's.

    (a) vulnerability to the PGD attack, (attacked - clean) / clean mean loss, per kind (line
    style) and attack radius eps (colour), through the lowest-loss seed of each density, with
    random perturbations of the same norm in pale lines; (b) features per dimension 1/D* of the
    same models; (c) every model's PGD vulnerability against its 1/D*; (d) the paper's metric,
    its analytic attack's loss increase over that of the top-m exact solution (no superposition),
    against 1/D*, with the line y = 1/D* that "tracking features per dimension" would follow.
    Flagged models ringed in red.
    """
    adv = tables.get(res, "adversarial")
    cell = ["kind", "density"]
    models = res.models.assign(density=res.models["density"].astype(float),
                               per_dim=1 / res.models["dims_per_feature"].astype(float))
    best = best_models(models, cell)
    single = one_seed(models, cell)
    radii = sorted(adv["eps"].unique())
    colours = dict(zip(radii, plt.cm.plasma(np.linspace(0.1, 0.75, len(radii)))))
    rows = adv.merge(models[["model", "kind", "density", "per_dim"]], on="model")
    marks = flags(res)
    found = kinds(best)
    fig, (ax_v, ax_d, ax_s, ax_p) = plt.subplots(1, 4, figsize=(18, 4.9), dpi=DPI,
                                                 layout="constrained")
    for kind in found:
        style = kind_line(kind)
        mine = best[best["kind"] == kind]
        for e in radii:
            of = rows[(rows["kind"] == kind) & (rows["eps"] == e)]
            kept = of[of["model"].isin(mine["model"])].sort_values("density", ascending=False)
            ax_v.plot(kept["density"], kept["vulnerability"], style, marker="o", ms=3.5, lw=1.2,
                      color=colours[e])
            ax_v.plot(kept["density"], kept["random_vulnerability"], style, lw=0.9,
                      color=colours[e], alpha=0.35)
            if not single:
                ax_v.scatter(of["density"], of["vulnerability"], s=5, color=colours[e], alpha=0.4, lw=0)
            ax_s.scatter(of["per_dim"], of["vulnerability"], s=14, color=colours[e],
                         marker=kind_marker(kind), alpha=0.8, lw=0)
            if "analytic_vulnerability" in of:
                ax_p.scatter(of["per_dim"], of["analytic_vulnerability"], s=14, color=colours[e],
                             marker=kind_marker(kind), alpha=0.8, lw=0)
        mine = mine.sort_values("density", ascending=False)
        ax_d.plot(mine["density"], mine["per_dim"], style, marker="o", ms=3.5, lw=1.2, color="0.15",
                  label=kind_title(kind))
        if not single:
            seeds = models[models["kind"] == kind]
            ax_d.scatter(seeds["density"], seeds["per_dim"], s=5, color="0.55", lw=0)
    shown = rows[rows["model"].isin(list(marks)) & rows["model"].isin(best["model"])]
    if len(shown):
        ring(ax_v, shown["density"], shown["vulnerability"])
        once = shown.drop_duplicates("model")
        ring(ax_d, once["density"], once["per_dim"])
    for ax in (ax_v, ax_d):
        ax.set(xscale="log", xlabel="1-S = density (sparser to the right)")
        ax.invert_xaxis()
    ax_v.set(yscale="log", ylabel="vulnerability = (attacked - clean) / clean loss",
             title="(a) vulnerability against sparsity")
    ax_d.set(ylim=(0, None), ylabel="features per dimension 1/D* = ||W||$_F^2$ / m",
             title="(b) features per dimension")
    ax_d.axhline(1, color="0.8", lw=0.8, zorder=0)
    ax_s.set(yscale="log", xlabel="features per dimension 1/D*", ylabel="vulnerability",
             title="(c) vulnerability against 1/D*, every model")
    top = float(rows["per_dim"].max())
    ax_p.plot([1, top], [1, top], ":", color="0.5", lw=1, label="y = 1/D*")
    ax_p.axhline(1, color="0.8", lw=0.8, zorder=0)
    ax_p.set(xlabel="features per dimension 1/D*",
             ylabel="(L' - L) / (L'$_0$ - L$_0$), reference: top-m exact",
             title="(d) the paper's attack and metric, every model")
    # legends under the panels: colour is the radius, line style (a, b) or marker (c) the kind
    for e in radii:
        ax_v.plot([], [], "-", color=colours[e], lw=2, label=f"eps = {e:g}")
        ax_s.scatter([], [], s=14, color=colours[e], label=f"eps = {e:g}")
        ax_p.scatter([], [], s=14, color=colours[e], label=f"eps = {e:g} of the mean input norm")
    for kind in found:
        ax_v.plot([], [], kind_line(kind), color="0.2", label=kind_title(kind))
        ax_s.scatter([], [], s=14, color="0.4", marker=kind_marker(kind),
                     label=kind_title(kind))
    ax_v.plot([], [], "-", color="0.5", alpha=0.35, label="pale: random direction, same norm")
    if not single:
        ax_d.scatter([], [], s=5, color="0.55", label="every seed")
    if len(shown):
        ring(ax_v, [], [], label=f"red ring: {FLAG_WORDS}")
    return _finish(fig, (ax_v, ax_d, ax_s, ax_p), res, models, single,
                   "(a-c) the worst perturbation of norm eps ||x|| (projected gradient ascent); "
                   "(d) the paper's per-feature analytic attack")


def _finish(fig, axes, res, models, single: bool, what: str):
    """Legends under the panels and the title naming the sizes and, with seeds, what is drawn."""
    for ax in axes:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    n, m = int(models["n_features"].max()), int(models["n_hidden"].max())
    seeds = "" if single else "; lines: the lowest-loss seed of each density, dots: every seed"
    fig.suptitle(f"{title(res)}: {what}, n={n} features, m={m} dimensions{seeds}", fontsize=10)
    return fig


def _case(row) -> str:
    """How a model was trained: clean, or on attacked inputs of radius eps."""
    return ("clean training" if not row["adversarial_steps"]
            else f"trained on attacks, eps = {row['adversarial_eps']:g}")


def adversarial_training(res):
    """Clean against adversarially trained models across sparsity: (a) features per dimension
    1/D*, (b) vulnerability at each attack radius, (c) clean loss beside the best trivial
    baseline. One colour per way of training, through the lowest-loss seed of each density;
    every seed as dots. Flagged models ringed in red.
    """
    adv = tables.get(res, "adversarial")
    verdicts = tables.get(res, "optima")
    models = res.models.assign(density=res.models["density"].astype(float),
                               per_dim=1 / res.models["dims_per_feature"].astype(float))
    models["case"] = models.apply(_case, axis=1)
    cases = sorted(models["case"].unique(), key=lambda c: (c != "clean training", c))
    colours = dict(zip(cases, ["0.15", *plt.cm.viridis(np.linspace(0.25, 0.8, len(cases) - 1))]))
    best = best_models(models, ["kind", "case", "density"])
    single = one_seed(models, ["kind", "case", "density"])
    radii = sorted(adv["eps"].unique())
    styles = dict(zip(radii, ["-", "--", ":", "-."] * len(radii)))
    rows = adv.merge(models[["model", "case", "density"]], on="model")
    marks = flags(res)
    fig, (ax_d, ax_v, ax_l) = plt.subplots(1, 3, figsize=(14, 4.9), dpi=DPI, layout="constrained")
    for case in cases:
        mine = best[best["case"] == case].sort_values("density", ascending=False)
        every = models[models["case"] == case]
        colour = colours[case]
        ax_d.plot(mine["density"], mine["per_dim"], "-", marker="o", ms=3.5, lw=1.2, color=colour,
                  label=case)
        lost = verdicts.set_index("model").loc[mine["model"]]
        ax_l.plot(mine["density"], lost["eval_loss"], "-", marker="o", ms=3.5, lw=1.2, color=colour,
                  label=case)
        if not single:
            ax_d.scatter(every["density"], every["per_dim"], s=6, color=colour, alpha=0.5, lw=0)
            ax_l.scatter(every["density"], every["loss"], s=6, color=colour, alpha=0.5, lw=0)
        for e in radii:
            of = rows[(rows["case"] == case) & (rows["eps"] == e)]
            kept = of[of["model"].isin(mine["model"])].sort_values("density", ascending=False)
            ax_v.plot(kept["density"], kept["vulnerability"], styles[e], marker="o", ms=3.5, lw=1.2,
                      color=colour)
            if not single:
                ax_v.scatter(of["density"], of["vulnerability"], s=6, color=colour, alpha=0.5, lw=0)
    base = verdicts.set_index("model").loc[best["model"]].assign(density=best["density"].values)
    base = base.groupby("density")["baseline_loss"].first().sort_index(ascending=False)
    ax_l.plot(base.index, base.values, ":", color="0.55", lw=1, label="best trivial baseline")
    shown = best[best["model"].isin(list(marks))]
    if len(shown):
        ring(ax_d, shown["density"], shown["per_dim"], label=f"red ring: {FLAG_WORDS}")
        ring(ax_l, shown["density"], verdicts.set_index("model").loc[shown["model"], "eval_loss"])
    for ax in (ax_d, ax_v, ax_l):
        ax.set(xscale="log", xlabel="1-S = density (sparser to the right)")
        ax.invert_xaxis()
    ax_d.set(ylim=(0, None), ylabel="features per dimension 1/D* = ||W||$_F^2$ / m",
             title="(a) features per dimension")
    ax_v.set(yscale="log", ylabel="vulnerability = (attacked - clean) / clean loss",
             title="(b) vulnerability to the evaluation attack")
    ax_l.set(yscale="log", ylabel="loss on clean inputs", title="(c) clean loss")
    for case in cases:
        ax_v.plot([], [], "-", color=colours[case], lw=2, label=case)
    for e in radii:
        ax_v.plot([], [], styles[e], color="0.3", label=f"attacked at eps = {e:g}")
    if not single:
        ax_d.scatter([], [], s=6, color="0.5", label="every seed")
    return _finish(fig, (ax_d, ax_v, ax_l), res, models, single, "clean and adversarial training")
