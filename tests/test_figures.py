"""The figure registry, the needs it declares, and drawing stored results (toysuper/figures/)."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

import toysuper
from toysuper import needs, optima, store, tables
from toysuper.errors import ConfigError
from toysuper.figures import FIGURES, Figure, draw, geometry, privileged, render, style

RESULTS = Path(__file__).resolve().parents[1] / "results"
OLD_NAMES = {"feature_plane", "superposition_grid", "loss_curves", "phase_diagram",
             "neuron_weights", "computed_features", "asymmetric_motif", "dynamics",
             "structure_mix", "dims_per_feature", "feature_dims", "nonuniform_plane", "sets_plane",
             "vulnerability", "adversarial_training", "double_descent", "memorization_planes",
             "width_scaling", "scaling_exponents", "llc_kgons", "llc_traces"}


def stored(name):
    if not (RESULTS / name / "summary.json").exists():
        pytest.skip(f"no stored results/{name}")
    return store.load(RESULTS / name)


def sweep(**changes):
    """Flat settings of a 3-model sweep over data.density, n = 5 features in m = 2, with `changes`
    (a list value gives each model its own)."""
    base = {"model.kind": "relu", "model.n_features": 5, "model.n_hidden": 2,
            "data.density": 0.1, "data.importance": 1.0, "train.snapshots": 0}
    models = [dict(base, **{"data.density": p}) for p in (0.3, 0.1, 0.03)]
    for key, value in changes.items():
        for i, s in enumerate(models):
            s[key] = value[i] if isinstance(value, list) else value
    return models


SAE_NAMES = {"sae_dictionary", "sae_matched", "sae_angles", "sae_absorption"}


def test_registry_keeps_the_names_and_shape():
    assert set(FIGURES) == OLD_NAMES | SAE_NAMES
    assert {name for name, fig in FIGURES.items() if fig.family == "saes"} == SAE_NAMES
    for name, fig in FIGURES.items():
        assert isinstance(fig, Figure) and callable(fig.draw) and fig.doc, name
        assert all(isinstance(n, needs.Need) for n in fig.needs), name
        assert set(fig.tables) <= set(tables.DERIVED), name
    assert FIGURES["phase_diagram"].tables == ("phase",)
    assert FIGURES["computed_features"].tables == ("computation", "neurons")
    assert FIGURES["structure_mix"].tables == ("structures",)


BAD = [  # (figure, a sweep it cannot draw, words the error must hold)
    ("feature_plane", sweep(**{"model.n_hidden": [2, 2, 3]}), "model.n_hidden"),
    ("sets_plane", sweep(**{"model.n_hidden": 5}), "model.n_hidden"),
    ("nonuniform_plane", sweep(**{"model.n_hidden": 3, "data.importance[0]": [0.5, 1, 2]}),
     "model.n_hidden"),
    ("nonuniform_plane", sweep(), '"data.importance[0]" = {logspace = [0.2, 5], num = 12}'),
    ("nonuniform_plane", sweep(**{"data.importance[0]": 2.0}), "none"),  # set, not swept
    ("nonuniform_plane", sweep(**{"data.importance[0]": [0.5, 1, 2], "data.density[-1]": [0.1, 0.2, 0.3]}),
     "data.density[-1]"),
    ("dynamics", sweep(), "train.snapshots"),
    ("dynamics", sweep(**{"train.snapshots": [20, 20, 0]}), "train.snapshots"),
    ("asymmetric_motif", sweep(**{"model.kind": ["relu", "privileged", "linear"]}), "abs"),
    ("double_descent", sweep(**{"data.dataset_size": [10, 0, 100]}), "data.dataset_size"),
    ("memorization_planes", sweep(**{"data.dataset_size": 10, "model.n_hidden": 3}),
     "model.n_hidden"),
    ("width_scaling", sweep(**{"model.n_hidden": [10, 20, 10]}), "model.n_hidden = [10, 20]"),
]


@pytest.mark.parametrize("name,settings,words", BAD)
def test_needs_reject_a_sweep_naming_the_figure(name, settings, words):
    with pytest.raises(ConfigError) as err:
        needs.check(FIGURES[name].needs, settings, f"figure '{name}'")
    assert f"figure '{name}'" in str(err.value) and words in str(err.value)


@pytest.mark.parametrize("name,settings", [
    ("feature_plane", sweep()),
    ("sets_plane", sweep()),
    ("nonuniform_plane", sweep(**{"data.importance[0]": [0.5, 1, 2]})),
    ("nonuniform_plane", sweep(**{"data.density[-1]": [0.5, 1, 2], "data.importance[0]": 3.0})),
    ("dynamics", sweep(**{"train.snapshots": 20})),
    ("asymmetric_motif", sweep(**{"model.kind": ["relu", "abs", "abs"]})),
    ("loss_curves", sweep(**{"model.n_hidden": 7})),
    ("double_descent", sweep(**{"data.dataset_size": [10, 30, 100]})),
    ("scaling_exponents", sweep(**{"model.n_hidden": [10, 20, 40]})),
])
def test_needs_accept_a_sweep_that_can_be_drawn(name, settings):
    needs.check(FIGURES[name].needs, settings, f"figure '{name}'")


def test_importing_figures_selects_agg():
    code = "import matplotlib, toysuper.figures; print(matplotlib.get_backend())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "MPLBACKEND": "svg"})
    assert out.stdout.strip().lower() == "agg"


def test_draw_writes_pngs_atomically_and_closes_them(tmp_path):
    res = stored("correlated")
    plt.close("all")
    paths = draw(res, ["sets_plane", "loss_curves"], tmp_path / "figs")
    assert [p.name for p in paths] == ["sets_plane.png", "loss_curves.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(f.name for f in (tmp_path / "figs").iterdir()) == ["loss_curves.png", "sets_plane.png"]
    assert plt.get_fignums() == []
    with pytest.raises(ConfigError, match="no_such_figure"):
        draw(res, ["no_such_figure"], tmp_path)


def _legend_texts(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_seed_wording_only_where_cells_hold_several_seeds():
    one = FIGURES["dims_per_feature"].draw(stored("geometry_n200"))  # one seed per density
    several = FIGURES["dims_per_feature"].draw(stored("geometry"))   # two
    try:
        assert not any("lowest-loss" in t or "every seed" in t for t in _legend_texts(one))
        assert any("lowest-loss seed" in t for t in _legend_texts(several))
        assert "every seed" in _legend_texts(several)
    finally:
        plt.close("all")


def test_one_seed_and_best_models():
    import pandas as pd
    models = pd.DataFrame({"density": [0.1, 0.1, 0.3], "loss": [2.0, 1.0, 5.0], "model": [0, 1, 2]})
    assert not style.one_seed(models, ["density"])
    assert style.one_seed(models.iloc[1:], ["density"])
    assert list(style.best_models(models, ["density"])["model"]) == [1, 2]


def test_spread_keeps_labels_apart_and_isolated_ones_in_place():
    y = np.array([1, 3 / 4, 2 / 3, 1 / 2, 2 / 5, 3 / 8, 1 / 3])
    at = style.spread(y, 0.05)
    assert np.diff(np.sort(at)).min() >= 0.05 - 1e-12
    assert at[0] == 1 and at[3] == 0.5       # far from the others: not moved
    assert np.argsort(at).tolist() == np.argsort(y).tolist()  # order kept


def test_coincident_features_share_one_label():
    W = np.array([[1.0, 0.99, 0.0, -1.0], [0.0, 0.05, 1.0, 0.0]])
    assert geometry._label_groups(W, close=0.12) == [[0, 1], [2], [3]]


def test_neurons_rescaled_and_ordered_by_their_top_feature():
    W = np.array([[0.1, 0.0, 4.0],     # top feature 2 (least important)
                  [0.0, -2.0, 0.5],    # top feature 1
                  [3.0, 0.2, 0.0],     # top feature 0 (most important)
                  [1.5, 0.0, 0.1]])    # also feature 0, smaller
    scaled = privileged.per_neuron_scale(W)
    assert np.allclose(np.abs(scaled).max(axis=1), 1)
    assert privileged.neuron_order(W, importance=[1.0, 0.8, 0.6]).tolist() == [2, 3, 1, 0]


def test_loss_curves_line_style_means_kind_in_every_experiment():
    figs = [FIGURES["loss_curves"].draw(stored(name)) for name in ("superposition", "intro")]
    try:
        styles = [{t.get_text(): h.get_linestyle() for t, h in
                   zip(f.axes[0].get_legend().get_texts(), f.axes[0].get_legend().legend_handles)}
                  for f in figs]
        relu = style.kind_title("relu")
        assert styles[0][relu] == styles[1][relu]  # ReLU alone or beside the linear model
        assert styles[0][style.kind_title("linear")] != styles[0][relu]
        assert "line style: model kind" in figs[0].axes[0].get_legend().get_title().get_text()
    finally:
        plt.close("all")


# Flagged models (trapped / local minimum, toysuper/optima.py): marks and the footnote.

def _footnote(fig):
    """The footnote render() adds: the lowest figure text."""
    return min(fig.texts, key=lambda t: t.get_position()[1])


def _panel_words(fig):
    """The words of style.mark_panel in panel corners, and in titles turned red."""
    corner = [t.get_text() for ax in fig.axes for t in ax.texts if t.get_color() == style.FLAG]
    titles = [ax.get_title().split("\n")[-1] for ax in fig.axes
              if ax.get_title() and ax.title.get_color() == style.FLAG]
    return corner + titles


def _forced(res, trapped=(), local=()):
    """`res` with these models' flags set in its derived tables (copies; the rest kept)."""
    verdicts, cells = tables.get(res, "optima").copy(), tables.get(res, "neighbours").copy()
    verdicts.loc[verdicts["model"].isin(trapped), "trapped"] = True
    cells.loc[cells["model"].isin(local), "local_minimum"] = True
    res.derived["optima"], res.derived["neighbours"] = verdicts, cells
    return res


def test_clean_result_footnote_says_nothing_is_flagged():
    res = stored("intro")
    assert not res.derived["optima"]["trapped"].any() and style.flags(res) == {}
    fig = render(res, "feature_plane")
    try:
        note = _footnote(fig)
        assert note.get_text().startswith(f"checked: all {len(res.models)} models beat their "
                                          f"trivial baselines")
        assert "none of" in note.get_text() and note.get_color() == "0.45"
        assert _panel_words(fig) == []
    finally:
        plt.close("all")


def test_forced_flags_are_marked_on_panels_and_counted_in_the_footnote():
    res = stored("intro")
    kept = optima.kept_models(res)
    a, b, c = kept[0], kept[1], kept[-1]
    _forced(res, trapped=[a, c], local=[b, c])
    assert style.flags(res) == {a: "trapped", b: "local minimum", c: "trapped, local minimum"}
    figs = {name: render(res, name) for name in ("feature_plane", "loss_curves", "structure_mix")}
    try:
        note = _footnote(figs["feature_plane"])
        assert note.get_color() == style.FLAG
        text = note.get_text().replace("\n", " ")
        assert f"2 of {len(res.models)} models trapped" in text
        assert f"2 of {len(kept)} sweep cells' kept models at a local minimum" in text
        assert "optima.parquet" in text and "neighbours.parquet" in text
        assert sorted(_panel_words(figs["feature_plane"])) == ["local minimum", "trapped",
                                                             "trapped, local minimum"]
        assert any("red halo" in t for t in _legend_texts(figs["loss_curves"]))
        red = [t.get_text() for t in figs["structure_mix"].axes[0].get_xticklabels()
               if t.get_color() == style.FLAG]
        assert len(red) == 3
    finally:
        plt.close("all")


