"""Training pieces against analytic answers: the loss of a known model, the LR schedules."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from toysuper import models, train

SHAPE = train.Shape(kind="relu", n=4, m=2, law="uniform", steps=1000, batch=4096,
                    schedule="cosine", warmup=100, log_every=100, eval_batch=2**17)
STRATA = dataclasses.replace(SHAPE, eval="strata")


def hyper(p, imp):
    n = len(p)
    return train.Hyper(key=jax.random.PRNGKey(0), eval_key=jax.random.PRNGKey(1),
                       imp=jnp.asarray(imp, jnp.float32),
                       p=jnp.asarray(p, jnp.float32), group=jnp.arange(n), low=jnp.zeros(n),
                       lr=jnp.float32(1e-3), wd=jnp.float32(0.0), noise=jnp.float32(0.0),
                       adv_eps=jnp.float32(0.0))


@pytest.mark.parametrize("shape", [SHAPE, STRATA], ids=["sample", "strata"])
def test_zero_model_loss_is_the_second_moment_of_the_data(shape):
    # with W = 0 and b = 0 the output is 0, so loss = sum_i I_i E[x_i^2] = sum_i I_i p_i / 3
    p, imp = np.array([1.0, 0.5, 0.1, 0.02]), np.array([1.0, 0.7, 0.49, 2.0])
    params = {"params": {"W": jnp.zeros((2, 4)), "b": jnp.zeros(4)}}
    loss = float(train.evaluate_one(shape, params, hyper(p, imp)))
    assert loss == pytest.approx(np.sum(imp * p / 3), rel=0.01)


@pytest.mark.parametrize("shape", [SHAPE, STRATA], ids=["sample", "strata"])
def test_bias_only_model_loss_matches_the_formula(shape):
    # relu output with W = 0 and b_i = p_i / 2 > 0: loss = sum_i I_i (p_i/3 - p_i^2/4)
    p, imp = np.array([1.0, 0.5, 0.1, 0.3]), np.ones(4)
    params = {"params": {"W": jnp.zeros((2, 4)), "b": jnp.asarray(p / 2, jnp.float32)}}
    loss = float(train.evaluate_one(shape, params, hyper(p, imp)))
    assert loss == pytest.approx(np.sum(p / 3 - p**2 / 4), rel=0.01)


def test_strata_evaluation_is_exact_where_sampling_sees_few_events():
    # two features in an antipodal pair (W = [1, -1]) at density 0.005 lose (1 + r) p^2 / 6,
    # all of it from the 1-in-40,000 samples with both active
    shape = train.Shape(kind="relu", n=2, m=1, law="uniform", steps=1, batch=1024,
                        schedule="constant", warmup=0, log_every=1, eval_batch=2**15, eval="strata")
    p, r = 0.005, 3.0
    params = {"params": {"W": jnp.array([[1.0, -1.0]]), "b": jnp.zeros(2)}}
    loss = float(train.evaluate_one(shape, params, hyper([p, p], [1.0, r])))
    assert loss == pytest.approx((1 + r) * p**2 / 6, rel=0.03)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    f = lambda c: float(train.lr_factor(SHAPE, c))  # noqa: E731
    assert f(0) == pytest.approx(0.01) and f(49) == pytest.approx(0.5) and f(99) == 1.0
    assert f(100 + 450) == pytest.approx(0.5, abs=1e-6)
    assert f(1000) == pytest.approx(0.0, abs=1e-7)


def test_constant_schedule_holds_after_warmup():
    shape = train.Shape(**{**SHAPE.__dict__, "schedule": "constant", "warmup": 0})
    assert [float(train.lr_factor(shape, c)) for c in (0, 500, 999)] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("steps, log_every, count", [(10_000, 100, 10), (500, 100, 5), (1000, 100, 1),
                                                     (100_000, 10, 50), (200, 50, 3)])
def test_snapshot_steps_are_distinct_segment_ends_ending_at_the_last_step(steps, log_every, count):
    at = train.snapshot_steps(steps, log_every, count)
    assert len(at) == count and at[-1] == steps
    assert (np.diff(at) > 0).all() and (at % log_every == 0).all() and at[0] >= log_every
    if 2 < count <= steps // log_every // 4:  # room to be log-spaced: the later half spans more
        assert at[count // 2] - at[0] < at[-1] - at[count // 2]


@pytest.mark.parametrize("kind", ["linear", "relu", "privileged", "abs"])
def test_rows_and_columns_layouts_compute_the_same_model(kind, monkeypatch):
    # shapes pick their batch layout by size (Shape.columns); the network must not care
    from toysuper import models
    shape = train.Shape(kind=kind, n=64, m=32, law="signed", steps=1, batch=256,
                        schedule="constant", warmup=0, log_every=1, eval_batch=256)
    assert not shape.columns  # 64 x 32 weights: rows
    net = models.MODELS[kind].build(64, 32)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros(64))
    x = jax.random.uniform(jax.random.PRNGKey(1), (256, 64), minval=-1, maxval=1)
    np.testing.assert_allclose(net.apply(params, x), net.apply(params, x.T, True).T,
                               rtol=1e-5, atol=1e-6)
    imp = jnp.linspace(1.0, 0.1, 64)
    as_rows = train._loss(shape, params, x, imp)
    monkeypatch.setattr(train, "COLUMNS_BELOW", 10**9)
    assert shape.columns
    as_cols = train._loss(shape, params, x.T, imp)
    np.testing.assert_allclose(as_rows, as_cols, rtol=1e-5)
    direct = jnp.mean((models.MODELS[kind].target(x) - net.apply(params, x)) ** 2 @ imp)
    np.testing.assert_allclose(as_rows, direct, rtol=1e-5)


def test_unit_weight_init_starts_every_feature_near_norm_one(kind="relu"):
    # train.weight_init = "unit": every weight N(0, 1/m), so a feature's m weights have squared
    # norm 1 on average; Xavier-normal starts them at 2m / (m + n) = 0.08 here
    shape = dataclasses.replace(SHAPE, kind=kind, n=400, m=16)
    hp = hyper(np.full(400, 0.1), np.ones(400))
    zero = jax.tree.map(jnp.zeros_like, models.MODELS[kind].build(400, 16).init(
        jax.random.PRNGKey(0), jnp.zeros(400)))  # the warm start, unused: warm is False
    for name, want in [("xavier", 2 * 16 / 416), ("unit", 1.0)]:
        params, _ = train.init_one(dataclasses.replace(shape, weight_init=name), hp, zero, False)
        for w in (v for k, v in params["params"].items() if k != "b"):
            assert float(jnp.mean(w**2)) * 16 == pytest.approx(want, rel=0.05)
        assert not np.any(params["params"]["b"])


def test_bias_inits_zero_mean_and_normal():
    shape = dataclasses.replace(SHAPE, n=2000, m=4)
    p = np.linspace(0.01, 1.0, 2000)
    hp = hyper(p, np.ones(2000))
    zero = jax.tree.map(jnp.zeros_like, models.MODELS["relu"].build(2000, 4).init(
        jax.random.PRNGKey(0), jnp.zeros(2000)))
    b = {name: np.asarray(train.init_one(dataclasses.replace(shape, bias_init=name), hp,
                                         zero, False)[0]["params"]["b"])
         for name in ("zero", "mean", "normal")}
    assert not np.any(b["zero"])
    np.testing.assert_allclose(b["mean"], p / 2, rtol=1e-5)  # E[x_i] for magnitudes U[0, 1]
    assert abs(b["normal"].mean()) < 0.1 and b["normal"].std() == pytest.approx(1.0, rel=0.06)
