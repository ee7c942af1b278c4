"""Loss scaling with width (docs/width_scaling.md): loss against m per superposition regime with
the fitted power laws, and the fitted exponent over the (alpha, weight decay) grid. alpha is
named in both conventions: the lab's p_i ~ i^-(1 + alpha_lab), the paper's p_i ~ i^-alpha_paper."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import colors

from toysuper import scaling, tables
from toysuper.figures.style import DPI, flags, ring, title

NEEDS = scaling.NEEDS


def _kept(res):
    return scaling.kept_widths(res)


def _alpha_name(a) -> str:
    return f"alpha_lab {a:g} (paper {1 + a:g})"


def _regimes(table):
    """The (weight decay, start) pairs of a models or scaling table, each a regime of its own."""
    return sorted(set(zip(table["weight_decay"], table["weight_init"])))


def _regime(wd, init):
    name = "weight growth" if wd < 0 else "no decay" if wd == 0 else "weight decay"
    return name + (", unit-norm start" if init == "unit" else "")


def width_scaling(res):
    """Loss against m (log-log), one panel per regime (weight decay and start), one line per
    alpha, each with its fitted m^-a (dashed) and a in the legend, and the top-m exact
    solution's loss (dotted), the weak-superposition limit."""
    kept = _kept(res)
    fits = tables.get(res, "scaling")
    regimes = _regimes(kept)
    alphas = sorted(kept["alpha_lab"].dropna().unique())
    cmap = plt.get_cmap("viridis")
    shade = {a: cmap(0.1 + 0.8 * i / max(len(alphas) - 1, 1)) for i, a in enumerate(alphas)}
    marks = flags(res)
    fig, axes = plt.subplots(1, len(regimes), figsize=(4.0 * max(len(regimes), 2), 5.2),
                             dpi=DPI, squeeze=False, sharey=True)
    for ax, (wd, init) in zip(axes[0], regimes):
        here = kept[(kept["weight_decay"] == wd) & (kept["weight_init"] == init)]
        for a in alphas:
            line = here[here["alpha_lab"] == a].sort_values("n_hidden")
            if line.empty:
                continue
            fit = fits[(fits["weight_decay"] == wd) & (fits["weight_init"] == init)
                       & (fits["alpha_lab"] == a)]
            a_fit = float(fit["exponent"].iloc[0]) if len(fit) else np.nan
            ci = ((float(fit["exponent_ci_lo"].iloc[0]), float(fit["exponent_ci_hi"].iloc[0]))
                  if len(fit) else (np.nan, np.nan))
            ax.plot(line["n_hidden"], line["loss"], "o-", color=shade[a], ms=4,
                    label=f"{_alpha_name(a)}: a = {a_fit:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]")
            if len(fit):
                m = np.geomspace(line["n_hidden"].min(), line["n_hidden"].max(), 20)
                ax.plot(m, np.exp(float(fit["log_prefactor"].iloc[0])) * m ** -a_fit, "--",
                        color=shade[a], lw=0.9)
                ax.plot(line["n_hidden"], line["exact_loss"], ":", color=shade[a], lw=1.4, alpha=0.7)
            bad = line[line["model"].isin(marks)]
            if len(bad):
                ring(ax, bad["n_hidden"], bad["loss"])
        ax.set(xscale="log", yscale="log", xlabel="width m",
               title=f"weight decay {wd:g}\n({_regime(wd, init)})")
        ax.plot([], [], ":", color="0.4", label="top-m exact solution (weak-superposition limit)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2),
                  title="fitted loss ~ m^-a (dashed), a [95% CI]",
                  title_fontsize=7)
    axes[0, 0].set_ylabel("loss (kept model of each m)")
    fig.suptitle(f"{title(res)}: loss against width, n = {int(kept['n_features'].iloc[0])}, "
                 f"p_i ~ i^-(1 + alpha_lab) = i^-alpha_paper", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def scaling_exponents(res):
    """The fitted exponent a over the (alpha, weight decay) grid, beside the top-m exact
    solution's and the share of features represented at the largest width; the paper's
    predictions are in the title: weak superposition a = alpha_paper - 1 (= alpha_lab), strong
    about 1 for flat frequencies and about 2 (alpha_paper - 1) for skewed ones."""
    fits = tables.get(res, "scaling").dropna(subset=["alpha_lab"])
    alphas = sorted(fits["alpha_lab"].unique())
    regimes = _regimes(fits)
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.9), dpi=DPI)
    top = colors.Normalize(0, max(2.0, fits["exponent"].max(), fits["exact_exponent"].max()))
    for ax, col, label, norm, cmap in (
            (axes[0], "exponent", "trained models: a (loss ~ m^-a)", top, "magma"),
            (axes[1], "exact_exponent", "top-m exact solution: a", top, "magma"),
            (axes[2], "represented_max_m", "features with ||W_i|| > 0.5, largest m",
             colors.Normalize(0, 1), "Blues")):
        grid = np.full((len(alphas), len(regimes)), np.nan)
        for _, row in fits.iterrows():
            j = regimes.index((row["weight_decay"], row["weight_init"]))
            grid[alphas.index(row["alpha_lab"]), j] = row[col]
        im = ax.imshow(grid, cmap=cmap, norm=norm, origin="lower", aspect="auto")
        for i in range(len(alphas)):
            for j in range(len(regimes)):
                v = grid[i, j]
                word = "" if np.isnan(v) else (f"{v:.0%}" if col.startswith("represented")
                                               else f"{v:.2f}")
                ax.text(j, i, word,
                        ha="center", va="center", fontsize=8,
                        color="white" if (not np.isnan(v) and norm(v) < 0.55) == (cmap == "magma")
                        else "black")
        ax.set(xticks=range(len(regimes)),
               xticklabels=[f"{wd:g}" + ("\nunit start" if init == "unit" else "")
                            for wd, init in regimes],
               yticks=range(len(alphas)),
               yticklabels=[f"{a:g} ({1 + a:g})" for a in alphas],
               xlabel="weight decay (negative: weight growth)",
               ylabel="alpha_lab (alpha_paper)", title=label)
        fig.colorbar(im, ax=ax, shrink=0.85)
    fig.suptitle(f"{title(res)}: the paper predicts a = alpha_paper - 1 = alpha_lab (weak "
                 f"superposition); about 1 for flat, about 2 (alpha_paper - 1) for skewed "
                 f"frequencies (strong, its Figure 5e)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig
