"""toysuper: train sweeps of toy models of superposition with JAX and draw the paper's figures.

    res = toysuper.train_sweep(cfg)    # in memory: tables, weights; writes nothing
    res = toysuper.run("intro")        # trains or resumes, stores results/intro, draws figures
    res = toysuper.load("results/intro")

The names below load their modules on first use (PEP 562), so importing a light module such as
toysuper.config does not pull in the figures (matplotlib).
"""

import importlib

from toysuper import precision  # noqa: F401  (float32 products at full precision on every device)
from toysuper.errors import ConfigError, TrainingError
from toysuper.upgrade import VERSION as __version__

_LAZY = {"Results": "toysuper.results", "load": "toysuper.store", "run": "toysuper.engine",
         "train_sweep": "toysuper.engine"}


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'toysuper' has no attribute {name!r}")


__all__ = ["ConfigError", "Results", "TrainingError", "load", "run", "train_sweep", "__version__"]
