"""The attack of section 6 against perturbations whose worst case is known in closed form, and
the derived table `adversarial` (toysuper/attack.py, toysuper/adversarial.py)."""

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import toysuper
from toysuper import adversarial, attack, config, keys, models, settings, tables, train
from toysuper.errors import ConfigError

N, M = 8, 3


def _identity_model(n=N, m=M):
    """W = the first m rows of the identity, b = 0: features 0..m-1 kept alone, no superposition."""
    W = np.zeros((m, n), np.float32)
    W[np.arange(m), np.arange(m)] = 1.0
    return {"params": {"W": jnp.asarray(W), "b": jnp.zeros(n, jnp.float32)}}


def _loss(kind, params, imp, n=N, m=M):
    return functools.partial(attack.example_loss, kind, n, m, params, imp=jnp.asarray(imp, jnp.float32))


def _worst(loss, x, r, seed=0, steps=100, restarts=4):
    return attack.worst(loss, jnp.asarray(x, jnp.float32), jnp.float32(r), jax.random.PRNGKey(seed),
                        steps, restarts)


def _trust_region(imp, u, r):
    """max of sum_i I_i (u_i + d_i)^2 over ||d|| <= r: the stationary point d_i = I_i u_i /
    (lam - I_i) on the sphere, lam > max I found by bisection (every u_i > 0 here)."""
    lo, hi = imp.max() * (1 + 1e-12), imp.max() + 1e6
    for _ in range(200):
        lam = (lo + hi) / 2
        d = imp * u / (lam - imp)
        lo, hi = (lam, hi) if np.linalg.norm(d) > r else (lo, lam)
    return float(np.sum(imp * (u + d) ** 2)), d


@pytest.mark.parametrize("kind", ["linear", "relu"])
def test_without_superposition_the_worst_perturbation_pushes_the_unrepresented_features(kind):
    """Identity on features 0..m-1, equal importance: L(x + d) = ||x_U + d_U||^2 (+ the kept
    features pushed below 0, for the ReLU), at most (||x_U|| + r)^2, reached at d = r x_U/||x_U||."""
    rng = np.random.default_rng(0)
    loss = _loss(kind, _identity_model(), np.ones(N))
    for _ in range(5):
        x = rng.uniform(0, 1, N) * (rng.uniform(size=N) < 0.6)
        x[M] = 0.5  # an unrepresented feature is active
        r = 0.3 * np.linalg.norm(x)
        u = x[M:]
        top, d = _worst(loss, x, r)
        assert float(loss(jnp.asarray(x, jnp.float32))) == pytest.approx(u @ u, rel=1e-5)
        assert float(top) == pytest.approx((np.linalg.norm(u) + r) ** 2, rel=1e-4)
        assert float(jnp.linalg.norm(d)) == pytest.approx(r, rel=1e-4)
        assert np.asarray(d[M:]) @ u / (r * np.linalg.norm(u)) == pytest.approx(1.0, abs=1e-4)


def test_with_unequal_importance_the_attack_reaches_the_trust_region_optimum():
    """Importance 0.7^i: the worst d solves a trust-region problem on the unrepresented
    features; the attack reaches its value and never exceeds it (the radius holds)."""
    imp = 0.7 ** np.arange(N)
    loss = _loss("linear", _identity_model(), imp)
    rng = np.random.default_rng(1)
    for eps in (0.05, 0.3, 1.0):
        x = rng.uniform(0.1, 1, N)
        r = eps * np.linalg.norm(x)
        best, d_star = _trust_region(imp[M:], x[M:], r)
        top, d = _worst(loss, x, r)
        assert float(top) == pytest.approx(best, rel=1e-4) and float(top) <= best * (1 + 1e-5)
        np.testing.assert_allclose(np.asarray(d[M:]), d_star, atol=5e-3 * r)