def test_local_minima_are_marked_on_panels_and_rings():
    res = stored("nonuniform")  # clean since its retraining: two kept models flagged by hand
    local = set(optima.kept_models(res)[13:15])
    _forced(res, local=local)
    assert {m for m, f in style.flags(res).items() if "local minimum" in f} == local
    fig = render(res, "nonuniform_plane")
    try:
        assert _panel_words(fig).count("local minimum") == len(local)  # one panel per cell
        ringed = [c for ax in fig.axes for c in ax.collections
                  if len(c.get_edgecolor()) and np.allclose(c.get_edgecolor()[0][:3],
                                                            plt.matplotlib.colors.to_rgb(style.FLAG))]
        assert sum(len(c.get_offsets()) for c in ringed) == len(local)
    finally:
        plt.close("all")


def test_a_trapped_seed_that_was_not_kept_is_counted_in_grey():
    res = stored("privileged_basis")
    loser = int(res.models.loc[~res.models["model"].isin(optima.kept_models(res)), "model"].iloc[0])
    _forced(res, trapped=[loser])
    text, flagged = style.footnote_text(res)
    assert not flagged and "all 7 kept models beat their trivial baselines" in text
    assert "runs, none kept, did not" in text


def test_footnote_adds_room_below_what_is_drawn():
    """Neither a constrained layout's supxlabel nor fixed axes end up under the footnote."""
    free = plt.figure(figsize=(4, 3))
    free.add_axes([0.15, 0.15, 0.8, 0.75]).set_xlabel("x")  # the label just above the edge
    laid, _ = plt.subplots(figsize=(4, 3), layout="constrained")
    laid.supxlabel("a supxlabel")
    try:
        for fig in (free, laid):
            height = fig.get_figheight()
            style.footnote(fig, "a footnote " * 30, flagged=False)  # wraps to more than one line
            assert fig.get_figheight() > height
            fig.draw_without_rendering()
            renderer = fig.canvas.get_renderer()
            note = _footnote(fig)
            box = note.get_window_extent(renderer)
            others = [t.get_window_extent(renderer) for t in fig.texts if t is not note]
            others += [ax.get_tightbbox(renderer) for ax in fig.axes]
            assert all(box.y1 <= o.y0 + 1 for o in others), fig
            assert box.y0 >= 0
    finally:
        plt.close("all")


