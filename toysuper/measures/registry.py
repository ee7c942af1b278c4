"""The registry of measurements a claim can name (toysuper/claims.py).

A measurement is a function of a results object and keyword arguments that returns one number
(a count, a ratio, an exponent; 1.0 / 0.0 for a yes / no reading), computed from the stored
core tables, weights and derived tables (toysuper.tables.get). It lives here, a leaf module,
so that every measures/*.py file registers into one dict and claims.py reads it.
"""

from __future__ import annotations

from typing import Callable, NamedTuple


class Measure(NamedTuple):
    fn: Callable   # (results, **args) -> float
    doc: str       # one line: what the number is, in the user's words


MEASURES: dict[str, Measure] = {}


def measure(name: str, doc: str):
    """Register `fn(res, **args) -> float` under `name`."""
    def register(fn):
        if name in MEASURES:
            raise ValueError(f"measurement '{name}' is registered twice")
        MEASURES[name] = Measure(fn, doc)
        return fn
    return register