def test_a_zero_gradient_at_the_input_is_left_by_the_random_starts():
    """Only kept features active: the gradient at d = 0 vanishes, so the start at d = 0 stays
    there; the random starts find the worst direction, the most important unrepresented feature
    (importance 0.7^m), worth r^2 I_m."""
    imp = 0.7 ** np.arange(N)
    loss = _loss("linear", _identity_model(), imp)
    x = np.r_[0.9, 0.4, 0.7, np.zeros(N - M)]
    r = 0.2 * np.linalg.norm(x)
    top, d = _worst(loss, x, r)
    assert float(top) == pytest.approx(r ** 2 * imp[M], rel=1e-4)
    assert abs(float(d[M])) == pytest.approx(r, rel=1e-3)
    single, _ = _worst(loss, x, r, restarts=1)  # the start at d = 0 alone
    assert float(single) == pytest.approx(0.0, abs=1e-7)


def _pentagon(b=-0.2):
    """5 features on a regular pentagon in 2 dimensions, ReLU output: strong superposition."""
    angles = 2 * np.pi * np.arange(5) / 5
    W = np.stack([np.cos(angles), np.sin(angles)]).astype(np.float32)
    return {"params": {"W": jnp.asarray(W), "b": jnp.full(5, b, jnp.float32)}}


def test_random_perturbations_of_the_same_norm_never_beat_the_attack():
    loss = _loss("relu", _pentagon(), np.ones(5), n=5, m=2)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (64, 5)) * (rng.uniform(size=(64, 5)) < 0.3)
    x = jnp.asarray(x[np.abs(x).sum(axis=1) > 0], jnp.float32)
    r = 0.2 * jnp.linalg.norm(x, axis=1)
    ks = jax.random.split(jax.random.PRNGKey(3), len(x))
    top, _ = jax.vmap(lambda xi, ri, k: attack.worst(loss, xi, ri, k, 100, 4))(x, r, ks)
    rand = jax.vmap(lambda xi, ri, k: attack.random_losses(loss, xi, ri, k, 512))(
        x, r, jax.random.split(jax.random.PRNGKey(4), len(x)))
    clean = jax.vmap(loss)(x)
    assert bool(jnp.all(top >= rand.max(axis=1) - 1e-6)), np.asarray(top - rand.max(axis=1)).min()
    # and by far on average: a typical direction costs a fraction of the worst one
    assert float((top - clean).mean()) > 3 * float((rand.mean(axis=1) - clean).mean())


def test_one_example_loss_is_the_training_loss_of_a_batch_of_one():
    rng = np.random.default_rng(5)
    for kind, n, m in (("relu", 6, 2), ("abs", 6, 4), ("relu", 200, 20)):  # columns and rows
        shape = train.Shape(kind=kind, n=n, m=m)
        params = models.MODELS[kind].build(n, m).init(jax.random.PRNGKey(0), jnp.zeros(n))
        x = rng.uniform(-1, 1, (32, n)).astype(np.float32)
        imp = rng.uniform(0, 1, n).astype(np.float32)
        batch = jnp.asarray(x.T if shape.columns else x)
        one = jax.vmap(functools.partial(attack.example_loss, kind, n, m, params, imp=imp))(
            jnp.asarray(x))
        assert float(one.mean()) == pytest.approx(float(train._loss(shape, params, batch, imp)), rel=1e-5)


TINY = {"name": "adv", "model": {"kind": "linear", "n_features": 6, "n_hidden": 2},
        "data": {"importance": 1.0},
        "train": {"steps": 100, "batch": 256, "log_every": 50, "eval_batch": 1024},
        "attack": {"eps": [0.1, 0.3], "pgd_steps": 60, "restarts": 3, "inputs": 256},
        "sweep": {"data.density": [1.0, 0.2]}}


