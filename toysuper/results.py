"""A trained sweep: tidy tables (pandas), stacked weights (NumPy) and the resolved config.

The same object comes back from training in memory (`toysuper.train_sweep`, path None) and from
reading a results directory (`toysuper.load`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from toysuper import config as config_mod
from toysuper import models as models_mod
from toysuper.errors import ConfigError

SHAPE = ".shape"  # weights key suffix: each model's true shape of that parameter


@dataclass
class Results:
    """A finished sweep. Weights are stacked by model id and zero-padded where shapes differ."""

    path: Path | None
    config: dict
    models: pd.DataFrame
    features: pd.DataFrame
    history: pd.DataFrame
    weights: dict = field(repr=False)

    shapes: dict = field(repr=False, default_factory=dict)
    derived: dict = field(repr=False, default_factory=dict)  # derived tables by name (tables.py)
    # train.snapshots > 0: NAME -> [models, count, ...] zero-padded, NAME.shape, and step
    snapshots: dict = field(repr=False, default_factory=dict)

    @classmethod
    def of(cls, path, config, tables, weights, snapshots=None, derived=None) -> "Results":
        """From tables and a weights dict that holds NAME.shape entries beside each NAME."""
        plain = {k: v for k, v in weights.items() if not k.endswith(SHAPE)}
        shapes = {k[: -len(SHAPE)]: v for k, v in weights.items() if k.endswith(SHAPE)}
        return cls(None if path is None else Path(path), config, tables["models"],
                   tables["features"], tables["history"], plain, shapes, dict(derived or {}),
                   dict(snapshots or {}))

    def params(self, model: int) -> dict:
        """One model's parameters, with the zero padding of mixed-shape sweeps removed."""
        return {name: a[model][tuple(slice(0, int(k)) for k in self.shapes[name][model])]
                for name, a in self.weights.items() if np.prod(self.shapes[name][model]) > 0}

    def snapshot_W(self, model: int) -> tuple[np.ndarray, np.ndarray]:
        """(steps[k], embeddings[k, m, n]) of one model's snapshots, padding removed."""
        if not self.snapshots:
            raise ConfigError(f"'{self.path}' holds no snapshots; set train.snapshots to a count "
                              f"and run the experiment again")
        name = models_mod.MODELS[self.kind(model)].embed
        shape = self.snapshots[name + SHAPE][model]
        steps = self.snapshots["step"][model]
        W = self.snapshots[name][model][tuple(slice(0, int(k)) for k in shape)]
        return steps[steps > 0], W[: int((steps > 0).sum())]

    def kind(self, model: int) -> str:
        return self._kinds[model]

    @functools.cached_property
    def _kinds(self) -> dict:
        return dict(zip(self.models["model"], self.models["kind"]))

    def W(self, model: int) -> np.ndarray:
        """The model's m x n embedding (W, or W1 of the computation model)."""
        return models_mod.embedding(self.kind(model), self.params(model))

    def __repr__(self) -> str:
        return summary(self, self.models, "models")


@dataclass
class SaeResults:
    """A finished sweep of SAEs (toysuper/families/saes.py): its tables, stacked weights and config.

    weights: W_enc, b_enc, W_dec (as used: unit columns for the kinds that keep them), b_dec,
    features (each SAE's true feature directions, [m, n]), source_W (the source's embedding),
    stacked by SAE id and zero-padded as Results.weights are.
    """

    path: Path | None
    config: dict
    saes: pd.DataFrame
    latents: pd.DataFrame
    history: pd.DataFrame
    weights: dict = field(repr=False)
    shapes: dict = field(repr=False, default_factory=dict)
    derived: dict = field(repr=False, default_factory=dict)  # absorption, when hierarchical

    @classmethod
    def of(cls, path, config, tables, weights, snapshots=None, derived=None) -> "SaeResults":
        """As Results.of; SAEs keep no snapshots."""
        plain = {k: v for k, v in weights.items() if not k.endswith(SHAPE)}
        shapes = {k[: -len(SHAPE)]: v for k, v in weights.items() if k.endswith(SHAPE)}
        extra = {k: v for k, v in tables.items() if k not in ("saes", "latents", "history")}
        return cls(None if path is None else Path(path), config, tables["saes"], tables["latents"],
                   tables["history"], plain, shapes, {**extra, **dict(derived or {})})

    def params(self, sae: int) -> dict:
        """One SAE's arrays (parameters, features, source_W), padding removed."""
        return {name: a[sae][tuple(slice(0, int(k)) for k in self.shapes[name][sae])]
                for name, a in self.weights.items()}

    def __repr__(self) -> str:
        return summary(self, self.saes, "SAEs")


def summary(res, rows: pd.DataFrame, noun: str) -> str:
    """One line on a results object (its repr): where it lives, how many models of which kinds,
    the swept keys with their number of values, diverged models and the derived tables present;
    the dataclass's own repr would print every table and the whole config."""
    where = "in memory" if res.path is None else repr(str(res.path))
    kinds = ", ".join(sorted(map(str, rows["kind"].unique()))) if "kind" in rows else "?"
    counts = {key: len(spec) if key == config_mod.CASES else len(config_mod.axis_values(key, spec))
              for key, spec in res.config.get("sweep", {}).items()}
    swept = ", ".join(f"{key} x{n}" for key, n in counts.items()) or "nothing"
    diverged = int(rows["diverged"].sum()) if "diverged" in rows else 0
    derived = ", ".join(sorted(res.derived)) or "none yet"
    return (f"{type(res).__name__}({where}: {len(rows)} {noun} ({kinds}); swept {swept}; "
            f"{diverged} diverged; derived tables: {derived})")
