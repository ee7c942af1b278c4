"""The family contract: what the engine (engine.py, plan.py, store.py) needs of a kind of network.

A family is a kind of network the lab trains many of at once (toy models, SAEs, ...). The engine
plans, trains, saves, resumes, stores, loads and reports any family through this small record of
functions, in the manner of optax's GradientTransformation; a family registers one, and the
engine imports no family module. A new family is one new file that builds a `Family` and calls
`register` (see docs/extending.md; tests/linreg_family.py is a complete one in ~150 lines).

Members of a family are trained in chunks: members whose static settings (their `shape`) agree
compile once and are stacked along a leading member axis; everything else is a per-member array
(`inputs`). `train` returns the chunk's `Arrays`, whose first axis is the member axis.
"""

from __future__ import annotations

import importlib
from typing import Callable, NamedTuple

import numpy as np


class Arrays(NamedTuple):
    """What one chunk of k members trains into, member axis first; a part file keeps these."""
    params: dict            # name -> [k, ...] final parameters
    history: np.ndarray     # [k, steps / log_every, ...] per-segment training numbers
    final: np.ndarray       # [k] the final evaluated loss
    extra: dict             # name -> [k, ...] anything else a chunk keeps (snapshots, sums)


def _same(cfg, sweep):
    return sweep


def _nothing(*_):
    return None


def _none_read(sweep):
    return []


def _as_trained(out, cfg, res, progress):
    return res


class Family(NamedTuple):
    """One family of networks. Fields without a default are what every family must say."""
    name: str               # as figures and derived tables name the results they read
    noun: str               # "models", "SAEs": how messages count the members
    described: str          # "a toy-model experiment": how messages name its experiments
    member: str             # the id column of the main table: "model", "sae"
    section: str | None     # the experiment-file section that marks this family ([sae]); None:
    #                         the default family, of a file with no such section
    settings: tuple         # its settings (settings.Setting), sections in order of first use
    tables: tuple           # the tables a run stores, the main table (a row per member) first
    results: type           # .of(path, config, tables, weights, snapshots, derived) -> Results
    shape: Callable         # flat settings of one member -> its hashable static Shape, with
    #                         .steps and .log_every (and .eval_batch, .batch for the probe)
    inputs: Callable        # (flat settings of k members, width) -> per-member inputs, padded
    train: Callable         # (shape, inputs, on_segment, start) -> Arrays of width members
    group_size: Callable    # shape -> members vmapped together on one device
    width_quantum: Callable  # shape -> a chunk's width is a multiple of this
    memory: Callable        # shape -> (bytes per member, bytes per device in flight)
    host_bytes: Callable    # (shape, members) -> host memory its tables take
    label: Callable         # shape -> how --plan names it
    part_shapes: Callable   # (shape, k) -> {array name in a part file: its shape}
    assemble: Callable      # (cfg, sweep, chunks, done) -> (tables, weights, snapshots)
    summary: Callable       # results -> the one line a run ends with
    probe: Callable         # (shape, inputs) -> (segment program, initial state), for --plan
    always: tuple = ()      # derived tables (tables.py) every run of this family makes
    prepare: Callable = _same           # (cfg, expanded sweep) -> the sweep, filled (what its
    #                                     tables and figures read too)
    check: Callable = _nothing          # sweep -> raise ConfigError before anything trains
    reads: Callable = _none_read        # sweep -> [(setting, results folder it reads)],
    #                                     never the run's own --out
    start: Callable = _nothing          # (sweep, ids, width, shape) -> a chunk's start or None
    validate: Callable = _nothing       # resolved cfg -> raise ConfigError on what it refuses
    loaded: Callable = lambda res: res  # results as read or trained -> what readers see
    after: Callable = _as_trained       # (out, cfg, res, progress) -> res: a finished run's
    #                                     extra rounds (toy models' run.polish)
    page: Callable | None = None        # (res, summary, traps) -> report.Page: its facts,
    #                                     kept members and views on the report (None: common)
    footnote: Callable | None = None    # res -> (words, flagged): figures' check footnote
    default: bool = False   # the family of an experiment that names no family section


REGISTRY: dict[str, Family] = {}
# the families that come with toysuper, imported on first use of the registry (so that the
# engine and settings never import them at module level)
BUILTIN = ("toysuper.families.toys", "toysuper.families.saes")


def register(family: Family) -> Family:
    """Add (or replace, on reloading its module) a family; returns it."""
    if family.section is None and not family.default:
        raise ValueError(f"family {family.name!r} needs a section that marks its experiments")
    REGISTRY[family.name] = family
    return family


def _loaded() -> dict[str, Family]:
    for module in BUILTIN:
        importlib.import_module(module)
    return REGISTRY


def get(name: str) -> Family:
    families = _loaded()
    if name not in families:
        raise KeyError(f"no family {name!r}; registered: {', '.join(families)}")
    return families[name]


def default() -> Family:
    """The family of an experiment file that names no family's section (toy models)."""
    return next(f for f in _loaded().values() if f.default)


def every() -> list[Family]:
    return list(_loaded().values())


def name_of(cfg: dict) -> str:
    """The family of an experiment (a raw file or a resolved config): the one whose section it
    has, else the default family."""
    families = _loaded()
    for f in families.values():
        if f.section is not None and f.section in cfg:
            return f.name
    return default().name


def of(cfg: dict) -> Family:
    return get(name_of(cfg))


def members(res):
    """The main table of a results object: a row per member (res.models, res.saes, ...)."""
    return getattr(res, of(res.config).tables[0])