def test_the_table_scores_identity_models_at_their_closed_form():
    """Both models set to the identity on features 0 and 1: on the table's own inputs (the
    model's evaluation sample, active ones only) the mean attacked loss is the mean of
    (||x_U|| + eps ||x||)^2 and the clean loss the mean of ||x_U||^2."""
    res = toysuper.train_sweep(TINY)
    ident = _identity_model(6, 2)["params"]
    for model in (0, 1):
        res.weights["W"][model], res.weights["b"][model] = ident["W"], ident["b"]
    table = tables.get(res, "adversarial")
    assert list(table.columns) == ["model", "eps", "inputs", "clean_loss", "attacked_loss",
                                   "random_loss", "vulnerability", "random_vulnerability",
                                   *adversarial.ANALYTIC, *adversarial.ANALYTIC_ALL]
    # the paper's metric: a model without superposition is its own reference, exactly 1
    assert np.allclose(table["analytic_vulnerability"], 1.0, rtol=1e-3)  # float32 differences
    assert np.allclose(table["analytic_all_vulnerability"], 1.0, rtol=1e-3)
    assert table[["model", "eps"]].values.tolist() == [[0, 0.1], [0, 0.3], [1, 0.1], [1, 0.3]]
    sweep = config.expand(res.config)
    for model, s in enumerate(sweep):
        shape = train.Shape.of(s)
        hp = jax.tree.map(lambda a: a[0], train.inputs([s], 1))
        x, valid = adversarial.sampler(shape, adversarial.pool_blocks(shape, hp.p, 256), 256)(hp)
        x = np.asarray(x, np.float64)
        assert bool(valid.all()) and (np.abs(x).sum(axis=1) > 0).all()
        u = np.linalg.norm(x[:, 2:], axis=1)
        for eps in (0.1, 0.3):
            row = table[(table["model"] == model) & (table["eps"] == eps)].iloc[0]
            expected = np.mean((u + eps * np.linalg.norm(x, axis=1)) ** 2)
            assert row["inputs"] == 256
            assert row["clean_loss"] == pytest.approx(np.mean(u ** 2), rel=1e-5)
            assert row["attacked_loss"] == pytest.approx(expected, rel=1e-4)
            assert row["vulnerability"] == pytest.approx(expected / np.mean(u ** 2) - 1, rel=1e-3)
            assert 0 < row["random_vulnerability"] < row["vulnerability"]
        pool = np.asarray(adversarial._pool(shape, hp, adversarial.ANALYTIC_BLOCKS), np.float64)
        on = pool[np.abs(pool).sum(axis=1) > 0]
        for eps in (0.1, 0.3):
            row = table[(table["model"] == model) & (table["eps"] == eps)].iloc[0]
            mean_norm, mean_norm_all = np.linalg.norm(on, axis=1).mean(), np.linalg.norm(pool, axis=1).mean()
            assert row["analytic_radius"] == pytest.approx(eps * mean_norm, rel=1e-5)
            assert row["analytic_all_radius"] == pytest.approx(eps * mean_norm_all, rel=1e-5)
            clean = np.mean(np.sum(on[:, 2:] ** 2, axis=1))
            assert row["analytic_clean_loss"] == pytest.approx(clean, rel=1e-5)


def test_the_analytic_attack_on_an_orthogonal_W_moves_each_feature_alone():
    """W with orthonormal columns (n = m): W^T W is the identity, so feature i's analytic attack
    is e_i and interferes with no other feature. In a pentagon (n = 5, m = 2) it does."""
    Q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))
    D = np.asarray(adversarial.directions(jnp.asarray(Q)))
    assert np.allclose(D, np.eye(4), atol=1e-6)
    angles = 2 * np.pi * np.arange(5) / 5
    pentagon = np.stack([np.cos(angles), np.sin(angles)])
    D = np.asarray(adversarial.directions(jnp.asarray(pentagon)))
    assert np.allclose(np.linalg.norm(D, axis=1), 1.0)
    assert (np.abs(D - np.eye(5)).max(axis=1) > 0.3).all()
    # a feature the model does not represent (||W_i|| < 0.5) gets no attack
    W = np.zeros((2, 3))
    W[0, 0], W[1, 1], W[0, 2] = 1.0, 1.0, 1e-3
    assert np.allclose(np.asarray(adversarial.directions(jnp.asarray(W)))[2], 0.0)


def test_the_reference_increase_is_the_top_m_exact_solutions_under_its_own_attacks():
    """The closed form r^2 sum_{top m} I_i / n against the attack evaluated on the top-m exact
    ReLU model (features 1 and 3 the most important, the rest at a constant bias)."""
    n, r = 5, 0.07
    imp = np.array([0.5, 1.0, 0.3, 0.9, 0.1])
    W = np.zeros((2, n))
    W[0, 1] = W[1, 3] = 1.0
    b = np.array([0.2, 0.0, 0.2, 0.0, 0.2])
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (64, n)) * (rng.uniform(size=(64, n)) < 0.4)

    def loss(z):
        return np.mean(np.sum(imp * (x - np.maximum(z @ W.T @ W + b, 0)) ** 2, axis=1))

    D = np.asarray(adversarial.directions(jnp.asarray(W)))
    increase = np.mean([loss(x + r * d) - loss(x) for d in D])
    assert increase == pytest.approx(float(adversarial.reference_increase(jnp.asarray(imp), 2, r)), rel=1e-6)
    assert increase == pytest.approx(r * r * (1.0 + 0.9) / n)


