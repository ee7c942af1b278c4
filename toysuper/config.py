"""Experiment files: defaults, `--set` overrides, validation and sweep expansion.

An experiment is a TOML file with the sections [model], [data], [train], [run] and [sweep].
Every setting has a dotted name (`data.density`), declared with its default and check in
toysuper/settings.py; [sweep] maps dotted names to axes, and the product of the axes is the list
of models. A model's settings are a flat dict of dotted names.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import re
import tomllib
from pathlib import Path

import numpy as np

from toysuper import family as family_mod
from toysuper import settings
from toysuper.errors import ConfigError
from toysuper.settings import feature_vectors

# traps: why the stored results of this experiment are known to hold trapped models or local
# minima (tests/test_committed_results.py accepts them only when this says why)
# claims: the experiment's findings beside the paper's, as [[claims]] tables (toysuper/claims.py
# checks them against the registered measurements, in outputs.check, before training)
TOP_LEVEL = {"name", "description", "figures", "tables", "traps", "claims"}
SECTIONS = settings.SECTIONS  # of a toy-model experiment; an SAE experiment's: settings.sections("saes")
AXIS_FORMS = ("list", "logspace", "linspace", "range")
# [sweep] cases = [{...}, {...}]: an axis whose values each set several keys together
CASES = "cases"


def load(path, overrides=()) -> dict:
    """Read an experiment file, apply `key=value` overrides and validate; returns the config."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"'{path}' is a folder; give an experiment file (a .toml) or the name "
                          f"of one in experiments/ (`toysuper list` lists them)")
    if not path.is_file():
        raise ConfigError(f"experiment file '{path}' does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"'{path}' is not valid TOML: {e}") from None
    raw.setdefault("name", path.stem)
    return resolve(raw, overrides)


def resolve(raw: dict, overrides=()) -> dict:
    """Merge `raw` over the defaults, apply overrides, validate; returns a full nested config."""
    family = settings.family(raw)
    sections = settings.sections(family)
    cfg = settings.defaults(family)
    cfg.update({"name": "experiment", "description": "", "figures": [], "tables": [], "traps": "",
                "claims": [], "sweep": {}})
    for key, value in raw.items():
        if key in sections:
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}] must be a table of settings, got {value!r}")
            for k, v in value.items():
                _set(cfg, f"{key}.{k}", v)
        elif key == "sweep":
            cfg["sweep"] = _flatten_sweep(value, family)
        elif key in TOP_LEVEL:
            cfg[key] = value
        else:
            raise ConfigError(
                f"unknown key '{key}'; the file may hold {', '.join(sorted(TOP_LEVEL))} "
                f"and the sections {', '.join(sections + ('sweep',))}" + _others(family))
    for item in overrides:
        key, value = parse_override(item)
        if key == f"sweep.{CASES}":
            cfg["sweep"][CASES] = _flatten_cases(value, family)
        elif key.startswith("sweep."):
            cfg["sweep"][_check_key(key[len("sweep."):], family)] = value
        elif key in TOP_LEVEL:
            cfg[key] = value
        else:
            _set(cfg, key, value)
            cfg["sweep"].pop(key, None)  # a fixed value given on the command line wins over an axis
    validate(cfg)
    return cfg


def _others(name: str) -> str:
    """What the other families' experiment files hold, for an unknown section."""
    others = [f"{f.described} has [{'], ['.join(settings.sections(f.name))}]"
              for f in family_mod.every() if f.name != name]
    return f" ({'; '.join(others)})" if others else ""


def parse_override(item: str) -> tuple[str, object]:
    """`data.density=0.1` -> ('data.density', 0.1); values are TOML, bare words are strings."""
    if "=" not in item:
        raise ConfigError(f"--set '{item}' must look like dotted.key=value")
    key, text = (s.strip() for s in item.split("=", 1))
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key, value


_check_key = settings.check_key


def _set(cfg: dict, key: str, value) -> None:
    _check_key(key, settings.family(cfg))
    section, name = key.split(".", 1)
    cfg[section][name] = value


def _flatten_sweep(table: dict, family: str = "toys") -> dict:
    """Accept both `"data.density" = [...]` and TOML's nested `data.density = [...]`."""
    if not isinstance(table, dict):
        raise ConfigError(f"[sweep] must be a table of axes, got {table!r}")
    axes = {}
    for key, value in table.items():
        if key == CASES:
            axes[CASES] = _flatten_cases(value, family)
        elif key in settings.sections(family) and isinstance(value, dict) and not _is_axis_spec(value):
            for k, v in value.items():
                axes[_check_key(f"{key}.{k}", family)] = v
        else:
            axes[_check_key(key, family)] = value
    return axes


