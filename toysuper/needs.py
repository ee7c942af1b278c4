"""What a figure or derived table needs of a sweep, checked on its settings before any training.

A figure of features in a hidden plane needs model.n_hidden = 2; the phase table needs a case with
an analytic theory. Each declares its needs as a tuple of `Need`s, and `check` reads them against
the expanded settings of every model (flat dicts of dotted names), so that `toysuper run` and
`--plan` refuse an experiment that cannot be drawn before they train it.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from toysuper.errors import ConfigError


class Need(NamedTuple):
    what: str                              # "model.n_hidden = 2 (a hidden plane)", for the error
    met: Callable[[list[dict]], bool]      # the sweep's flat settings -> whether it is met
    seen: Callable[[list[dict]], str]      # what the sweep has instead, for the error


def _values(settings, key) -> list:
    return sorted({repr(s.get(key)) if isinstance(s.get(key), (list, dict)) else s.get(key)
                   for s in settings}, key=repr)


def every(key: str, allowed, what: str) -> Need:
    """Every model's `key` is in `allowed` (a collection) or satisfies it (a predicate)."""
    ok = allowed if callable(allowed) else (lambda v: v in allowed)
    return Need(what, lambda settings: all(ok(s.get(key)) for s in settings),
                lambda settings: f"{key} = {_values(settings, key)}")


def some(key: str, allowed, what: str) -> Need:
    """At least one model's `key` is in `allowed` or satisfies it."""
    ok = allowed if callable(allowed) else (lambda v: v in allowed)
    return Need(what, lambda settings: any(ok(s.get(key)) for s in settings),
                lambda settings: f"{key} = {_values(settings, key)}")


def rule(what: str, met: Callable[[list[dict]], bool], seen: Callable[[list[dict]], str]) -> Need:
    """A need no single setting expresses (e.g. one swept per-feature setting)."""
    return Need(what, met, seen)


def check(needs, settings: list[dict], who: str) -> None:
    """Raise ConfigError naming `who` ("figure 'feature_plane'") and its first unmet need."""
    for need in needs:
        if not need.met(settings):
            raise ConfigError(f"{who} needs {need.what}; this sweep has {need.seen(settings)}")