def test_attack_settings_change_neither_training_nor_keys():
    base = config.expand(config.resolve({"name": "k"}))[0]
    other = dict(base, **{"attack.eps": [0.3, 0.5], "attack.pgd_steps": 7, "attack.restarts": 1,
                          "attack.inputs": 5})
    assert keys.salt(base) == keys.salt(other)
    assert train.Shape.of(base) == train.Shape.of(other)
    for a, b in zip(train.inputs([base], 1), train.inputs([other], 1)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("raw, words", [
    ({"attack": {"eps": [0.1, 0]}}, ["attack.eps", "[0.1, 0]", "(0, 1]"]),
    ({"attack": {"eps": []}}, ["attack.eps", "non-empty"]),
    ({"attack": {"eps": 1.5}}, ["attack.eps", "1.5", "(0, 1]"]),
    ({"attack": {"restarts": 0}}, ["attack.restarts", "positive integer"]),
    ({"sweep": {"attack.eps": [0.1, 0.2]}}, ["attack.eps", "cannot be swept", "list of radii"]),
    ({"sweep": {"cases": [{"attack.pgd_steps": 5}, {}]}}, ["attack.pgd_steps", "cannot be swept"]),
    ({"train": {"adversarial_eps": 1.5}}, ["train.adversarial_eps", "1.5", "[0, 1]"]),
    ({"train": {"adversarial_steps": -1}}, ["train.adversarial_steps", "-1", ">= 0"]),
])
def test_bad_attack_settings_are_named(raw, words):
    with pytest.raises(ConfigError) as e:
        config.resolve({"name": "t", **raw})
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_results_stored_before_the_attack_settings_read_with_their_defaults():
    path = Path(__file__).resolve().parents[1] / "results" / "superposition"
    if not (path / "summary.json").exists():
        pytest.skip("no stored results/superposition")
    res = toysuper.load(path)
    assert res.config["attack"] == settings.defaults()["attack"]
    assert config.expand(res.config)[0]["attack.eps"] == [0.1]


def test_the_stored_sweep_draws_and_holds_what_the_docs_say(tmp_path):
    """results/adversarial: the figure draws both kinds at every radius (attack and random
    lines), and the ReLU model's vulnerability at eps = 0.1 rises more than 3x from dense to
    sparse while the linear model's falls (docs/adversarial.md)."""
    path = Path(__file__).resolve().parents[1] / "results" / "adversarial"
    if not (path / "summary.json").exists():
        pytest.skip("no stored results/adversarial")
    import matplotlib.pyplot as plt

    from toysuper import optima
    from toysuper.figures import FIGURES, draw

    res = toysuper.load(path)
    table = tables.get(res, "adversarial")
    fig = FIGURES["vulnerability"].draw(res)
    try:
        drawn = [line for line in fig.axes[0].lines if len(line.get_xdata())]
        assert len(drawn) == 2 * table["eps"].nunique() * 2  # kinds x radii x (attack, random)
    finally:
        plt.close(fig)
    (png,) = draw(res, ["vulnerability"], tmp_path)
    assert png.stat().st_size > 10_000
    kept = table[table["model"].isin(optima.kept_models(res)) & (table["eps"] == 0.1)].merge(
        res.models[["model", "kind", "density"]], on="model").set_index(["kind", "density"])
    v = kept["vulnerability"]
    assert v["relu", 0.001] > 3 * v["relu", 1.0] and v["linear", 0.001] < v["linear", 1.0]
    assert (table["vulnerability"] > table["random_vulnerability"]).all()


# Adversarial training (train.adversarial_steps, train.adversarial_eps): attack.perturb.

def test_perturb_stays_in_the_ball_in_either_layout_and_passes_no_gradient():
    params, imp = _pentagon(), jnp.ones(5, jnp.float32)
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 1, (64, 5)) * (rng.uniform(size=(64, 5)) < 0.4)
    x = jnp.asarray(x, jnp.float32)
    key = jax.random.PRNGKey(7)

    def perturbed(p, xs, eps, columns, steps=20):
        return attack.perturb("relu", 5, 2, p, xs, imp, eps, key, steps, columns)

    rows, cols = perturbed(params, x, 0.3, False), perturbed(params, x.T, 0.3, True)
    np.testing.assert_allclose(np.asarray(cols.T), np.asarray(rows), atol=1e-6)
    moved = np.linalg.norm(np.asarray(rows - x), axis=1)
    assert (moved <= 0.3 * np.linalg.norm(np.asarray(x), axis=1) * (1 + 1e-5) + 1e-7).all()
    assert moved.max() > 0
    loss = _loss("relu", params, imp, n=5, m=2)
    assert float(jax.vmap(loss)(rows).mean()) > 1.5 * float(jax.vmap(loss)(x).mean())
    np.testing.assert_array_equal(np.asarray(perturbed(params, x, 0.0, False)), np.asarray(x))
    grads = jax.grad(lambda p: perturbed(p, x, 0.3, False).sum())(params)
    assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grads))


