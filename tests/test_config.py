"""Experiment files: sweep expansion, overrides and the errors a user sees."""

import subprocess
import sys

import numpy as np
import pytest

from toysuper import config, settings
from toysuper.config import ConfigError


def resolve(raw, overrides=()):
    return config.resolve({"name": "t", **raw}, overrides)


def test_product_of_axes_in_order():
    cfg = resolve({"sweep": {"model.kind": ["linear", "relu"], "data": {"density": [1.0, 0.1]},
                             "train.seed": {"range": 3}}})
    models = config.expand(cfg)
    assert len(models) == 12
    assert [m["model.kind"] for m in models[:6]] == ["linear"] * 6
    assert [m["train.seed"] for m in models[:3]] == [0, 1, 2]
    assert models[3]["data.density"] == 0.1


def test_logspace_and_linspace_axes():
    assert config.axis_values("x", {"logspace": [1, 0.01], "num": 3}) == pytest.approx([1, 0.1, 0.01])
    assert config.axis_values("x", {"linspace": [0, 1], "num": 5}) == pytest.approx(
        [0, 0.25, 0.5, 0.75, 1])


def test_importance_forms():
    n = 4
    np.testing.assert_allclose(settings.feature_vector("data.importance", {"decay": 0.5}, n),
                               [1, 0.5, 0.25, 0.125])
    np.testing.assert_allclose(settings.feature_vector("data.importance", {"ratio": 10}, 3),
                               [1, 10 ** -0.5, 0.1])
    np.testing.assert_allclose(settings.feature_vector("data.importance", 2.0, n), [2.0] * 4)


def test_one_features_importance_can_be_swept():
    cfg = resolve({"model": {"n_features": 3, "n_hidden": 2},
                   "sweep": {"data.importance[-1]": [0.1, 10.0]}})
    imp, p = settings.feature_vectors(config.expand(cfg)[1])
    np.testing.assert_allclose(imp, [1, 1, 10])
    np.testing.assert_allclose(p, [1, 1, 1])


def test_set_overrides_and_fixes_a_swept_key():
    cfg = resolve({"sweep": {"data.density": [1.0, 0.1]}},
                  ["train.steps=2000", "data.density=0.5", "model.kind=linear"])
    assert cfg["train"]["steps"] == 2000 and cfg["model"]["kind"] == "linear"
    assert cfg["sweep"] == {} and config.expand(cfg)[0]["data.density"] == 0.5
    cfg = resolve({}, ["sweep.train.seed=[0, 1]"])
    assert len(config.expand(cfg)) == 2


def test_resolved_config_round_trips_through_toml():
    import tomllib
    cfg = resolve({"data": {"importance": {"decay": 0.7}, "density[-1]": 0.5},
                   "sweep": {"data.density": {"logspace": [1, 0.01], "num": 4}}})
    back = config.resolve(tomllib.loads(config.to_toml(cfg)))
    assert back == cfg


@pytest.mark.parametrize("raw, overrides, words", [
    ({"train": {"stepz": 5}}, (), ["train.stepz", "train.steps"]),
    ({}, ["model.widht=3"], ["model.widht", "model.n_hidden"]),
    ({"data": {"density": 1.5}}, (), ["data.density", "1.5", "(0, 1]"]),
    ({"data": {"density": 0}}, (), ["data.density", "(0, 1]"]),
    ({"sweep": {"data.density": [1.0, 0.0]}}, (), ["data.density", "0.0", "(0, 1]"]),
    ({"data": {"importance": [1, -1, 1, 1, 1]}, "model": {"n_features": 5}}, (),
     ["data.importance", "-1", ">= 0"]),
    ({"data": {"importance": [1, 1]}}, (), ["data.importance", "2 values", "n_features = 20"]),
    ({"model": {"n_features": 0}}, (), ["model.n_features", "0", "positive integer"]),
    ({"model": {"n_hidden": -2}}, (), ["model.n_hidden", "-2", "positive integer"]),
    ({"train": {"steps": 0}}, (), ["train.steps", "0", "positive integer"]),
    ({}, ["train.steps=150"], ["train.steps = 150", "multiple of train.log_every = 100"]),
    ({"model": {"kind": "mlp"}}, (), ["model.kind", "'mlp'", "linear", "relu"]),
    ({"sweep": {"data.density": {"logspace": [1, 0.01]}}}, (), ["data.density", "num"]),
    ({"data": {"density[7]": 0.5}, "model": {"n_features": 5}}, (), ["data.density[7]", "out of range"]),
    ({"tables": "phase"}, (), ["tables", "phase", "list"]),
    ({"train": {"eval": "exact"}}, (), ["train.eval", "'exact'", "sample", "strata"]),
    ({"train": {"eval": "strata", "batch": 1000}, "model": {"n_features": 3}}, (),
     ["train.eval_batch = 65536", "1000 x 2^3 = 8000"]),
    ({"colour": 1}, (), ["colour"]),
    ({}, ["nokey"], ["nokey", "dotted.key=value"]),
])
def test_bad_settings_name_key_value_and_what_is_allowed(raw, overrides, words):
    with pytest.raises(ConfigError) as e:
        resolve(raw, overrides)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")


