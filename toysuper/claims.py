"""Claims: each finding of an experiment as data, measured on its stored results.

An experiment file lists its claims as `[[claims]]` tables: one sentence, the paper's statement
and where it is, a registered measurement (toysuper/measures/) with its arguments, the ranges of
the measured number that count as reproduced or partly reproduced (or, for a finding beyond the
paper, the range in which it holds) and the verdict the lab states. `table(res)` measures every
claim on a results object and recomputes its verdict; a stated verdict the measurement no longer
supports is a failing claim (tests/test_committed_results.py). The table is a derived table
(`toysuper.tables.get(res, "claims")`, stored as claims.parquet), so the claims of an experiment
file edited after its run are measured on the stored results without retraining.

    python -m toysuper.claims results/NAME   # measure, print and store claims.parquet
"""

from __future__ import annotations

import json
import math
import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from toysuper import experiments, measures, store, tables
from toysuper.errors import ConfigError

VERDICTS = ("reproduced", "partly", "not reproduced", "beyond the paper", "does not hold")
REQUIRED = ("id", "claim", "paper", "where", "measure", "verdict")
TEXT = ("id", "claim", "paper", "where", "quote", "measure", "verdict")
RANGES = ("reproduced", "partly", "holds")
KEYS = set(TEXT) | set(RANGES) | {"paper_value", "args"}
COLUMNS = ["id", "claim", "paper", "where", "quote", "paper_value", "measure", "args", "measured",
           "reproduced_lo", "reproduced_hi", "partly_lo", "partly_hi", "holds_lo", "holds_hi",
           "verdict", "stated", "agrees"]


def validate(claims, where: str = "claims") -> list[dict]:
    """Check a list of claim tables; raise ConfigError naming the claim, the key and what is allowed."""
    if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
        raise ConfigError(f"{where} must be a list of [[claims]] tables, got {claims!r}")
    seen = set()
    for i, c in enumerate(claims):
        name = f"{where}[{i}]" + (f" ({c['id']!r})" if isinstance(c.get("id"), str) else "")
        unknown = sorted(set(c) - KEYS)
        if unknown:
            raise ConfigError(f"{name}: unknown key(s) {unknown}; a claim may hold {sorted(KEYS)}")
        for key in REQUIRED:
            if key not in c:
                raise ConfigError(f"{name}: '{key}' is missing; a claim needs {', '.join(REQUIRED)}")
        for key in TEXT:
            if key in c and not isinstance(c[key], str):
                raise ConfigError(f"{name}: '{key}' must be a string, got {c[key]!r}")
        if not re.fullmatch(r"[a-z0-9_.-]+", c["id"]):
            raise ConfigError(f"{name}: id = {c['id']!r} may hold only a-z, 0-9, '_', '-' and '.'")
        if c["id"] in seen:
            raise ConfigError(f"{name}: id {c['id']!r} is used twice")
        seen.add(c["id"])
        if c["measure"] not in measures.MEASURES:
            raise ConfigError(f"{name}: measure = {c['measure']!r} is not a registered measurement; "
                              f"known: {', '.join(sorted(measures.MEASURES)) or 'none'}")
        if not isinstance(c.get("args", {}), dict):
            raise ConfigError(f"{name}: args = {c['args']!r} must be a table of keyword arguments")
        for key in RANGES:
            if key in c:
                _range(c[key], f"{name}: {key}")
        if "paper_value" in c and not _number(c["paper_value"]):
            raise ConfigError(f"{name}: paper_value = {c['paper_value']!r} must be a number")
        beyond = c["verdict"] in ("beyond the paper", "does not hold")
        if c["verdict"] not in VERDICTS:
            raise ConfigError(f"{name}: verdict = {c['verdict']!r} is not one of {', '.join(VERDICTS)}")
        if beyond and "holds" not in c:
            raise ConfigError(f"{name}: a finding beyond the paper needs holds = [lo, hi]")
        if beyond and ({"reproduced", "partly"} & set(c)):
            raise ConfigError(f"{name}: a finding beyond the paper has holds, not reproduced/partly")
        if not beyond and "reproduced" not in c:
            raise ConfigError(f"{name}: a claim beside the paper needs reproduced = [lo, hi] "
                              f"(the measured range that reproduces the paper)")
    return claims


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def _range(v, name: str) -> tuple[float, float]:
    if not (isinstance(v, list) and len(v) == 2 and all(_number(x) for x in v) and v[0] <= v[1]):
        raise ConfigError(f"{name} = {v!r} must be [lo, hi] with lo <= hi (inf allowed)")
    return float(v[0]), float(v[1])


