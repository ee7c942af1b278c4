"""toysuper: train sweeps of toy models of superposition with JAX and draw the paper's figures."""

__version__ = "0.1.0"

from toysuper.config import ConfigError  # noqa: E402
from toysuper.store import Results, load  # noqa: E402
from toysuper.sweep import TrainingError, run  # noqa: E402

__all__ = ["ConfigError", "Results", "TrainingError", "load", "run", "__version__"]
