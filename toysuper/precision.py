"""The float32 matrix-product precision toysuper asks of every device: full float32.

JAX leaves a float32 product's precision to the device by default: on recent NVIDIA GPUs it
may run in TF32 (10 bits of mantissa) and on TPUs in bfloat16 passes, so the same model would
train to different weights there than on a CPU by more than rounding. The lab asks for
"highest" (true float32 products) everywhere, once, when `toysuper` is imported, so that a
result does not depend on the device's default. XLA:CPU computes float32 products in float32
either way, so on a CPU this changes no result. Code that wants the faster products may set
`jax.config.update("jax_default_matmul_precision", ...)` after importing toysuper, at the
price of results that then depend on the device.
"""

import jax

MATMUL = "highest"


def apply() -> None:
    """Set JAX's default matmul precision to the lab's (MATMUL)."""
    jax.config.update("jax_default_matmul_precision", MATMUL)


apply()
