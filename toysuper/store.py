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
  run.lock           while a run writes here: its host and pid (Lock), so a second run refuses
Every file is written to a temporary name and renamed into place, so no reader ever sees half a file.
A part that is nevertheless damaged (a disk filled up, a copy cut short) is trained again.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from toysuper import config as config_mod
from toysuper import family, settings
from toysuper import upgrade as upgrade_mod
from toysuper.errors import ConfigError

# what a run writes besides config.toml, parts/, figures/ and its tables (*.parquet)
PRODUCTS = ("weights.npz", "snapshots.npz", "summary.json")
LOCK = "run.lock"
# What reading a damaged .npz, .parquet or .toml raises: a truncated zip is a BadZipFile (not an
# OSError), a bad CRC or shape a ValueError, a missing member a KeyError, an empty file EOFError;
# pyarrow's ArrowInvalid is a ValueError.
DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, tomllib.TOMLDecodeError)


def notice(message: str) -> None:
    """A one-line message to the user on stderr, beside the progress bar."""
    print(f"toysuper: {message}", file=sys.stderr, flush=True)


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover (a link out of the folder, even) is never written through
    write(tmp)
    os.replace(tmp, path)


def _savez(path: Path, arrays: dict, compress: bool = False) -> None:
    """`compress` for the weights kept with the results: a sweep over widths stacks every model's
    weights zero-padded to the largest, and the padding compresses away. Resume parts are
    written and read once, so they are not compressed."""
    # through an open file: np.savez given a path would append ".npz" to the temporary name
    def write(p):
        with open(p, "wb") as fh:
            (np.savez_compressed if compress else np.savez)(fh, **arrays)
    _atomic(path, write)


def write_text(path: Path, text: str) -> None:
    _atomic(path, lambda p: p.write_text(text))


def write_table(path: Path, df: pd.DataFrame) -> None:
    _atomic(path, lambda p: df.to_parquet(p, index=False))


class DamagedConfig(ConfigError):
    """A results directory whose config.toml cannot be read."""


def differences(out: Path, cfg: dict) -> list[str]:
    """Sections in which the results in `out` were made with other settings than `cfg`."""
    stored = Path(out) / "config.toml"
    if not stored.exists():
        return []
    try:
        text = tomllib.loads(stored.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise DamagedConfig(f"'{stored}' is damaged ({type(e).__name__}: {_first_line(e)}), so "
                            f"what its results are cannot be checked; pass --force to replace "
                            f"them or --out to write elsewhere") from None
    # settings added to toysuper since `old` was written take the values it was made with
    old, _ = upgrade_mod.upgrade(text, where=out)
    new = tomllib.loads(config_mod.to_toml(cfg))
    # what the models are: [run] only chunks the work, and figures can be redrawn any time
    kept = [k for k in settings.sections(family.name_of(cfg)) if k != "run"] + ["sweep"]
    return [k for k in kept if old.get(k, {}) != new.get(k)]


def finished_run(out: Path, cfg: dict, force: bool):
    """The finished results of `cfg` in `out` (summary.json, the same settings once an older
    schema is read upgraded, every file readable), or None: a run then trains and writes nothing."""
    out = Path(out)
    if force or not (out / "summary.json").exists() or not (out / "config.toml").exists():
        return None
    try:
        return None if differences(out, cfg) else load(out)
    except ConfigError:  # damaged (rebuilt from parts/ by the run) or another config (refused)
        return None


def training_seconds(out: Path) -> float:
    """Seconds spent training the finished chunks in `out` (each part keeps its own, so runs
    that were interrupted and resumed all count; parts written before this kept none)."""
    total = 0.0
    for part in sorted((Path(out) / "parts").glob("chunk-*.npz")):
        try:
            with open(part, "rb") as fh, np.load(fh) as z:
                total += float(z["seconds"]) if "seconds" in z.files else 0.0
        except DAMAGED:  # said when the part is read for its models (load_part)
            pass
    return total


def timing(out: Path, t0: float) -> dict:
    """summary.json's seconds: training summed over every run into `out` (training_seconds),
    and the wall time of the run that started at t0."""
    return {"seconds": round(training_seconds(out), 2),
            "last_run_seconds": round(time.time() - t0, 2)}


def prepare(out: Path, cfg: dict, force: bool) -> None:
    """Make `out` ready for `cfg`: refuse other configs unless forced, keep finished chunks."""
    out = Path(out)
    stored = out / "config.toml"
    if stored.exists():
        try:
            differ = differences(out, cfg)
        except DamagedConfig:
            if not force:
                raise
            differ = ["config.toml"]  # unreadable: replaced, as --force asks
        if differ and not force:
            raise ConfigError(
                f"'{out}' holds results of a different configuration (differs in: "
                f"{', '.join(differ)}); pass --force to replace them or --out to write elsewhere")
        if differ:
            clear(out)
    elif out.exists() and any(p.name != LOCK for p in out.iterdir()) and not force:
        raise ConfigError(f"'{out}' exists and is not a toysuper results directory; "
                          f"pass --force to write into it or choose another --out")
    (out / "parts").mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)  # incomplete until this run finishes
    write_config(out, cfg)


