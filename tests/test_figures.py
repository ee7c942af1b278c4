"""The figure registry, the needs it declares, and drawing stored results (toysuper/figures/)."""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from toysuper import needs, store, tables
from toysuper.errors import ConfigError
from toysuper.figures import FIGURES, Figure, draw, geometry, privileged, style

RESULTS = Path(__file__).resolve().parents[1] / "results"
OLD_NAMES = {"feature_plane", "superposition_grid", "loss_curves", "phase_diagram",
             "neuron_weights", "computed_features", "asymmetric_motif", "dynamics",
             "structure_mix", "dims_per_feature", "feature_dims", "nonuniform_plane", "sets_plane"}


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


def test_registry_keeps_the_names_and_shape():
    assert set(FIGURES) == OLD_NAMES
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
        relu = style.KIND_TITLE["relu"]
        assert styles[0][relu] == styles[1][relu]  # ReLU alone or beside the linear model
        assert styles[0][style.KIND_TITLE["linear"]] != styles[0][relu]
        assert "line style: model kind" in figs[0].axes[0].get_legend().get_title().get_text()
    finally:
        plt.close("all")