def test_in_memory_results_compute_the_tables_for_the_footnote():
    cfg = {"name": "tiny", "model": {"kind": "relu", "n_features": 5, "n_hidden": 2},
           "train": {"steps": 200, "batch": 256, "log_every": 50, "eval_batch": 1024,
                     "lr": 3e-3},
           "sweep": {"data.density": [1.0, 0.3]}}
    res = toysuper.train_sweep(cfg)
    assert "optima" not in res.derived
    fig = render(res, "loss_curves")
    try:
        assert {"optima", "neighbours"} <= set(res.derived)
        assert "models" in _footnote(fig).get_text() and "baseline" in _footnote(fig).get_text()
    finally:
        plt.close("all")


def test_sae_figures_draw_stored_sae_results_and_count_the_losers(tmp_path):
    """sae_angles from results/sae_intro: drawn with a footnote that counts the SAEs losing to
    the trivial solution, in red when there are any (as stored there: 3)."""
    res = stored("sae_intro")
    losing = int((~res.saes["beats_trivial"]).sum())
    text, flagged = style.footnote_text(res)
    assert flagged == (losing > 0) and f"{losing} of {len(res.saes)}" in text
    (png,) = draw(res, ["sae_angles"], tmp_path)
    assert png.stat().st_size > 10_000


def test_a_toy_figure_is_refused_for_an_sae_experiment():
    from toysuper import config, outputs

    cfg = config.resolve({"name": "s", "sae": {"width": 8}, "figures": ["loss_curves"],
                                  "source": {"n_features": 8, "n_hidden": 4}})
    with pytest.raises(ConfigError, match="loss_curves.*sae_dictionary"):
        outputs.figure_names(cfg)


def test_llc_traces_draw_every_chain_with_its_verdict(tmp_path, monkeypatch):
    """The traces are not stored, so the figure runs the chains again: here at the stored
    estimates' own step (eps), chain count and burn-in, 300 steps, one round (the figure's
    mechanics, not the procedure, which tests/test_llc.py checks)."""
    from toysuper import llc_models

    res = stored("llc_kgons")
    kept = tables.get(res, "llc")
    monkeypatch.setattr(llc_models, "SAMPLER", llc_models.SAMPLER._replace(
        eps=float(kept["eps"].min()), chains=int(kept["chains"].max()),
        burn_in=int(kept["burn_in"].max()), draws=300, rounds=1))
    fig = render(res, "llc_traces")
    per_model = tables.get(res, "llc")
    drawn = [ax for ax in fig.axes if ax.get_title()]
    assert len(drawn) == min(len(per_model), 6)
    for ax, (_, row) in zip(drawn, per_model.iterrows()):
        assert row["verdict"] in ax.get_title() and f"model {int(row['model'])}" in ax.get_title()
        assert len(ax.lines) >= int(row["chains"])  # a line per chain, then the estimate