def write_config(out: Path, cfg: dict) -> None:
    write_text(Path(out) / "config.toml", config_mod.to_toml(
        {**cfg, "schema": upgrade_mod.SCHEMA, "version": upgrade_mod.VERSION}))


# Called with a results directory whenever a run rewrites it: readers that cache a directory
# by its path (sources.stored, starts._kept) forget what they read there.
REWRITTEN: list = []


def on_rewrite(forget) -> None:
    """Register `forget(path)`, called when a results directory is cleared or rewritten."""
    REWRITTEN.append(forget)


def _rewritten(out: Path) -> None:
    for forget in REWRITTEN:
        forget(Path(out))


def clear(out: Path) -> None:
    """Remove everything a previous run wrote into `out`."""
    _rewritten(out)
    for name in PRODUCTS + ("config.toml",):
        (out / name).unlink(missing_ok=True)
    for table in out.glob("*.parquet"):  # derived tables
        table.unlink()
    for sub in ("parts", "figures"):
        shutil.rmtree(out / sub, ignore_errors=True)


class Lock:
    """DIR/run.lock while a run writes into DIR, so that a second run into it refuses.

    The file holds the host, pid and process start time of the run that holds it; it is created
    whole or not at all (written aside, then hard-linked into place, which fails if it exists).
    A lock whose process is gone (not alive on this host, or its pid now another process's) is
    stale: a killed run cannot leave a directory locked for ever. A lock held on another host
    cannot be checked from here, and is respected until deleted by hand.
    """

    def __init__(self, out):
        self.path = Path(out) / LOCK
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = _holder()
        aside = self.path.with_name(f".{LOCK}.{me['host']}.{me['pid']}")
        aside.write_text(json.dumps(me))
        try:
            for _ in range(5):  # each round either takes the lock or clears a stale one
                try:
                    os.link(aside, self.path)
                    self.held = True
                    return
                except FileExistsError:
                    pass
                seen = _read_text(self.path)
                holder = _parse(seen)
                if seen is not None and holder is not None and _alive(holder):
                    raise ConfigError(
                        f"'{self.path.parent}' is in use by another run (pid {holder['pid']} on "
                        f"{holder['host']}, since {holder.get('since', '?')}); wait for it to "
                        f"finish or write elsewhere with --out (if that run is gone, delete "
                        f"{self.path})")
                if seen is not None:
                    who = f"pid {holder['pid']} on {holder['host']}" if holder else "unreadable"
                    notice(f"{self.path} was left by a run that is gone ({who}); taking it over")
                    _remove_if_unchanged(self.path, seen)
            raise ConfigError(f"could not lock '{self.path.parent}': other runs keep taking "
                              f"{self.path}; run one at a time")
        finally:
            aside.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()


def _holder() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_time(os.getpid()),
            "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _parse(text: str | None) -> dict | None:
    try:
        holder = json.loads(text or "")
        return holder if isinstance(holder, dict) and {"host", "pid"} <= holder.keys() else None
    except json.JSONDecodeError:  # not written by a toysuper run (locks are written whole)
        return None


def _start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (Linux), or None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count fields after its end
    return int(stat[stat.rindex(")") + 2:].split()[19])


