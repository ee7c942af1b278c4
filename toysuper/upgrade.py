"""Reading results written by older versions of toysuper: one upgrade step per schema number.

A results directory records the schema it was written with (`schema` in config.toml; absent
means 1). Loading applies every step from that schema to SCHEMA in memory, so the rest of the
package only ever sees current results; `toysuper upgrade DIR` writes the upgraded files back.

  1 -> 2  settings added since (train.sampler, ...) take the value those results were made with
          (settings.Setting.old), in the config and as models-table columns; structure labels
          leave features.parquet for the derived table `structures` (recomputed from weights).
  2 -> 3  the same for settings added since (train.init_from, train.init_noise).
  3 -> 4  models.parquet gains `diverged` (False) and `diverged_step` (missing): such a run
          stopped at its first diverged model (run.on_diverge came later), so none diverged.
  4 -> 5  toy-model results: settings added since (data.dataset_size, data.unit_norm,
          train.decay_bias, ..., and the [attack] section) as in 1 -> 2. SAE results had none
          added.
  5 -> 6  toy-model results: train.weight_init ("xavier", how they started) as in 1 -> 2.
  6 -> 7  SAE results: sae.aux_k (0: no AuxK loss), sae.aux_dead, sae.aux_coefficient,
          sae.init_norm (1) and sae.grad_clip (0: off), in the config and as saes-table
          columns.
"""

from __future__ import annotations

import copy
from importlib import metadata

import pandas as pd

from toysuper import family, settings
from toysuper.errors import ConfigError

SCHEMA = 7
try:
    VERSION = metadata.version("toysuper")  # recorded beside the schema, for people
except metadata.PackageNotFoundError:  # a source tree that was not installed
    VERSION = "unknown"


def schema_of(cfg: dict) -> int:
    return int(cfg.get("schema", 1))


def _settings(cfg: dict, tables: dict, table=settings.TABLE, rows="models") -> None:
    """Every setting the results lack, at the value they were made with."""
    for s in table:
        section, name = s.key.split(".", 1)
        cfg.setdefault(section, {}).setdefault(name, copy.deepcopy(s.old))
        models = tables.get(rows)
        if models is not None and s.role != "host" and name not in models:
            value = s.old if not isinstance(s.old, list) else str(s.old)
            tables[rows] = models.assign(**{name: [value] * len(models)})


def _to_2(cfg: dict, tables: dict) -> None:
    _settings(cfg, tables)
    if "features" in tables and "structure" in tables["features"]:
        tables["features"] = tables["features"].drop(columns="structure")


def _divergence(cfg: dict, tables: dict) -> None:
    models = tables.get("models")
    if models is not None and "diverged" not in models:
        tables["models"] = models.assign(
            diverged=False, diverged_step=pd.array([pd.NA] * len(models), "Int64"))


def _own_settings(cfg: dict, tables: dict) -> None:
    """Settings a family added since, at the value its results were made with (Setting.old),
    in the config and as columns of its main table (a row per member)."""
    fam = family.of(cfg)
    _settings(cfg, tables, fam.settings, fam.tables[0])


# schema k -> the step that makes it k + 1. From 4 on, a step adds the settings each family
# gained since (a family that gained none is left as it is); a new setting with an `old` value
# is a schema bump whose step is _own_settings again (docs/extending.md).
STEPS = {1: _to_2, 2: _settings, 3: _divergence, 4: _own_settings, 5: _own_settings,
         6: _own_settings}


def upgrade(cfg: dict, tables: dict | None = None, where="results") -> tuple[dict, dict]:
    """(config, tables) brought to SCHEMA; tables may be {} when only the config is read."""
    cfg, tables = copy.deepcopy(cfg), dict(tables or {})
    found = schema_of(cfg)
    if found > SCHEMA:
        raise ConfigError(f"'{where}' was written by a newer toysuper (results schema {found}; "
                          f"this version reads up to {SCHEMA}); upgrade toysuper to read it")
    for k in range(found, SCHEMA):
        STEPS[k](cfg, tables)
    cfg["schema"] = SCHEMA
    return cfg, tables
