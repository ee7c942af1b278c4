"""The lab's float32 matmul precision (toysuper/precision.py) is applied on import and reaches
the compiled programs, whatever the device's default."""

import jax
import jax.numpy as jnp

import toysuper  # noqa: F401  (applies the precision policy)
from toysuper import precision


def test_importing_toysuper_sets_full_float32_matmuls():
    assert precision.MATMUL == "highest"
    assert jax.config.jax_default_matmul_precision == "highest"


def test_the_precision_reaches_a_compiled_product():
    text = jax.jit(jnp.dot).lower(jnp.ones((3, 3)), jnp.ones((3, 3))).as_text()
    assert "precision = [HIGHEST, HIGHEST]" in text

