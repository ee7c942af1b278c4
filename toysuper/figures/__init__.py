"""Paper-style figures, drawn only from a stored results directory (store.Results).

One module per section of the paper: intro (1), superposition (2), phase_change (3),
geometry (4), dynamics (5), adversarial (6), privileged (7), computation (8), and training (loss
curves, for any section); style holds what they share. Where a cell of a sweep holds several
seeds a figure shows the lowest-loss model, the paper's practice of keeping the best of several
runs, and says so; with one seed per cell it does not mention seeds.

Every figure marks in red a model it shows that is trapped (loss above a trivial exact solution)
or, as a cell's kept model, at a local minimum (toysuper/optima.py; style.flags, mark_panel,
ring), and draw() adds a footnote counting them over the whole result, in grey when none is.

FIGURES registers each figure by name. An experiment lists the ones it wants in
`figures = [...]`; `toysuper run` checks every listed figure's `needs` on the sweep's settings
before training, and `toysuper plot DIR` redraws the figures from the stored results.

To add a figure:
  1. write `def my_figure(res) -> matplotlib.figure.Figure` in the module of its section (a
     function of the stored results only: never train, never write files; take colours, kind
     names and best_models from style.py);
  2. read derived tables with `toysuper.tables.get(res, NAME)`, never by recomputing them;
  3. register it below: `"my_figure": Figure(section.my_figure, needs, tables, doc)`, where
     `needs` are toysuper.needs items for what it requires of the sweep (n_hidden = 2, snapshots,
     a model kind, ...) so a sweep it cannot draw is refused before training, rather than
     raising while drawing, and `tables` names the derived tables (toysuper.tables.DERIVED) it
     reads;
  4. draw it from a stored result into a scratch folder and look at it (tests/test_figures.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")  # figures go to files; no display is assumed. Before pyplot is imported.

from toysuper import needs
from toysuper.errors import ConfigError
from toysuper.figures import (
    adversarial,
    computation,
    dynamics,
    finite_data,
    geometry,
    intro,
    llc,
    phase_change,
    privileged,
    saes,
    superposition,
    training,
    width_scaling,
)
from toysuper.figures.style import footnote, footnote_text, save


class Figure(NamedTuple):
    draw: Callable          # Results -> matplotlib Figure
    needs: tuple = ()       # toysuper.needs.Need items, checked on the sweep's settings before training
    tables: tuple = ()      # names of derived tables (toysuper.tables.DERIVED) the figure reads
    doc: str = ""
    family: str = "toys"    # the experiments it draws: "toys" (toy models) or "saes" (SAE sweeps)


PLANE = needs.every("model.n_hidden", [2], "model.n_hidden = 2 (a hidden plane)")
ONE_SWEPT_FEATURE = needs.rule(
    'exactly one swept per-feature setting, e.g. [sweep] "data.importance[0]" = '
    '{logspace = [0.2, 5], num = 12}',
    lambda settings: len(geometry.swept_feature_settings(settings)) == 1,
    lambda settings: f"swept per-feature settings: {geometry.swept_feature_settings(settings) or 'none'}")
SNAPSHOTS = needs.every("train.snapshots",
                        lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
                        "train.snapshots > 0 (weights saved during training)")
# the asymmetric motif is the |x| computation model's own science (section 8): named by its kind
COMPUTATION = needs.some("model.kind", ["abs"], "a computation model (model.kind = 'abs')")
ADVERSARIAL_TRAINING = needs.some("train.adversarial_steps", lambda v: isinstance(v, int) and v > 0,
                                  "a model trained on attacked inputs (train.adversarial_steps > 0)")

FIGURES = {
    "feature_plane": Figure(intro.feature_plane, (PLANE,), (),
                            "section 1: the features in a 2-D hidden plane, per kind and density"),
    "superposition_grid": Figure(superposition.superposition_grid, (), (),
                                 "section 2: W^T W, b and ||W_i|| by superposition, per kind and density"),
    "loss_curves": Figure(training.loss_curves, (), (),
                          "training loss of every model; colour density, line style model kind"),
    "phase_diagram": Figure(phase_change.phase_diagram, (), ("phase",),
                            "section 3: the extra feature's phase over (r, p), theory and trained"),
    "neuron_weights": Figure(privileged.neuron_weights, (), ("neurons",),
                             "sections 7-8: each neuron's input weights by feature, per density"),
    "computed_features": Figure(computation.computed_features, (), ("computation", "neurons"),
                                "section 8: features computed and monosemantic neurons per density"),
    "asymmetric_motif": Figure(computation.asymmetric_motif, (COMPUTATION,), ("motifs",),
                               "section 8: asymmetric superposition motifs and their clearest case"),
    "dynamics": Figure(dynamics.dynamics, (SNAPSHOTS,), (),
                       "section 5: loss and feature dimensionalities over training"),
    "structure_mix": Figure(geometry.structure_mix, (), ("structures",),
                            "section 4: share of features in each structure, per density"),
    "dims_per_feature": Figure(geometry.dims_per_feature, (), (),
                               "section 4: dimensions per feature D* against 1/(1-S)"),
    "feature_dims": Figure(geometry.feature_dims, (), (),
                           "section 4: every feature's dimensionality D_i against 1/(1-S)"),
    "nonuniform_plane": Figure(geometry.nonuniform_plane, (PLANE, ONE_SWEPT_FEATURE), (),
                               "section 4: the hidden plane as one feature's setting is swept"),
    "sets_plane": Figure(geometry.sets_plane, (PLANE,), (),
                         "section 4: correlated and anticorrelated feature sets in the plane"),
    "vulnerability": Figure(adversarial.vulnerability, (), ("adversarial",),
                            "section 6: vulnerability to the worst small perturbation against "
                            "1-S, beside features per dimension 1/D*"),
    "adversarial_training": Figure(
        adversarial.adversarial_training, (ADVERSARIAL_TRAINING,), ("adversarial",),
        "section 6: features per dimension, vulnerability and clean loss of models trained on "
        "attacked inputs against clean ones"),
    "double_descent": Figure(finite_data.double_descent, finite_data.NEEDS, ("datapoints",),
                             "finite data: test and training loss against the training set's "
                             "size T, feature and training point dimensionality"),
    "memorization_planes": Figure(finite_data.memorization_planes, (PLANE, *finite_data.NEEDS), (),
                                  "finite data: training points' hidden vectors and features in "
                                  "the plane for a few T"),
    "width_scaling": Figure(width_scaling.width_scaling, width_scaling.NEEDS, ("scaling",),
                            "width scaling: loss against m per weight decay and alpha, with fits"),
    "scaling_exponents": Figure(width_scaling.scaling_exponents, width_scaling.NEEDS, ("scaling",),
                                "width scaling: fitted exponent and represented features over "
                                "the (alpha, weight decay) grid"),
    "llc_traces": Figure(llc.llc_traces, (), ("llc", "llc_traces"),
                         "LLC: every SGLD chain's loss gap over its steps, per model, with verdicts"),
    "llc_kgons": Figure(llc.llc_kgons, (SNAPSHOTS, PLANE), ("llc_snapshots", "llc_kgons"),
                        "LLC: loss and LLC of every snapshot over training, coloured by the "
                        "structure k, with the regular k-gons' values (Chen et al. 2023)"),
    "sae_dictionary": Figure(saes.sae_dictionary, (), ("sae_metrics",),
                             "SAEs: MMCS, MCC, dead latents and L0 against d_sae/n, per kind and sparsity",
                             "saes"),
    "sae_matched": Figure(saes.sae_matched, (), ("sae_metrics",),
                          "SAEs: the kinds compared only where their L0 matches the true L0", "saes"),
    "sae_angles": Figure(saes.sae_angles, (needs.every("source.n_hidden", [2], "source.n_hidden = 2 "
                                                       "(a 2-D activation plane)"),), ("sae_metrics",),
                         "SAEs: decoder directions over the true features in a 2-D plane", "saes"),
    "sae_absorption": Figure(saes.sae_absorption, (needs.some(
        "data.hierarchy", lambda v: bool(v), "a data.hierarchy (parent and child features)"),),
        ("sae_metrics", "chanin_absorption"),
        "SAEs: absorption of a parent feature by its children, against sparsity", "saes"),
}


def render(res, name: str):
    """Figure `name` of `res` as drawn, with the footnote on trapped and local-minimum models
    (read from the derived tables "optima" and "neighbours", which every run makes)."""
    fig = FIGURES[name].draw(res)
    footnote(fig, *footnote_text(res))
    return fig


def draw(res, names, folder, each=lambda name: None) -> list[Path]:
    """Draw the named figures of `res` (render) into folder/NAME.png; return their paths.

    Each is written to a temporary name and renamed into place, and closed once saved;
    `each(name)` after each one (a progress bar).
    """
    unknown = [name for name in names if name not in FIGURES]
    if unknown:
        raise ConfigError(f"unknown figure(s) {unknown}; known: {', '.join(FIGURES)}")
    folder = Path(folder)
    # a results folder's figures are its own: never drawn through a link out of it or over a file
    own = folder.parent.resolve()
    if (folder.exists() or folder.is_symlink()) and not (
            folder.is_dir() and folder.resolve().is_relative_to(own)):
        raise ConfigError(f"cannot draw into '{folder}': it is {_what(folder)}, not a folder of "
                          f"'{folder.parent}'; remove it and run again")
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (png := folder / f"{name}.png").is_dir() and not png.is_symlink():
            raise ConfigError(f"cannot draw '{png}': it is a folder; remove it and run again")
    drawn = []
    for name in names:
        drawn.append(save(render(res, name), folder / f"{name}.png"))
        each(name)
    return drawn


def _what(path: Path) -> str:
    if path.is_symlink():
        return f"a link to '{os.readlink(path)}'"
    return "a file" if path.exists() else "missing"