def _flatten_cases(cases, family: str = "toys") -> list[dict]:
    """`cases = [{"data.correlated" = [[0, 1]]}, {data = {anticorrelated = [[0, 1]]}}]` -> flat dicts."""
    if not (isinstance(cases, list) and cases and all(isinstance(c, dict) for c in cases)):
        raise ConfigError(f"sweep axis 'cases' = {cases!r} must be a non-empty list of tables of "
                          f"settings, e.g. [{{\"data.correlated\" = [[0, 1]]}}, {{}}]")
    flat = []
    for case in cases:
        out = {}
        for key, value in case.items():
            if key in settings.sections(family) and isinstance(value, dict):
                out.update({_check_key(f"{key}.{k}", family): v for k, v in value.items()})
            else:
                out[_check_key(key, family)] = value
        flat.append(out)
    return flat


def _is_axis_spec(value) -> bool:
    return isinstance(value, dict) and bool(set(value) & set(AXIS_FORMS[1:]))


def axis_values(key: str, spec) -> list:
    """The values of one sweep axis: a list, {logspace=[a, b], num=N}, {linspace=...}, {range=N}."""
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"sweep axis '{key}' is an empty list")
        return spec
    if not isinstance(spec, dict):
        raise ConfigError(f"sweep axis '{key}' = {spec!r} must be a list or a table with one of "
                          f"logspace, linspace, range")
    if "range" in spec:
        n = spec["range"]
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"sweep axis '{key}': range = {n!r} must be a positive integer")
        return list(range(n))
    form = "logspace" if "logspace" in spec else "linspace" if "linspace" in spec else None
    ends, num = spec.get(form), spec.get("num")
    if form is None or set(spec) - {form, "num"}:
        raise ConfigError(f"sweep axis '{key}' = {spec!r}: use {{logspace = [a, b], num = N}}, "
                          f"{{linspace = [a, b], num = N}} or {{range = N}}")
    if not (isinstance(ends, list) and len(ends) == 2 and all(_is_number(e) for e in ends)):
        raise ConfigError(f"sweep axis '{key}': {form} = {ends!r} must be two numbers [a, b]")
    if not isinstance(num, int) or num < 1:
        raise ConfigError(f"sweep axis '{key}': num = {num!r} must be a positive integer")
    if form == "logspace":
        if min(ends) <= 0:
            raise ConfigError(f"sweep axis '{key}': logspace ends {ends} must be positive")
        vals = np.geomspace(ends[0], ends[1], num)
    else:
        vals = np.linspace(ends[0], ends[1], num)
    return [float(v) for v in vals]


def expand(cfg: dict) -> list[dict]:
    """The flat settings of every model, in sweep order (the first axis varies slowest)."""
    base = _fixed(cfg)
    # a case is (its index, its settings): the index becomes the table column `case`
    axes = [(k, list(enumerate(spec)) if k == CASES else axis_values(k, spec))
            for k, spec in cfg["sweep"].items()]
    models = []
    for combo in itertools.product(*(vals for _, vals in axes)):
        one = dict(base)
        for (k, _), v in zip(axes, combo):
            if k == CASES:  # several settings at once
                one["sweep.case"], case = v
                one.update(case)
            else:
                one[k] = v
        models.append(one)
    return models


def check_name(name) -> None:
    """An experiment's name names files (results/NAME, experiments/NAME.toml): never a path."""
    if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name)):
        raise ConfigError(f"name = {name!r} may hold only letters, digits, '_', '-' and '.', "
                          f"and may not start with '.'")


# host bytes each model takes at the least: its expanded settings and its table rows
# (train.host_bytes's floor), to refuse a sweep that cannot fit before expanding it
HOST_BYTES_PER_MODEL = 3000


def host_memory() -> int:
    """This machine's physical memory in bytes (a large number where it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**62


def _axis_length(key: str, spec) -> int:
    """len(axis_values(key, spec)) without making the values ({range = 1e8} is 1e8 numbers)."""
    if isinstance(spec, dict) and isinstance(spec.get("range"), int):
        return max(spec["range"], 0)
    if isinstance(spec, dict) and isinstance(spec.get("num"), int):
        return max(spec["num"], 0)
    return len(axis_values(key, spec))


def _check_count(cfg: dict) -> None:
    """Refuse, without making it, a sweep whose settings alone would not fit in host memory."""
    n = math.prod(_axis_length(k, v) for k, v in cfg["sweep"].items())
    need, have = n * HOST_BYTES_PER_MODEL, host_memory()
    if need > have:
        raise ConfigError(f"the sweep has {n:,} models; their settings and table rows alone need "
                          f"about {need / 2**30:,.0f} GB of host memory, more than this machine's "
                          f"{have / 2**30:,.0f} GB; sweep fewer values or split the experiment")


def validate(cfg: dict) -> None:
    """Check the fixed settings and every value of every axis; raises ConfigError.

    By concern: the sweep's cases (each checked as a sweep of its own), the file's top-level
    keys, every setting's value, the rules every family shares, then the family's own."""
    _check_unswept(cfg)
    if CASES in cfg["sweep"]:
        return _check_cases(cfg)
    _check_top_level(cfg)
    _check_values(cfg)
    _check_schedule(cfg)
    family_mod.of(cfg).validate(cfg)  # the family's own rules across settings


def _check_cases(cfg: dict) -> None:
    """Each sweep case is checked as a sweep with its settings fixed."""
    for i, case in enumerate(cfg["sweep"][CASES]):
        both = sorted(set(case) & set(cfg["sweep"]))
        if both:
            raise ConfigError(f"{both} set both by sweep case {i} and by a sweep axis")
        sub = copy.deepcopy(cfg)
        del sub["sweep"][CASES]
        for key, value in case.items():
            _set(sub, key, value)
        try:
            validate(sub)
        except ConfigError as e:
            raise ConfigError(f"sweep case {i} {case}: {e}") from None


def _check_top_level(cfg: dict) -> None:
    for key in ("name", "description", "traps"):
        if not isinstance(cfg[key], str):
            raise ConfigError(f"'{key}' must be a string, got {cfg[key]!r}")
    check_name(cfg["name"])
    for key in ("figures", "tables"):  # the names are checked against the registries in outputs.py
        names = cfg[key]
        if not (isinstance(names, list) and all(isinstance(f, str) for f in names)):
            raise ConfigError(f"{key} = {names!r} must be a list of names")


def _check_values(cfg: dict) -> None:
    """Every fixed setting and every value of every axis, then the sweep's size."""
    fixed = _fixed(cfg)
    for key, value in fixed.items():
        settings.check_value(key, value, fixed)
    _check_count(cfg)
    for key, spec in cfg["sweep"].items():
        for value in axis_values(key, spec):
            settings.check_value(key, value, {**fixed, key: value})
    if math.prod(len(axis_values(k, s)) for k, s in cfg["sweep"].items()) < 1:
        raise ConfigError("the sweep has no models")