def verdict(claim: dict, measured: float) -> str:
    """The verdict the measured number supports, by the claim's ranges."""
    def inside(key):
        return key in claim and claim[key][0] <= measured <= claim[key][1]

    if measured is None or math.isnan(measured):
        return "not measured"
    if "holds" in claim:
        return "beyond the paper" if inside("holds") else "does not hold"
    if inside("reproduced"):
        return "reproduced"
    return "partly" if inside("partly") else "not reproduced"


def of(res) -> list[dict]:
    """The claims of `res`: its experiment file's (edited without retraining), else its config's."""
    name = res.config.get("name", "")
    # the name comes from a results folder: only a plain file name is looked up, never a path
    if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name):
        for folder in experiments.dirs():
            path = folder / f"{name}.toml"
            if path.is_file() and not path.is_symlink():
                raw = tomllib.loads(path.read_text())
                if "claims" in raw:
                    return validate(raw["claims"], f"{path.name}: claims")
                break
    return validate(res.config.get("claims", []))


def measure(res, claim: dict) -> float:
    try:
        value = measures.MEASURES[claim["measure"]].fn(res, **claim.get("args", {}))
    except (KeyError, ValueError, IndexError, ZeroDivisionError) as e:
        store.notice(f"claim {claim['id']!r}: measurement {claim['measure']!r} failed "
                     f"({type(e).__name__}: {str(e).strip()[:200]})")
        return float("nan")
    return float(value)


def table(res) -> pd.DataFrame:
    """One row per claim: the paper's statement, the measured number, the verdict and the stated one."""
    rows = []
    for c in of(res):
        value = measure(res, c)
        got = verdict(c, value)
        row = {k: c.get(k, "") for k in ("id", "claim", "paper", "where", "quote", "measure")}
        row.update(paper_value=float(c.get("paper_value", np.nan)),
                   args=json.dumps(c.get("args", {}), sort_keys=True), measured=value,
                   verdict=got, stated=c["verdict"], agrees=got == c["verdict"])
        for key in RANGES:
            lo, hi = c.get(key, (np.nan, np.nan))
            row[f"{key}_lo"], row[f"{key}_hi"] = float(lo), float(hi)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS).astype({"agrees": bool})


def failing(df: pd.DataFrame) -> pd.DataFrame:
    """Claims whose stated verdict the measurement does not support."""
    return df[~df["agrees"].astype(bool)]


def problems(res) -> list[str]:
    """What is wrong with a results object's claims: a stated verdict the measurement does not
    support, or a stored claims table that is not what is measured now."""
    fresh = table(res)
    out = [f"claim {r.id!r} states '{r.stated}' but measures {r.measured:.4g}, which is '{r.verdict}'"
           for r in failing(fresh).itertuples()]
    stored = res.derived.get("claims")
    if stored is None:
        return out + ["claims.parquet is missing"]
    if list(stored["id"]) != list(fresh["id"]) or list(stored["verdict"]) != list(fresh["verdict"]):
        return out + ["claims.parquet is stale: its claims or verdicts differ from those measured now"]
    a, b = stored["measured"].to_numpy(float), fresh["measured"].to_numpy(float)
    if not np.allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True):
        out.append("claims.parquet is stale: it holds other measured values than measured now")
    return out


def summary(df: pd.DataFrame) -> str:
    """A few lines for the end of a run: each claim's verdict and measured number."""
    if df.empty:
        return "claims: none stated for this experiment"
    counts = df["verdict"].value_counts()
    lines = ["claims: " + ", ".join(f"{counts[v]} {v}" for v in (*VERDICTS, "not measured")
                                    if v in counts)]
    for r in df.itertuples():
        flag = "" if r.agrees else f"   <- stated '{r.stated}'"
        lines.append(f"  {r.verdict:>16}  {r.id}: measured {r.measured:.4g}{flag}")
    return "\n".join(lines)


# `python -m toysuper.claims` runs this file as __main__ after tables.py imported it as
# toysuper.claims, which registered the table already
if __name__ != "__main__":
    tables.register("claims", tables.Table(
        table, doc="per claim of the experiment: the paper's statement and place, the measured number, "
                   "the verdict it supports and the one stated (toysuper/claims.py)", family="any"))


def main(argv=None) -> int:
    """Measure, print and store the claims of results directories."""
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m toysuper.claims RESULTS_DIR [...]", file=sys.stderr)
        return 2
    bad = 0
    for path in paths:
        res = store.load(path)
        df = tables.derive(res, ["claims"])["claims"]
        store.write_table(Path(path) / "claims.parquet", df)
        print(f"{path}\n{summary(df)}")
        bad += len(failing(df))
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as e:
        print(f"toysuper: {e}", file=sys.stderr)
        sys.exit(2)
