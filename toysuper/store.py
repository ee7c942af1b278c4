"""The results directory: resolved config, finished chunks, tidy tables, weights, figures.

Layout of DIR:
  config.toml        resolved configuration and toysuper version (written first)
  parts/chunk-K.npz  each finished chunk of models, so an interrupted sweep resumes
  models.parquet     one row per model: its settings, final loss, D*
  features.parquet   one row per (model, feature): importance, density, norm, superposition, ...
  history.parquet    one row per (model, step): mean training loss over the last log_every steps
  NAME.parquet       derived tables the experiment lists in `tables` (see tables.py)
  weights.npz        every parameter stacked by model id, zero-padded when shapes differ,
                     with NAME.shape holding each model's true shape
  snapshots.npz      with train.snapshots > 0: each parameter at about log-spaced steps,
                     [models, count, ...], laid out as weights.npz, and `step` [models, count]
  figures/*.png
  summary.json       written last; its presence means the run finished
Every file is written to a temporary name and renamed into place, so no reader ever sees half a file.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from toysuper import config as config_mod
from toysuper import models as models_mod
from toysuper.config import ConfigError

TABLES = ("models", "features", "history")
# Settings whose default changed: a results directory written before the setting existed was
# made with this value, not today's default.
LEGACY = {"train": {"sampler": "reference"}}
SHAPE = ".shape"  # weights.npz key suffix: each model's true shape of that parameter
PRODUCTS = ("models.parquet", "features.parquet", "history.parquet", "weights.npz",
            "snapshots.npz", "summary.json")


@dataclass
class Results:
    """A finished run: tables (pandas), stacked weights (NumPy) and the resolved config."""

    path: Path
    config: dict
    models: pd.DataFrame
    features: pd.DataFrame
    history: pd.DataFrame
    weights: dict = field(repr=False)

    shapes: dict = field(repr=False, default_factory=dict)
    derived: dict = field(repr=False, default_factory=dict)  # derived tables by name
    # train.snapshots > 0: NAME -> [models, count, ...] zero-padded, NAME.shape, and step
    snapshots: dict = field(repr=False, default_factory=dict)

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


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _savez(path: Path, arrays: dict) -> None:
    # through an open file: np.savez given a path would append ".npz" to the temporary name
    def write(p):
        with open(p, "wb") as fh:
            np.savez(fh, **arrays)
    _atomic(path, write)


def write_text(path: Path, text: str) -> None:
    _atomic(path, lambda p: p.write_text(text))


def write_table(path: Path, df: pd.DataFrame) -> None:
    _atomic(path, lambda p: df.to_parquet(p, index=False))


def differences(out: Path, cfg: dict) -> list[str]:
    """Sections in which the results in `out` were made with other settings than `cfg`."""
    stored = Path(out) / "config.toml"
    if not stored.exists():
        return []
    old = tomllib.loads(stored.read_text())
    new = tomllib.loads(config_mod.to_toml(cfg))
    # what the models are: [run] only chunks the work, and figures can be redrawn any time;
    # settings added to toysuper since `old` was written take their defaults (or LEGACY) there
    return [k for k in ("model", "data", "train", "sweep")
            if {**config_mod.DEFAULTS.get(k, {}), **LEGACY.get(k, {}), **old.get(k, {})}
            != new.get(k)]


def prepare(out: Path, cfg: dict, force: bool) -> None:
    """Make `out` ready for `cfg`: refuse other configs unless forced, keep finished chunks."""
    out = Path(out)
    stored = out / "config.toml"
    if stored.exists():
        differ = differences(out, cfg)
        if differ and not force:
            raise ConfigError(
                f"'{out}' holds results of a different configuration (differs in: "
                f"{', '.join(differ)}); pass --force to replace them or --out to write elsewhere")
        if differ:
            clear(out)
    elif out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"'{out}' exists and is not a toysuper results directory; "
                          f"pass --force to write into it or choose another --out")
    (out / "parts").mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)  # incomplete until this run finishes
    from toysuper import __version__
    write_text(stored, config_mod.to_toml({**cfg, "version": __version__}))


def clear(out: Path) -> None:
    """Remove everything a previous run wrote into `out`."""
    for name in PRODUCTS + ("config.toml",):
        (out / name).unlink(missing_ok=True)
    for table in out.glob("*.parquet"):  # derived tables
        table.unlink()
    for sub in ("parts", "figures"):
        shutil.rmtree(out / sub, ignore_errors=True)


def part_path(out: Path, index: int) -> Path:
    return Path(out) / "parts" / f"chunk-{index:05d}.npz"


def save_part(out: Path, index: int, ids, params: dict, history, final, snapshots=None) -> None:
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"snap/{k}": v for k, v in (snapshots or {}).items()})
    _savez(part_path(out, index), dict(ids=ids, history=history, final=final, **arrays))


def finished(out: Path, index: int, ids) -> bool:
    """Whether chunk `index` of these models is saved (reads only its ids)."""
    path = part_path(out, index)
    if not path.exists():
        return False
    with np.load(path) as z:
        return np.array_equal(z["ids"], ids)


def load_part(out: Path, index: int, ids):
    """A finished chunk's arrays, or None if absent or made for other models."""
    path = part_path(out, index)
    if not path.exists():
        return None
    with np.load(path) as z:
        if not np.array_equal(z["ids"], ids):
            return None
        part = {prefix: {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith(prefix + "/")}
                for prefix in ("param", "snap")}
        return part["param"], z["history"], z["final"], part["snap"]


def write_results(out: Path, tables: dict, weights: dict, snapshots: dict, summary: dict) -> None:
    """Write the tables, weights and snapshots, then summary.json, which marks the run complete."""
    out = Path(out)
    for name in TABLES:
        write_table(out / f"{name}.parquet", tables[name])
    _savez(out / "weights.npz", weights)
    if snapshots:
        _savez(out / "snapshots.npz", snapshots)
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")


def load(path) -> Results:
    """Read a finished results directory."""
    path = Path(path)
    if not (path / "config.toml").exists():
        raise ConfigError(f"'{path}' is not a toysuper results directory (no config.toml)")
    if not (path / "summary.json").exists():
        raise ConfigError(f"results in '{path}' are incomplete (the run did not finish); "
                          f"run the experiment again with the same settings to resume it")
    cfg = tomllib.loads((path / "config.toml").read_text())
    tables = {name: pd.read_parquet(path / f"{name}.parquet") for name in TABLES}
    with np.load(path / "weights.npz") as z:
        weights = {k: z[k] for k in z.files if not k.endswith(SHAPE)}
        shapes = {k[: -len(SHAPE)]: z[k] for k in z.files if k.endswith(SHAPE)}
    derived = {name: pd.read_parquet(path / f"{name}.parquet") for name in cfg.get("tables", [])
               if (path / f"{name}.parquet").exists()}
    snapshots = {}
    if (path / "snapshots.npz").exists():
        with np.load(path / "snapshots.npz") as z:
            snapshots = {k: z[k] for k in z.files}
    return Results(path, cfg, tables["models"], tables["features"], tables["history"],
                   weights, shapes, derived, snapshots)