ADV_TINY = {"name": "advt", "model": {"kind": "relu", "n_features": 5, "n_hidden": 2},
            "data": {"importance": 1.0, "density": 0.1},
            "train": {"steps": 600, "batch": 256, "log_every": 100, "eval_batch": 4096, "lr": 3e-3},
            "attack": {"eps": [0.3], "pgd_steps": 40, "restarts": 4, "inputs": 512}}


def test_adversarial_training_at_radius_zero_is_clean_training():
    res = toysuper.train_sweep(dict(ADV_TINY, sweep={"cases": [
        {"train.adversarial_steps": 0}, {"train.adversarial_steps": 2, "train.adversarial_eps": 0.0}]}))
    for name in ("W", "b"):
        np.testing.assert_allclose(res.weights[name][1], res.weights[name][0], atol=1e-6)
    np.testing.assert_allclose(res.models["loss"][1], res.models["loss"][0], rtol=1e-6)


def test_adversarial_training_lowers_the_vulnerability_it_was_trained_against():
    res = toysuper.train_sweep(dict(ADV_TINY, sweep={"cases": [
        {"train.adversarial_steps": 0}, {"train.adversarial_steps": 3, "train.adversarial_eps": 0.3}]}))
    v = tables.get(res, "adversarial").set_index("model")["attacked_loss"]
    assert v[1] < 0.9 * v[0]  # the worst-case loss, which adversarial training minimises (-15%)


def test_the_stored_adversarial_training_draws_and_lost_superposition_where_sparse(tmp_path):
    """results/adversarial_training: its figure draws, it is refused for a sweep without
    adversarial training, and at density 0.003 training at eps = 0.2 left fewer features per
    dimension and a lower vulnerability than clean training, in both seeds
    (docs/adversarial.md)."""
    path = Path(__file__).resolve().parents[1] / "results" / "adversarial_training"
    if not (path / "summary.json").exists():
        pytest.skip("no stored results/adversarial_training")
    from toysuper import needs
    from toysuper.figures import FIGURES, draw

    res = toysuper.load(path)
    (png,) = draw(res, ["adversarial_training"], tmp_path)
    assert png.stat().st_size > 10_000
    with pytest.raises(ConfigError, match="train.adversarial_steps"):
        needs.check(FIGURES["adversarial_training"].needs, [{"train.adversarial_steps": 0}], "figure")
    m = res.models.drop(columns="eps").merge(tables.get(res, "adversarial"), on="model")  # the list
    sparse = m[(m["density"] == 0.003) & (m["eps"] == 0.1)]
    clean = sparse[sparse["adversarial_steps"] == 0].sort_values("seed")
    robust = sparse[(sparse["adversarial_steps"] > 0) & (sparse["adversarial_eps"] == 0.2)]
    robust = robust.sort_values("seed")
    assert (1 / robust["dims_per_feature"].values < 1 / clean["dims_per_feature"].values - 0.5).all()
    assert (robust["vulnerability"].values < 0.5 * clean["vulnerability"].values).all()
