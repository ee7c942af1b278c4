"""AuxK (Gao et al. 2024): dead latents learn to reconstruct what the live ones miss."""

import types

import jax
import jax.numpy as jnp
import numpy as np

import toysuper
from toysuper import saes

HP = types.SimpleNamespace(l1=jnp.float32(0.0), l0=jnp.float32(0.0), bandwidth=jnp.float32(0.01),
                           aux=jnp.float32(1 / 32))


def _sae_with_a_silent_latent():
    """A top-1 SAE on 2-D data whose latent 2 points away from every example (never in a top-1)."""
    W_dec = jnp.array([[1.0, 0.0, 0.6], [0.0, 1.0, -0.8]])
    params = {"W_enc": W_dec.T, "b_enc": jnp.array([0.0, 0.0, -0.05]), "W_dec": W_dec,
              "b_dec": jnp.zeros(2)}
    x = jnp.asarray(np.random.default_rng(0).random((64, 2)), jnp.float32)
    return params, x


def test_without_auxk_a_latent_outside_every_top_k_gets_no_gradient():
    params, x = _sae_with_a_silent_latent()
    f = saes.forward(params, x, "topk", 1, HP, train=True)[2]
    assert not (f[:, 2] > 0).any()
    g = jax.grad(lambda p: saes.loss(p, x, "topk", 1, HP)[0])(params)
    assert float(jnp.abs(g["W_enc"][2]).max()) == 0.0 and float(jnp.abs(g["W_dec"][:, 2]).max()) == 0.0


def test_auxk_gives_the_dead_latent_a_gradient_toward_the_error_and_leaves_live_ones_alone():
    params, x = _sae_with_a_silent_latent()
    dead = jnp.array([False, False, True])
    total = lambda p, d: saes.loss(p, x, "topk", 1, HP, d, 1)[0]  # noqa: E731
    g = jax.grad(total)(params, dead)
    assert float(jnp.abs(g["W_enc"][2]).max()) > 0 and float(jnp.abs(g["W_dec"][:, 2]).max()) > 0
    # the error is a fixed target: live latents get exactly the gradient they get without AuxK
    plain = jax.grad(lambda p: saes.loss(p, x, "topk", 1, HP)[0])(params)
    np.testing.assert_allclose(g["W_enc"][:2], plain["W_enc"][:2], atol=1e-7)
    # with no dead latent the AuxK term is exactly 0
    none = saes.loss(params, x, "topk", 1, HP, jnp.zeros(3, bool), 1)
    np.testing.assert_allclose(float(none[0]), float(saes.loss(params, x, "topk", 1, HP)[0]))


def test_auxk_by_hand():
    """The AuxK loss is ||e - W_dec z||^2 averaged over examples, z the top aux_k dead latents'
    ReLU pre-activations, e the reconstruction error."""
    params, x = _sae_with_a_silent_latent()
    x_hat, pre, _ = saes.forward(params, x, "topk", 1, HP, train=True)
    got = saes.aux_loss(params, x, x_hat, pre, jnp.array([False, True, True]), "topk", 1)
    e, pre = np.asarray(x - x_hat), np.asarray(pre)
    W = np.asarray(params["W_dec"]) / np.linalg.norm(params["W_dec"], axis=0)
    want = []
    for i in range(len(e)):
        z = np.zeros(3)
        j = 1 + int(np.argmax(pre[i, 1:]))
        z[j] = max(pre[i, j], 0.0)
        want.append(((e[i] - W @ z) ** 2).sum())
    np.testing.assert_allclose(float(got), np.mean(want), rtol=1e-5)


def test_an_auxk_sweep_trains_and_off_is_the_old_training():
    """sae.aux_k = 0 (the default) trains exactly as before AuxK existed; aux_k > 0 trains too."""
    small = {"name": "auxk", "source": {"n_features": 16, "n_hidden": 8}, "data": {"density": 0.05},
             "sae": {"kind": "topk", "width": 32, "k": 2, "aux_dead": 10},
             "train": {"steps": 200, "batch": 128, "lr": 3e-3, "log_every": 100, "eval_batch": 2048}}
    res = toysuper.train_sweep(dict(small, sweep={"sae.aux_k": [0, 8]}))
    base = toysuper.train_sweep(small)
    off = int(res.saes.set_index("aux_k").loc[0, "sae"])
    for name, a in base.params(0).items():
        np.testing.assert_array_equal(a, res.params(off)[name], err_msg=name)
    assert not res.saes["diverged"].any()


def test_sae_results_from_before_auxk_load_with_it_off():
    """Schema 6 -> 7: a stored SAE sweep (trained before AuxK) reads as aux_k = 0."""
    res = toysuper.load("results/sae_intro")
    assert res.config["sae"]["aux_k"] == 0 and (res.saes["aux_k"] == 0).all()
    assert res.config["sae"]["aux_coefficient"] == 1 / 32


def test_decoder_init_norm_and_gradient_clipping_are_settings():
    """sae.init_norm starts every decoder column at that length (SAELens: 0.1) with the encoder its
    transpose; sae.grad_clip clips the global gradient norm; both train, and the defaults are the
    training the stored results were made with."""
    params = saes.init(jax.random.key(0), 8, 32, "relu_l1", 0.05, jnp.zeros(8), 0.1)
    np.testing.assert_allclose(np.linalg.norm(params["W_dec"], axis=0), 0.1, rtol=1e-5)
    np.testing.assert_array_equal(params["W_enc"], params["W_dec"].T)
    small = {"name": "inits", "source": {"n_features": 16, "n_hidden": 8}, "data": {"density": 0.05},
             "sae": {"kind": "relu_l1", "width": 32, "l1_coefficient": 0.1},
             "train": {"steps": 100, "batch": 128, "lr": 3e-3, "log_every": 50, "eval_batch": 1024}}
    res = toysuper.train_sweep(dict(small, sweep={"sae.init_norm": [1.0, 0.1], "sae.grad_clip": [0.0, 1.0]}))
    assert not res.saes["diverged"].any() and len(res.saes) == 4
    assert res.saes["loss"].nunique() == 4  # each setting changes the training