@pytest.mark.parametrize("data, words", [
    ({"correlated": [[0]]}, ["data.correlated", "at least two"]),
    ({"correlated": [[0, 7]]}, ["data.correlated", "0..4"]),
    ({"correlated": [[0, 1]], "anticorrelated": [[1, 2]]}, ["[1]", "more than one set"]),
    ({"anticorrelated": [[0, 1, 2]], "density": 0.4}, ["[0, 1, 2]", "1.2 > 1"]),
])
def test_bad_feature_sets_are_named(data, words):
    with pytest.raises(ConfigError) as e:
        config.resolve({"model": {"n_features": 5}, "data": data})
    for w in words:
        assert w in str(e.value), str(e.value)


def test_an_anticorrelated_set_is_checked_at_every_swept_density():
    raw = {"model": {"n_features": 4}, "data": {"anticorrelated": [[0, 1]]},
           "sweep": {"data.density": [0.3, 0.6]}}
    with pytest.raises(ConfigError, match="1.2 > 1"):
        config.resolve(raw)


def test_sweep_cases_set_several_keys_together_and_are_checked_one_by_one():
    raw = {"model": {"n_features": 4, "n_hidden": 2}, "data": {"density": 0.05},
           "sweep": {"cases": [{"data.correlated": [[0, 1]]},
                               {"data": {"anticorrelated": [[0, 1]], "density": 0.1}}],
                     "train.seed": {"range": 2}}}
    models = config.expand(config.resolve(raw))
    assert [(m["sweep.case"], m["data.correlated"], m["data.anticorrelated"], m["data.density"])
            for m in models[::2]] == [(0, [[0, 1]], [], 0.05), (1, [], [[0, 1]], 0.1)]
    assert [m["train.seed"] for m in models] == [0, 1, 0, 1]
    # the stored TOML reads back to the same sweep
    again = config.resolve(tomllib_loads(config.to_toml(config.resolve(raw))))
    assert config.expand(again) == models
    bad = dict(raw, sweep={"cases": [{"data.correlated": [[0, 1]]}, {"data.anticorrelated": [[0, 1]],
                                                                      "data.density": 0.6}]})
    with pytest.raises(ConfigError, match=r"sweep case 1 .*1.2 > 1"):
        config.resolve(bad)
    with pytest.raises(ConfigError, match="cases.*list of tables"):
        config.resolve(dict(raw, sweep={"cases": [1, 2]}))


def tomllib_loads(text):
    import tomllib
    raw = tomllib.loads(text)
    raw.pop("version", None)
    return raw


def test_sweep_cases_can_be_given_on_the_command_line():
    cfg = resolve({"model": {"n_features": 4}},
                  ['sweep.cases=[{"data.correlated" = [[0, 1]]}, {"data.density" = 0.5}]'])
    models = config.expand(cfg)
    assert [(m["data.correlated"], m["data.density"]) for m in models] == [([[0, 1]], 1.0), ([], 0.5)]


@pytest.mark.parametrize("raw, words", [
    ({"figures": ["nope"]}, ["figures", "nope", "feature_plane"]),
    ({"tables": ["nope"]}, ["tables", "nope", "phase"]),
    ({"figures": ["feature_plane"]}, ["figure 'feature_plane'", "model.n_hidden", "5"]),
    ({"figures": ["phase_diagram"]}, ["table 'phase'", "model.n_features", "20"]),
])
def test_figures_and_tables_are_checked_against_their_registries_and_needs(raw, words):
    """Names and needs are read before training (outputs.check), not found while drawing."""
    from toysuper import outputs

    cfg = config.resolve(raw)
    with pytest.raises(ConfigError) as e:
        outputs.check(cfg, config.expand(cfg))
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_importing_config_does_not_import_matplotlib():
    code = "import sys, toysuper.config; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_every_setting_has_one_declaration_that_defaults_and_checks_derive_from():
    cfg = config.resolve({})
    for s in settings.TABLE:
        section, name = s.key.split(".")
        assert cfg[section][name] == s.default
        settings.check_value(s.key, s.default, {"model.n_features": 20})  # defaults pass
        assert s.role in ("shape", "model", "host")
    from toysuper import train
    shape = train.Shape.of(config.expand(cfg)[0])
    assert {f: getattr(shape, f) for f in settings.SHAPE_FIELDS} == {
        f: settings.BY_KEY[k].default for f, k in settings.SHAPE_FIELDS.items()}


NUMERIC = [(family, s.key) for family, table in (("toys", settings.TABLE), ("saes", settings.SAE_TABLE))
           for s in table if isinstance(s.default, (int, float)) and not isinstance(s.default, bool)]


@pytest.mark.parametrize("family, key", NUMERIC, ids=[f"{f}:{k}" for f, k in NUMERIC])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=str)
def test_nan_and_inf_are_refused_for_every_numeric_setting(family, key, bad):
    """nan and inf are valid TOML; every numeric setting refuses them in one line naming it
    (train.lr = nan once trained a NaN model whose results could never be resumed)."""
    base = {"sae": {"width": 8}, "source": {"n_features": 8, "n_hidden": 4}} if family == "saes" else {}
    with pytest.raises(ConfigError) as e:
        resolve(base, [f"{key}={bad}"])
    assert key in str(e.value) and "\n" not in str(e.value)


def test_an_experiment_name_is_never_a_path():
    for name in ("../up", ".hidden", "a/b", "..", ""):
        with pytest.raises(ConfigError, match="may not start with '.'"):
            resolve({"name": name})
    assert resolve({"name": "ok.v2-x_y"})["name"] == "ok.v2-x_y"
