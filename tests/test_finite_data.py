"""Finite training sets (data.dataset_size), unit-norm samples, and what the width-scaling study
needs: power-law densities, U[0, 2] magnitudes and negative weight decay (weight growth)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

from toysuper import config, engine, finite_data, metrics, optima, scaling, settings, train
from toysuper.errors import ConfigError
from toysuper.results import Results


def _shape_hp(overrides, n=20, m=5):
    cfg = config.resolve({"name": "t", "model": {"n_features": n, "n_hidden": m}, **overrides})
    s = config.expand(cfg)[0]
    return train.Shape.of(s), train.inputs([s], 1), s


def test_power_law_density_sums_to_the_expected_active_count_with_the_stated_exponent():
    p = settings.feature_vector("data.density", {"power": 1.0, "active": 1.5}, 100)
    assert p.sum() == pytest.approx(1.5)
    assert p[0] / p[1] == pytest.approx(2 ** 2.0) and p[9] / p[99] == pytest.approx(10 ** 2.0)
    assert settings.feature_vector("data.density", {"power": 0.5}, 10).sum() == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="feature 0's density .* > 1"):
        settings.feature_vector("data.density", {"power": 2.0, "active": 5.0}, 10)
    with pytest.raises(ConfigError, match=r"\{power = alpha\}"):
        settings.feature_vector("data.density", {"powr": 1.0}, 10)


def test_uniform_0_2_law_has_mean_one_and_the_declared_moments():
    shape, hp, _ = _shape_hp({"data": {"law": "uniform_0_2", "density": 1.0},
                              "train": {"batch": 20_000}})
    x = np.asarray(train.draw(shape, jax.random.PRNGKey(3), _one(hp)))
    assert 0 <= x.min() and x.max() < 2
    assert x.mean() == pytest.approx(1.0, abs=0.01) and (x ** 2).mean() == pytest.approx(4 / 3, abs=0.01)


def _one(hp):
    return jax.tree.map(lambda a: a[0], hp)


def test_non_negative_decay_is_optax_adamw_exactly():
    shape, hp, _ = _shape_hp({"train": {"weight_decay": 0.05, "lr": 0.01}})
    hp = _one(hp)
    rng = np.random.default_rng(0)
    params = {"params": {"W": jnp.asarray(rng.normal(size=(5, 20)), jnp.float32),
                         "b": jnp.asarray(rng.normal(size=20), jnp.float32)}}
    grads = jax.tree.map(lambda a: a * 0.3 + 0.1, params)
    ours, ref = train._optimizer(shape, hp), optax.adamw(0.01, weight_decay=0.05)
    u1, _ = ours.update(grads, ours.init(params), params)
    u2, _ = ref.update(grads, ref.init(params), params)
    for a, b in zip(jax.tree.leaves(u1), jax.tree.leaves(u2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_negative_decay_pulls_every_feature_column_to_unit_norm_and_leaves_the_bias():
    shape, hp, _ = _shape_hp({"train": {"weight_decay": -1.0, "lr": 0.05}}, n=3, m=2)
    hp = _one(hp)
    W = jnp.array([[0.3, 2.0, 0.0], [0.0, 0.0, 1.0]], jnp.float32)  # norms 0.3, 2, 1
    params = {"params": {"W": W, "b": jnp.array([0.5, -0.5, 0.2], jnp.float32)}}
    opt = train._optimizer(shape, hp)
    state = opt.init(params)
    zero = jax.tree.map(jnp.zeros_like, params)
    for _ in range(200):  # no loss gradient: the decay alone acts
        updates, state = opt.update(zero, state, params)
        params = optax.apply_updates(params, updates)
    norms = metrics.norms(np.asarray(params["params"]["W"]))
    np.testing.assert_allclose(norms, 1.0, atol=0.02)
    np.testing.assert_array_equal(params["params"]["b"], np.float32([0.5, -0.5, 0.2]))


def test_decay_bias_false_decays_the_weights_only():
    shape, hp, _ = _shape_hp({"train": {"weight_decay": 0.5, "decay_bias": False}})
    hp = _one(hp)
    params = {"params": {"W": jnp.ones((5, 20)), "b": jnp.ones(20)}}
    zero = jax.tree.map(jnp.zeros_like, params)
    opt = train._optimizer(shape, hp)
    updates, _ = opt.update(zero, opt.init(params), params)
    assert float(jnp.abs(updates["params"]["b"]).max()) == 0.0
    assert float(updates["params"]["W"].max()) < 0


def test_negative_decay_is_refused_for_the_untied_model_and_bad_values_name_the_key():
    base = {"name": "t", "model": {"kind": "abs"}, "data": {"law": "signed"},
            "train": {"weight_decay": -0.5}}
    with pytest.raises(ConfigError, match="train.weight_decay = -0.5: a negative decay"):
        config.resolve(base)
    with pytest.raises(ConfigError, match="data.dataset_size = -3 must be an integer >= 0"):
        config.resolve({"name": "t", "data": {"dataset_size": -3}})
    with pytest.raises(ConfigError, match="data.unit_norm = 'yes' must be true or false"):
        config.resolve({"name": "t", "data": {"unit_norm": "yes"}})


@pytest.mark.parametrize("n,m", [(20, 5), (200, 20)])  # columns and rows layouts
def test_training_set_is_fixed_unit_norm_and_minibatches_come_from_it(n, m):
    shape, hp, _ = _shape_hp({"data": {"dataset_size": 40, "unit_norm": True, "density": 0.3},
                              "train": {"batch": 16}}, n=n, m=m)
    hp = _one(hp)
    X = np.asarray(train.dataset(shape, hp))
    X = X.T if shape.columns else X
    np.testing.assert_array_equal(X, np.asarray(train.dataset(shape, hp)).T if shape.columns
                                  else np.asarray(train.dataset(shape, hp)))
    norms = np.linalg.norm(X, axis=1)
    assert X.shape == (40, n) and np.allclose(norms[norms > 0], 1.0, atol=1e-5)
    rows = {tuple(r) for r in np.round(X, 6)}
    idx = jax.random.randint(jax.random.PRNGKey(1), (16,), 0, 40)
    batch = np.asarray(train._examples(shape, train.dataset(shape, hp), idx))
    batch = batch.T if shape.columns else batch
    assert all(tuple(r) in rows for r in np.round(batch, 6))
    fresh = np.asarray(train.draw(shape, jax.random.PRNGKey(9), hp))
    assert np.allclose(np.linalg.norm(fresh, axis=0 if shape.columns else 1)[
        np.abs(fresh).sum(axis=0 if shape.columns else 1) > 0], 1.0, atol=1e-5)


def test_a_small_training_set_is_memorised_and_judged_on_its_own_loss():
    cfg = {"name": "memo", "model": {"n_features": 30, "n_hidden": 2},
           "data": {"density": 0.1, "dataset_size": 4, "unit_norm": True},
           "train": {"steps": 1500, "batch": 64, "log_every": 100, "lr": 0.01,
                     "eval_batch": 4096, "schedule": "cosine", "warmup": 100},
           "sweep": {"train.seed": [0, 1]}}
    res = engine.train_sweep(cfg)
    models = res.models
    assert (models["train_loss"] < 0.2 * models["loss"]).all()  # memorised, not generalised
    verdicts = optima.table(res)
    # judged on the training set: the objective, not the fresh-sample loss
    np.testing.assert_allclose(verdicts["eval_loss"], models["train_loss"], rtol=0.05)
    assert not verdicts["trapped"].any()
    points = finite_data.datapoints(res)
    assert len(points) == 2 * 4 and points["dimensionality"].between(0, 1 + 1e-9).all()
    # 4 memorised points in a plane: their dimensionalities sum to at most m = 2, and near it
    per_model = points.groupby("model")["dimensionality"].sum()
    assert (per_model <= 2 + 1e-6).all() and (per_model > 1.5).all()


def test_data_point_dimensionality_of_a_hand_built_model():
    class Res:  # the parts of Results that datapoints reads
        pass
    cfg = config.resolve({"name": "h", "model": {"n_features": 3, "n_hidden": 2},
                          "data": {"dataset_size": 5, "density": 0.5}})
    res = Res()
    res.config = cfg
    res.models = pd.DataFrame({"model": [0], "kind": ["relu"]})
    W = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # feature 2 dropped
    res.params = lambda i: {"W": W, "b": np.zeros(3)}
    X = finite_data.training_sets(res, [0])[0]
    H = W @ X.T
    got = finite_data.datapoints(res)
    np.testing.assert_allclose(got["dimensionality"], metrics.dimensionality(H))
    np.testing.assert_allclose(got["hidden_norm"], np.linalg.norm(H, axis=0))


def test_scaling_table_fits_the_power_laws_and_counts_features_per_dimension():
    # three widths whose kept models lose 2 m^-0.8 (the top-m solution m^-0.5) and represent
    # exactly m of n = 80 features: exponents 0.8 and 0.5 with r^2 = 1, one feature per dimension
    widths, n = [10, 20, 40], 80
    cfg = config.resolve({"name": "t", "model": {"kind": "relu", "n_features": n},
                          "data": {"density": {"power": 1.0}},
                          "train": {"weight_decay": 1.0, "weight_init": "unit"},
                          "sweep": {"model.n_hidden": widths, "train.seed": [0, 1]}})
    rows = [{"model": 2 * i + seed, "n_hidden": m, "n_features": n, "weight_decay": 1.0,
             "weight_init": "unit", "density": '{"power": 1.0}', "seed": seed,
             "loss": 2 * m ** -0.8 * (1 + seed)}  # seed 1 loses: not kept
            for i, m in enumerate(widths) for seed in (0, 1)]
    feats = pd.DataFrame([{"model": r["model"], "feature": i,
                           "norm": 1.0 if i < r["n_hidden"] else 0.1}
                          for r in rows for i in range(n)])
    res = Results(None, cfg, pd.DataFrame(rows), feats, pd.DataFrame(), {})
    res.derived["optima"] = pd.DataFrame({"model": [r["model"] for r in rows],
                                          "exact_loss": [r["n_hidden"] ** -0.5 for r in rows]})
    (row,) = scaling.table(res).to_dict("records")
    assert row["exponent"] == pytest.approx(0.8) and row["r2"] == pytest.approx(1.0)
    assert row["log_prefactor"] == pytest.approx(np.log(2))
    assert row["exact_exponent"] == pytest.approx(0.5) and row["alpha_lab"] == 1.0
    assert row["alpha_paper"] == 2.0 and row["exponent_ci_lo"] == pytest.approx(0.8)
    assert row["represented_min_m"] == pytest.approx(10 / n)
    assert row["kept_per_dim_max_m"] == pytest.approx(1.0)
    assert (row["weight_decay"], row["weight_init"], row["widths"]) == (1.0, "unit", 3)
