"""Named measurements over stored results, one file per area; claims name them (claims.py)."""

from toysuper.measures import (  # noqa: F401  (each file registers its measurements on import)
    adversarial,
    computation,
    finite_data,
    llc,
    privileged,
    saes,
    scaling,
    toys,
)
from toysuper.measures.registry import MEASURES, Measure, measure

__all__ = ["MEASURES", "Measure", "measure"]
