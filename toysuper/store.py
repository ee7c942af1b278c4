"""The results directory: resolved config, finished chunks, tidy tables, weights, figures.

Layout of DIR:
  config.toml        resolved configuration, results schema (upgrade.py) and toysuper version,
                     written first
  parts/chunk-K.npz  each finished chunk of models, so an interrupted sweep resumes
  models.parquet     one row per model: its settings, final loss, D*
  features.parquet   one row per (model, feature): importance, density, norm, superposition, ...
  history.parquet    one row per (model, step): mean training loss over the last log_every steps
  NAME.parquet       derived tables the experiment and its figures use (see tables.py)
  weights.npz        every parameter stacked by model id, zero-padded when shapes differ,
                     with NAME.shape holding each model's true shape
  snapshots.npz      with train.snapshots > 0: each parameter at about log-spaced steps,
                     [models, count, ...], laid out as weights.npz, and `step` [models, count]
  figures/*.png
  summary.json       written last; its presence means the run finished
Every file is written to a temporary name and renamed into place, so no reader ever sees half a file.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from toysuper import config as config_mod
from toysuper import upgrade as upgrade_mod
from toysuper.errors import ConfigError
from toysuper.results import Results

TABLES = ("models", "features", "history")
PRODUCTS = ("models.parquet", "features.parquet", "history.parquet", "weights.npz",
            "snapshots.npz", "summary.json")


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
    # settings added to toysuper since `old` was written take the values it was made with
    old, _ = upgrade_mod.upgrade(tomllib.loads(stored.read_text()), where=out)
    new = tomllib.loads(config_mod.to_toml(cfg))
    # what the models are: [run] only chunks the work, and figures can be redrawn any time
    return [k for k in ("model", "data", "train", "sweep") if old.get(k, {}) != new.get(k)]


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
    write_config(out, cfg)


def write_config(out: Path, cfg: dict) -> None:
    write_text(Path(out) / "config.toml", config_mod.to_toml(
        {**cfg, "schema": upgrade_mod.SCHEMA, "version": upgrade_mod.VERSION}))


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
    try:
        with np.load(path) as z:
            if not np.array_equal(z["ids"], ids):
                return None
            part = {prefix: {k.split("/", 1)[1]: z[k] for k in z.files
                             if k.startswith(prefix + "/")} for prefix in ("param", "snap")}
            return part["param"], z["history"], z["final"], part["snap"]
    except (OSError, ValueError, KeyError, EOFError):  # damaged (a killed write): train it again
        return None


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
    """Read a finished results directory, upgraded to the current schema (upgrade.py)."""
    path = Path(path)
    if not (path / "config.toml").exists():
        raise ConfigError(f"'{path}' is not a toysuper results directory (no config.toml)")
    if not (path / "summary.json").exists():
        raise ConfigError(f"results in '{path}' are incomplete (the run did not finish); "
                          f"run the experiment again with the same settings to resume it")
    try:
        cfg = tomllib.loads((path / "config.toml").read_text())
        tables = {name: pd.read_parquet(path / f"{name}.parquet") for name in TABLES}
        cfg, tables = upgrade_mod.upgrade(cfg, tables, where=path)
        with np.load(path / "weights.npz") as z:
            weights = {k: z[k] for k in z.files}
        derived = {f.stem: pd.read_parquet(f) for f in sorted(path.glob("*.parquet"))
                   if f.stem not in TABLES}
        snapshots = {}
        if (path / "snapshots.npz").exists():
            with np.load(path / "snapshots.npz") as z:
                snapshots = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, tomllib.TOMLDecodeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"results in '{path}' are damaged ({type(e).__name__}: {e}); run the "
                          f"experiment again with --force to rebuild them") from None
    return Results.of(path, cfg, tables, weights, snapshots, derived)


def upgrade(path) -> int:
    """Rewrite an older results directory in the current schema; returns the schema it had."""
    path = Path(path)
    res = load(path)
    found = upgrade_mod.schema_of(tomllib.loads((path / "config.toml").read_text()))
    if found < upgrade_mod.SCHEMA:
        for name in TABLES:
            write_table(path / f"{name}.parquet", getattr(res, name))
        write_config(path, res.config)
    return found