def _check_schedule(cfg: dict) -> None:
    for s in fixed_or_axis(cfg, "train.steps"):
        for le in fixed_or_axis(cfg, "train.log_every"):
            if s % le:
                raise ConfigError(f"train.steps = {s} must be a multiple of train.log_every = {le}")


# Settings read only after training (the attack of toysuper/adversarial.py): a sweep axis over
# them would train identical copies of every model, one per value.
UNSWEPT = ("attack.",)


def _check_unswept(cfg):
    cases = cfg["sweep"].get(CASES, [])
    for key in [*cfg["sweep"], *(k for case in cases if isinstance(case, dict) for k in case)]:
        if key.startswith(UNSWEPT):
            raise ConfigError(f"{key} cannot be swept (a sweep axis or case): it changes how "
                              f"trained models are measured, not the models, so each value would "
                              f"train the same models again; set it in [{key.split('.')[0]}] "
                              f"(attack.eps takes a list of radii, each applied to every model)")


def check_sets(cfg):
    """No feature in two sets; an anticorrelated set's densities sum to at most 1."""
    keys = [k for k in cfg["sweep"] if k.startswith("data.density")]
    for corr, anti in itertools.product(fixed_or_axis(cfg, "data.correlated"),
                                        fixed_or_axis(cfg, "data.anticorrelated")):
        members = [i for m in corr + anti for i in m]
        if len(members) != len(set(members)):
            twice = sorted({i for i in members if members.count(i) > 1})
            raise ConfigError(f"feature(s) {twice} belong to more than one set of data.correlated "
                              f"= {corr} and data.anticorrelated = {anti}")
        if (corr or anti) and "strata" in fixed_or_axis(cfg, "train.eval"):
            raise ConfigError("train.eval = 'strata' weights patterns of independent features; "
                              "with correlated or anticorrelated sets use train.eval = 'sample'")
        for values in itertools.product(*(axis_values(k, cfg["sweep"][k]) for k in keys)) if anti else ():
            one = {**_fixed(cfg), **dict(zip(keys, values))}
            _, p = feature_vectors(one)
            for m in anti:
                if p[m].sum() > 1 + 1e-9:
                    raise ConfigError(f"data.anticorrelated set {m} has densities summing to "
                                      f"{p[m].sum():.3g} > 1; at most one member is active at a "
                                      f"time, so their densities must sum to at most 1")


def _fixed(cfg) -> dict:
    """The fixed (not swept) settings as flat dotted names."""
    return {f"{s}.{k}": v for s in settings.sections(settings.family(cfg)) for k, v in cfg[s].items()}


def fixed_or_axis(cfg, key):
    """The values `key` takes in the sweep: its axis, or its one fixed value."""
    section, name = key.split(".")
    return axis_values(key, cfg["sweep"][key]) if key in cfg["sweep"] else [cfg[section][name]]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def to_toml(cfg: dict) -> str:
    """Write a resolved config back as TOML (the subset of TOML our configs use)."""
    lines = []
    for key in ("name", "description", "traps", "figures", "tables", "schema", "version"):
        if key in cfg:
            lines.append(f"{key} = {_toml_value(cfg[key])}")
    if cfg.get("claims"):  # written only when stated, so configs without claims read as before
        lines.append(f"claims = {_toml_value(cfg['claims'])}")
    for section in settings.sections(settings.family(cfg)):
        lines.append(f"\n[{section}]")
        lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in cfg[section].items()]
    lines.append("\n[sweep]")
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in cfg["sweep"].items()]
    return "\n".join(lines) + "\n"


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} as TOML")