def _alive(holder: dict) -> bool:
    """Whether the run that wrote `holder` may still be running."""
    if holder["host"] != socket.gethostname():
        return True  # cannot be checked from this host
    pid = int(holder["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
        if state[state.rindex(")") + 2] in "ZX":  # killed, not yet reaped by its parent
            return False
    except OSError:
        pass
    started = holder.get("started")
    # the pid was reused by a process that started after the lock's own
    return started is None or _start_time(pid) in (None, started)


def _remove_if_unchanged(path: Path, seen: str) -> None:
    """Remove a stale lock, unless another run replaced it since it was read."""
    grabbed = path.with_name(f".{LOCK}.stale.{socket.gethostname()}.{os.getpid()}")
    try:
        os.rename(path, grabbed)  # atomic: from here no one else can remove or take it
    except FileNotFoundError:
        return  # another run cleared it first
    if _read_text(grabbed) != seen:  # a live run's lock, taken in between: put it back
        try:
            os.link(grabbed, path)
        except FileExistsError:
            pass
    grabbed.unlink(missing_ok=True)


def part_path(out: Path, index: int) -> Path:
    return Path(out) / "parts" / f"chunk-{index:05d}.npz"


def save_part(out: Path, index: int, ids, params: dict, history, final, snapshots=None,
              seconds: float = 0.0) -> None:
    """A finished chunk, with the seconds its training took (training_seconds)."""
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays["seconds"] = np.float64(seconds)
    arrays.update({f"snap/{k}": v for k, v in (snapshots or {}).items()})
    _savez(part_path(out, index), dict(ids=ids, history=history, final=final, **arrays))


def finished(out: Path, index: int, ids, expect=None) -> bool:
    """Whether chunk `index` of these members is saved whole (a damaged part is not finished)."""
    return _read_part(out, index, ids, expect)[0] is not None


def load_part(out: Path, index: int, ids, expect=None):
    """A finished chunk's arrays (params, history, final, extra), or None when it must be
    trained: absent, made for other members, or damaged (said on stderr). `expect` ({array
    name: shape}, the family's part_shapes) checks every array's shape, so a part cut short is
    never read as finished."""
    part, problem = _read_part(out, index, ids, expect)
    if problem:
        notice(f"{part_path(out, index)} is damaged ({problem}); its {len(ids)} models will "
               f"be trained again")
    return part


def _read_part(out: Path, index: int, ids, expect):
    """(arrays or None, what is wrong with the file or None)."""
    path = part_path(out, index)
    if not path.exists():
        return None, None
    try:
        # opened here, not by np.load, which leaves its file open when the zip is unreadable
        with open(path, "rb") as fh, np.load(fh) as z:
            if not np.array_equal(z["ids"], ids):
                return None, None  # another sweep's chunk: trained again, nothing is wrong
            part = {prefix: {k.split("/", 1)[1]: z[k] for k in z.files
                             if k.startswith(prefix + "/")} for prefix in ("param", "snap")}
            arrays = family.Arrays(part["param"], z["history"], z["final"], part["snap"])
    except DAMAGED as e:
        return None, f"{type(e).__name__}: {_first_line(e)}"
    problem = _shape_problem(arrays, expect) if expect is not None else None
    return (None, problem) if problem else (arrays, None)


def _shape_problem(arrays, expect: dict) -> str | None:
    """What differs between a part's arrays and the shapes its members train into."""
    params, history, final, snaps = arrays
    found = {"history": history.shape, "final": final.shape,
             **{f"param/{n}": a.shape for n, a in params.items()},
             **{f"snap/{n}": a.shape for n, a in snaps.items()}}
    for name in sorted(expect.keys() | found.keys()):
        if expect.get(name) != found.get(name):
            return f"{name} has shape {found.get(name)}, expected {expect.get(name)}"
    return None


def write_results(out: Path, tables: dict, weights: dict, snapshots: dict, summary: dict) -> None:
    """Write the tables, weights and snapshots, then summary.json, which marks the run complete."""
    out = Path(out)
    _rewritten(out)
    for name, df in tables.items():
        write_table(out / f"{name}.parquet", df)
    _savez(out / "weights.npz", weights, compress=True)
    if snapshots:
        _savez(out / "snapshots.npz", snapshots, compress=True)
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")


def load(path):
    """Read a finished results directory, upgraded to the current schema (upgrade.py), as its
    family's Results.

    A missing or damaged file is a ConfigError naming it (one line), never a traceback.
    """
    path = Path(path)
    if not (path / "config.toml").exists():
        raise ConfigError(f"'{path}' is not a toysuper results directory (no config.toml)")
    if not (path / "summary.json").exists():
        raise ConfigError(f"results in '{path}' are incomplete (no summary.json: the run did not "
                          f"finish); run the experiment again with the same settings to resume it")
    fam, cfg, tables, weights, snapshots, derived = _stored(path)
    # what every reader sees, stored or trained in memory (SAEs: their threshold labels)
    return fam.loaded(fam.results.of(path, cfg, tables, weights, snapshots, derived))


def _stored(path: Path):
    """(family, config, its tables upgraded, weights, snapshots, derived tables) as stored."""
    cfg = _read(path, "config.toml", lambda f: tomllib.loads(f.read_text()))
    try:
        config_mod.check_name(cfg.get("name", path.name))
    except ConfigError as e:
        raise ConfigError(f"results in '{path}' cannot be read: its config.toml's {e}") from None
    if lacks := _lacks(upgrade_mod.upgrade(cfg, where=path)[0]):  # cut short, or not ours
        raise ConfigError(f"results in '{path}' are damaged: config.toml lacks {lacks[0]}"
                          f"{f' and {len(lacks) - 1} more settings' if len(lacks) > 1 else ''}; "
                          f"run the experiment again with --force to rebuild them")
    fam = family.of(cfg)
    own = {f.stem: f for f in own_files(path, "*.parquet")}
    # each is read by name: a missing or odd one is named in one line (_read)
    tables = {name: _read(path, f"{name}.parquet", pd.read_parquet) for name in fam.tables}
    cfg, tables = upgrade_mod.upgrade(cfg, tables, where=path)  # a newer schema is refused here
    weights = _read(path, "weights.npz", _npz)
    derived = {name: _read(path, f.name, pd.read_parquet) for name, f in own.items()
               if name not in fam.tables}
    snapshots = _read(path, "snapshots.npz", _npz) if (path / "snapshots.npz").exists() else {}
    return fam, cfg, tables, weights, snapshots, derived


def _lacks(cfg: dict) -> list[str]:
    """The settings of a resolved config that `cfg` lacks ([run] aside: it only says how the
    work was cut, and older results may predate some of its keys)."""
    def section(name):
        return cfg[name] if isinstance(cfg.get(name), dict) else {}
    lacks = [s.key for s in family.of(cfg).settings if not s.key.startswith("run.")
             and s.key.split(".", 1)[1] not in section(s.key.split(".")[0])]
    return lacks + ([] if isinstance(cfg.get("sweep"), dict) else ["[sweep]"])


def own_files(folder: Path, pattern: str) -> list[Path]:
    """The files of `folder` matching `pattern`, sorted, that are its own (`inside`)."""
    return sorted(f for f in Path(folder).glob(pattern) if inside(f, folder))


def inside(file: Path, folder: Path) -> bool:
    """Whether `file` is a plain file of `folder` itself: not a symbolic link leading out of it
    (a results directory is read, copied and sent as a whole; what it links to elsewhere is
    not part of it), not a folder, device or pipe."""
    try:
        real = Path(file).resolve(strict=True)
    except (OSError, RuntimeError):  # a dangling link or a loop
        return False
    return real.is_file() and real.is_relative_to(Path(folder).resolve())


def _npz(file: Path) -> dict:
    with open(file, "rb") as fh, np.load(fh) as z:  # closed even when unreadable (_read_part)
        return {k: z[k] for k in z.files}


def _read(path: Path, name: str, reader):
    """reader(path / name), or a one-line ConfigError saying which file is missing or damaged
    and how to rebuild it: from the finished chunks when they are there, else by training."""
    file = path / name
    # parts/ cannot rebuild a lost config.toml: without it nothing says what the parts are
    if name != "config.toml" and any((path / "parts").glob("chunk-*.npz")):
        how = ("run the experiment again with the same settings: its finished chunks (parts/) "
               "are kept and the results rebuilt from them")
    else:
        how = "run the experiment again with --force to rebuild them"
    stored = {t for f in family.every() for t in f.tables}  # every family's own tables
    if name.endswith(".parquet") and name[:-8] not in stored:  # derived, or stray
        how = f"remove it: `toysuper plot {path}` makes the derived tables again"
    name = name if name.isprintable() else repr(name)[1:-1]  # a message is one line
    if not file.exists():
        raise ConfigError(f"results in '{path}' are damaged: {name} is missing; {how}")
    if not inside(file, path):
        raise ConfigError(f"results in '{path}' are not read: {name} is not a plain file of the "
                          f"folder (a link out of it, or not a file); replace it with the file")
    try:
        return reader(file)
    except DAMAGED as e:
        raise ConfigError(f"results in '{path}' are damaged: {name} cannot be read "
                          f"({type(e).__name__}: {_first_line(e)}); {how}") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "no detail"


def upgrade(path) -> int:
    """Rewrite an older results directory in the current schema; returns the schema it had."""
    path = Path(path)
    load(path)  # refuses what cannot be read, as every reader would
    _, cfg, tables, *_ = _stored(path)
    found = upgrade_mod.schema_of(tomllib.loads((path / "config.toml").read_text()))
    if found < upgrade_mod.SCHEMA:
        for name, df in tables.items():
            write_table(path / f"{name}.parquet", df)
        write_config(path, cfg)
    return found
