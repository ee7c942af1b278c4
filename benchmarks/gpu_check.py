"""The accelerator path in one prepared run: speed, saturation, bit-identity, golden losses.

    python benchmarks/gpu_check.py --out DIR [--tiny] [--budget 420] [--write-golden]

Runs on whatever devices JAX sees (a GPU host: `pip install -U "jax[cuda12]"` and a CUDA build
of torch first; the script prints what it found) and writes DIR/gpu_check.json and
DIR/gpu_check.md, the JSON again after every section, so a run cut short keeps what it measured.
Sections:

  device      platform, device kind and count, jax / torch versions, the matmul precision asked
              (toysuper/precision.py), and how JAX's GPU support and torch were found
  matmul      GFLOP/s of a large float32 jnp.dot at the lab's precision ("highest"), and at the
              device's default precision for comparison (TF32 on recent NVIDIA GPUs)
  golden      final losses of a fixed tiny sweep against benchmarks/gpu_golden.json, which
              `--write-golden` writes on a CPU; within GOLDEN_RTOL
  identity    one model of the golden sweep trained alone vs inside it, one chunk vs chunks
              of one quantum, and at groups of 2 vs the lab's group size; weights bit for bit
  speed       benchmarks/speed.py's workloads a/b/c, toysuper against the PyTorch loop
              (benchmarks/torch_baseline.py) on the same device; skipped, and said so, when
              torch is missing or cannot use the device JAX uses
  saturation  model-steps/s against models per device, each count run as one vmapped group
              (train.group_size set to it), for n=2/m=1, n=20/m=5, n=200/m=20, n=400/m=30 (toy
              models, batch 1024), an SAE sweep (benchmarks/sae_speed.py's TopK SAEs) and an
              LLC sweep (benchmarks/llc_speed.py's regression, models in one program); each
              scan's suggested group is the smallest count within 90% of its peak, and the
              layout.ACCELERATOR_ENTRIES that gives it is printed beside the current value
  useful      useful FLOP/s at the n=400/m=30 peak as a share of the matmul rate

At full size the run is bounded by --budget seconds (default 420: 7 minutes; scans stop growing
when their share is spent, when a segment would take over 2 s or when the estimated memory of the
next count passes half the device's). --tiny shrinks every workload to run in well under a minute
on a CPU (the golden and identity sweeps are tiny in both modes).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # speed.py and its neighbours

import llc_speed  # noqa: E402
import sae_speed  # noqa: E402
import speed  # noqa: E402  (gives JAX one CPU device per core, as the toysuper command does)

import toysuper  # noqa: E402
from toysuper import config, layout, llc, precision, sae_train, sources, train  # noqa: E402

try:
    import torch
    import torch_baseline
except ImportError:  # the PyTorch peer is optional: the table says it was skipped
    torch = None

GOLDEN = Path(__file__).with_name("gpu_golden.json")
GOLDEN_RTOL = 1e-3  # 200 Adam steps on another device: summation order, not precision, differs
SATURATION = 0.9    # a scan's suggested group: the smallest count within this share of its peak
BATCH = speed.BATCH

# The fixed tiny sweep whose final losses are stored from the CPU (benchmarks/gpu_golden.json).
GOLDEN_SWEEP = {"name": "gpu_check_golden", "model": {"kind": "relu", "n_features": 5, "n_hidden": 2},
                "data": {"importance": {"decay": 0.9}},
                "train": {"steps": 200, "batch": 256, "log_every": 50, "eval_batch": 4096, "lr": 3e-3},
                "sweep": {"data.density": [1.0, 0.3, 0.1, 0.03], "train.seed": {"range": 2}}}
# The model of GOLDEN_SWEEP trained alone to compare bit for bit with its copy in the sweep.
ALONE = ["data.density=0.3", "train.seed=1"]

# name: (n, m, steps per timed segment, most models per device) at full size
TOY_SCANS = {"n=2/m=1": (2, 1, 100, 2 ** 14), "n=20/m=5": (20, 5, 50, 2 ** 14),
             "n=200/m=20": (200, 20, 20, 2 ** 12), "n=400/m=30": (400, 30, 10, 2 ** 12)}


class Size:
    """Every knob --tiny turns down, in one place."""

    def __init__(self, tiny: bool, accelerator: bool):
        self.tiny = tiny
        self.matmul = 256 if tiny else (8192 if accelerator else 2048)
        self.repeats = 1 if tiny else 3
        self.torch_steps = 5 if accelerator else 1  # x speed.py's baseline steps: a GPU is fast
        self.batch = 64 if tiny else BATCH
        self.segment = 5 if tiny else None          # steps per timed segment (None: the scan's own)
        self.most = 2 if tiny else None             # most models per device in a scan
        self.llc_counts = (2, 2) if tiny else (1, 2 ** 14)  # models in an LLC program, least/most
        self.llc_draws = 20 if tiny else 200
        self.timed_s = 0.0 if tiny else 0.5         # timed segments per point: at least this long
        self.segment_limit_s = 0.5 if tiny else 2.0  # stop growing once a segment nears this
        self.host_gb = 0.5 if tiny else 2.0         # memory bound on a CPU (shared machine)


# ---------------------------------------------------------------- the device and its setup

def environment() -> tuple[dict, list[str]]:
    """What this process runs on, and lines saying how JAX's GPU support and torch were found."""
    devices = jax.devices()
    plat = devices[0].platform
    notes = []
    plugins = {name: v for name in ("jax-cuda12-plugin", "jax-cuda13-plugin", "jaxlib")
               if (v := _version(name))}
    gpu_here = shutil.which("nvidia-smi") is not None
    if plat == "gpu":
        notes.append(f"JAX {jax.__version__} sees {len(devices)} GPU(s), {devices[0].device_kind}, "
                     f"through {', '.join(f'{k} {v}' for k, v in plugins.items())}")
    elif gpu_here:
        notes.append('nvidia-smi is here but JAX sees no GPU: pip install -U "jax[cuda12]"')
    else:
        notes.append(f"JAX {jax.__version__} on {len(devices)} {plat} device(s); no GPU on this host")
    if torch is None:
        notes.append("torch is not installed, so the PyTorch peer is skipped: pip install torch "
                     "(a CUDA build on a GPU host)")
    elif plat == "gpu" and not torch.cuda.is_available():
        notes.append(f"torch {torch.__version__} cannot use the GPU (a CPU build?), so the peer is "
                     "skipped: pip install torch (a CUDA build)")
    else:
        notes.append(f"torch {torch.__version__} found; the peer runs on {_torch_device(plat)}")
    info = {"platform": plat, "device_kind": devices[0].device_kind, "devices": len(devices),
            "host": platform.machine(), "python": sys.version.split()[0], "jax": jax.__version__,
            **{k: v for k, v in plugins.items() if k != "jaxlib"},
            "torch": torch.__version__ if torch is not None else None,
            "matmul_precision": jax.config.jax_default_matmul_precision,
            "lab_precision": precision.MATMUL,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "notes": notes}
    return info, notes


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _torch_device(plat: str) -> str | None:
    """The torch device matching JAX's, or None when torch cannot use it."""
    if torch is None:
        return None
    if plat == "cpu":
        return "cpu"
    return "cuda" if plat == "gpu" and torch.cuda.is_available() else None


def _device_bytes(size: Size) -> float:
    """Memory a scan may plan to use over all devices: size.host_gb on a CPU (whose devices
    share the host), else half of what the devices report (16 GiB each if they do not say)."""
    devices = jax.devices()
    if devices[0].platform == "cpu":
        return size.host_gb * 2 ** 30
    limit = (devices[0].memory_stats() or {}).get("bytes_limit") or 32 * 2 ** 30
    return 0.5 * limit * len(devices)


# ---------------------------------------------------------------- matmul rate

def matmul(size: Size) -> dict:
    """GFLOP/s of a size^3 float32 product at the lab's precision and at the device's default."""
    out = {"size": size.matmul, "gflops": speed.matmul_gflops(size.matmul)}
    with jax.default_matmul_precision("default"):
        out["gflops_device_default"] = speed.matmul_gflops(size.matmul)
    return out


# ---------------------------------------------------------------- golden losses

def golden_values() -> dict:
    """Final losses and weight norms of GOLDEN_SWEEP's models, in sweep order."""
    res = toysuper.train_sweep(GOLDEN_SWEEP)
    W = res.weights["W"].reshape(len(res.models), -1)
    return {"loss": [float(v) for v in res.models["loss"]],
            "W_norm": [float(v) for v in np.linalg.norm(W, axis=1)]}


def write_golden() -> dict:
    if jax.devices()[0].platform != "cpu":
        raise SystemExit("--write-golden: the golden values come from a CPU; this run sees "
                         f"{jax.devices()[0].platform} devices")
    stored = {"sweep": GOLDEN_SWEEP, "written_on": f"cpu, jax {jax.__version__}",
              "precision": jax.config.jax_default_matmul_precision, **golden_values()}
    GOLDEN.write_text(json.dumps(stored, indent=1) + "\n")
    return stored


def golden() -> dict:
    if not GOLDEN.exists():
        return {"error": f"{GOLDEN.name} is missing: run this script with --write-golden on a CPU"}
    stored = json.loads(GOLDEN.read_text())
    if stored["sweep"] != GOLDEN_SWEEP:
        return {"error": f"{GOLDEN.name} was written for another sweep than GOLDEN_SWEEP: "
                         "rerun --write-golden on a CPU"}
    now = golden_values()
    rel = {k: float(np.max(np.abs(np.subtract(now[k], stored[k])) / np.abs(stored[k])))
           for k in ("loss", "W_norm")}
    return {"models": len(now["loss"]), "loss": now["loss"], "stored_loss": stored["loss"],
            "max_rel_diff": rel, "rtol": GOLDEN_RTOL,
            "within_tolerance": all(v <= GOLDEN_RTOL for v in rel.values()),
            "bit_identical": now["loss"] == stored["loss"] and now["W_norm"] == stored["W_norm"]}


# ---------------------------------------------------------------- bit-identity

@contextlib.contextmanager
def groups_of(k: int | None):
    """Models vmapped k at a time (train.group_size and sae_train.group_size set to k), programs
    recompiled; None leaves the lab's group sizes. Programs are cached by Shape, which the group
    size is not part of, so the caches are cleared on the way in and out."""
    if k is None:
        yield
        return
    saved = train.group_size, sae_train.group_size
    train.group_size = sae_train.group_size = lambda shape: k
    train.programs.cache_clear()
    sae_train.programs.cache_clear()
    try:
        yield
    finally:
        train.group_size, sae_train.group_size = saved
        train.programs.cache_clear()
        sae_train.programs.cache_clear()


def _pick(res, density: float = 0.3, seed: int = 1) -> dict:
    i = res.models.query(f"density == {density} and seed == {seed}")["model"].item()
    return {name: np.asarray(res.params(i)[name]) for name in ("W", "b")}


def _same(a: dict, b: dict) -> tuple[bool, float]:
    """(bit for bit equal, largest absolute difference) of two models' parameters."""
    equal = all(np.array_equal(a[k], b[k]) for k in a)
    return equal, float(max(np.max(np.abs(a[k] - b[k])) for k in a))


def identity() -> dict:
    """GOLDEN_SWEEP's programs serve here too (compiled once for both sections)."""
    shape = train.Shape.of(config.expand(config.resolve(GOLDEN_SWEEP))[0])
    lab_group = train.group_size(shape)
    sweep = toysuper.train_sweep(GOLDEN_SWEEP)
    alone = toysuper.train_sweep(dict(GOLDEN_SWEEP, sweep={}), ALONE)
    with groups_of(2):
        one_chunk = toysuper.train_sweep(GOLDEN_SWEEP)
        quantum = 2 * len(jax.devices())
        chunked = toysuper.train_sweep(GOLDEN_SWEEP, [f"run.chunk_size={quantum}"])
    out = {"models": len(sweep.models), "lab_group": lab_group, "devices": len(jax.devices())}
    out["alone_vs_sweep"], out["alone_vs_sweep_max_diff"] = _same(_pick(alone, 0.3, 1), _pick(sweep))
    W = [np.asarray(r.weights[k]) for r in (one_chunk, chunked) for k in ("W", "b")]
    out["chunkings"] = bool(np.array_equal(W[0], W[2]) and np.array_equal(W[1], W[3]))
    out["chunkings_detail"] = (f"groups of 2: one chunk of {len(sweep.models)} models vs chunks "
                               f"of {quantum}")
    out["group_2_vs_lab"], out["group_2_vs_lab_max_diff"] = _same(_pick(one_chunk), _pick(sweep))
    return out


# ---------------------------------------------------------------- speed against PyTorch

def speed_rows(size: Size, deadline: float) -> list[dict]:
    dev = _torch_device(jax.devices()[0].platform)
    rows = []
    for name, (models, n, m, steps, base_steps) in speed.WORKLOADS.items():
        if size.tiny:
            models, steps, base_steps = min(models, 8 * len(jax.devices())), 10, 2
        base_steps *= size.torch_steps
        row = {"workload": name, "models": models, "n": n, "m": m}
        if time.perf_counter() > deadline:
            rows.append({**row, "error": "skipped: the time budget was spent"})
            continue
        ours = speed.toysuper_rate(models, n, m, steps, size.repeats)
        base = None
        if dev is not None:
            base = max(torch_baseline.model_steps_per_second(models, n, m, BATCH, base_steps,
                                                             device=dev)
                       for _ in range(size.repeats))
        gflops = ours * 10 * BATCH * n * m / 1e9
        rows.append({**row, "toysuper": ours, "torch": base, "torch_device": dev,
                     "ratio": ours / base if base else None, "useful_gflops": gflops})
    return rows


# ---------------------------------------------------------------- saturation scans

def _timed_segments(run, size: Size) -> float:
    """Best seconds of run(i) for i = 1, 2, ... after run(0) (compile), timed for at least
    size.timed_s and at least twice."""
    jax.block_until_ready(run(0))
    times, i, t_start = [], 1, time.perf_counter()
    while i < 3 or (time.perf_counter() - t_start < size.timed_s and i < 64):
        t0 = time.perf_counter()
        jax.block_until_ready(run(i))
        times.append(time.perf_counter() - t0)
        i += 1
    return min(times)


def toy_point(settings: list[dict], k: int, size: Size) -> tuple[float, float] | None:
    """(model-steps/s, seconds per segment) of k models per device in one group each; None when
    their estimated memory passes the devices'."""
    width = k * len(jax.devices())
    rows = settings[:width]
    shape = train.Shape.of(rows[0])
    with groups_of(k):
        per_model, in_flight = train.memory(shape)
        if len(jax.devices()) * in_flight + per_model * width > _device_bytes(size):
            return None
        hp = train.place(train.inputs(rows, width))
        prog = train.programs(shape)
        state = [train.initial(shape, hp)]

        def run(i):
            state[0], loss = prog.segment(state[0], hp, i)
            return loss
        seconds = _timed_segments(run, size)
    return width * shape.log_every / seconds, seconds


def toy_settings(n: int, m: int, steps: int, models: int, size: Size) -> list[dict]:
    cfg = {"name": f"gpu_check_n{n}_m{m}", "model": {"n_features": n, "n_hidden": m},
           "train": {"steps": 1000 * steps, "log_every": steps, "batch": size.batch,
                     "eval_batch": size.batch},
           "sweep": {"data.density": {"logspace": [1, 0.01], "num": models}}}
    return config.expand(config.resolve(cfg))


def sae_settings(steps: int, models: int, size: Size) -> list[dict]:
    cfg = sae_speed.experiment("topk", 1, models)
    cfg["train"].update(steps=1000 * steps, log_every=steps, batch=size.batch,
                        eval_batch=size.batch)
    return [sources.filled(s) for s in config.expand(config.resolve(cfg))]


def sae_point(settings: list[dict], k: int, size: Size) -> tuple[float, float] | None:
    width = k * len(jax.devices())
    rows = settings[:width]
    shape = sae_train.SaeShape.of(rows[0])
    with groups_of(k):
        per_model, in_flight = sae_train.memory(shape)
        if len(jax.devices()) * in_flight + per_model * width > _device_bytes(size):
            return None
        hp = train.place(sae_train.inputs(rows, width))
        prog = sae_train.programs(shape)
        state = [sae_train.initial(shape, hp)]

        def run(i):
            state[0], loss = prog.segment(state[0], hp, i)
            return loss
        seconds = _timed_segments(run, size)
    return width * shape.log_every / seconds, seconds


def llc_point(k: int, size: Size) -> tuple[float, float] | None:
    """(draws/s over all chains, seconds) of k regression models in one vmapped LLC program."""
    sampler = llc_speed.REG._replace(draws=size.llc_draws)
    if "rounds" in llc.Sampler._fields:  # one round: these settings once, no refinement
        sampler = sampler._replace(rounds=1)
    X, y, w = llc_speed.regression_data(0)
    data = (jnp.asarray(X), jnp.asarray(y))
    ws = jnp.asarray(np.stack([w] * k))

    def run(i):
        keys = jax.random.split(jax.random.PRNGKey(i), k)
        return llc.estimate(llc_speed.mse, data, ws, keys, sampler, models=True,
                            shared_data=True).lambdas
    seconds = _timed_segments(run, size)
    return k * sampler.chains * sampler.draws / seconds, seconds


def scan(point, counts: list[int], size: Size, deadline: float) -> list[dict]:
    """point(k) over growing counts, until memory, the segment limit or the deadline stops it,
    or two counts in a row gain under 5% on the best (saturated)."""
    points, best, flat = [], 0.0, 0
    for k in counts:
        if time.perf_counter() > deadline:
            points.append({"per_device": k, "stopped": "time budget"})
            break
        got = point(k)
        if got is None:
            points.append({"per_device": k, "stopped": "memory"})
            break
        rate, seconds = got
        points.append({"per_device": k, "models": k * len(jax.devices()), "rate": rate,
                       "segment_s": seconds})
        print(f"    {k:6d} per device: {rate:14,.0f}/s ({seconds * 1e3:.1f} ms a segment)",
              flush=True)
        flat = flat + 1 if rate < 1.05 * best else 0
        best = max(best, rate)
        if flat >= 2 and not size.tiny:
            break
        if seconds > size.segment_limit_s / 2:
            break
    return points


def suggested(points: list[dict]) -> dict:
    rated = [p for p in points if "rate" in p]
    if not rated:
        return {"peak": None, "peak_at": None, "suggested": None}
    peak = max(rated, key=lambda p: p["rate"])
    first = next(p for p in rated if p["rate"] >= SATURATION * peak["rate"])
    return {"peak": peak["rate"], "peak_at": peak["per_device"], "suggested": first["per_device"]}


def entries_for(group: int, per_model_entries: int) -> int:
    """The smallest power of two for layout.ACCELERATOR_ENTRIES whose group size formula
    (entries // per-model entries, rounded down to a power of two) gives `group`."""
    return 2 ** math.ceil(math.log2(group * per_model_entries))


def scans(size: Size, deadline: float) -> list[dict]:
    start = time.perf_counter()
    names = [*TOY_SCANS, "SAE topk", "LLC regression"]
    out = []
    for j, name in enumerate(names):
        # each scan gets an equal share of what is left of the budget
        until = time.perf_counter() + (deadline - time.perf_counter()) / (len(names) - j)
        print(f"  saturation {name}", flush=True)
        if name in TOY_SCANS:
            n, m, steps, most = TOY_SCANS[name]
            steps, most = size.segment or steps, min(most, size.most or most)
            settings = toy_settings(n, m, steps, most * len(jax.devices()), size)
            points = scan(lambda k, s=settings: toy_point(s, k, size), _powers(2, most), size, until)
            shape = train.Shape.of(settings[0])
            row = {"scan": name, "kind": "toy", "n": n, "m": m, "batch": size.batch,
                   "unit": "model-steps/s", "flop_per_unit": 10 * size.batch * n * m,
                   "per_model_entries": size.batch * n}
        elif name == "SAE topk":
            steps, most = size.segment or 20, size.most or 2 ** 12
            settings = sae_settings(steps, most * len(jax.devices()), size)
            points = scan(lambda k, s=settings: sae_point(s, k, size), _powers(2, most), size, until)
            shape = sae_train.SaeShape.of(settings[0])
            row = {"scan": name, "kind": "sae", "n": shape.n, "m": shape.m, "d_sae": shape.d,
                   "batch": size.batch, "unit": "SAE-steps/s",
                   "flop_per_unit": 12 * size.batch * shape.m * shape.d,
                   "per_model_entries": size.batch * (shape.d + shape.n)}
        else:
            points = scan(lambda k: llc_point(k, size), _powers(*size.llc_counts), size, until)
            shape = None
            row = {"scan": name, "kind": "llc", "n": llc_speed.N, "m": llc_speed.D,
                   "batch": llc_speed.REG.batch, "unit": "draws/s (all chains)",
                   "flop_per_unit": None, "per_model_entries": None}
        row.update(points=points, **suggested(points))
        if row["per_model_entries"] and row["suggested"]:
            row["accelerator_entries"] = entries_for(row["suggested"], row["per_model_entries"])
            lab = train if row["kind"] == "toy" else sae_train
            row["lab_group_now"] = lab.group_size(shape)
        if row["flop_per_unit"] and row["peak"]:
            row["peak_gflops"] = row["peak"] * row["flop_per_unit"] / 1e9
        out.append(row)
    print(f"  scans took {time.perf_counter() - start:.0f} s", flush=True)
    return out


def _powers(lo: int, hi: int) -> list[int]:
    return [2 ** i for i in range(int(math.log2(lo)), int(math.log2(hi)) + 1)]


def entries_advice(scan_rows: list[dict]) -> dict:
    """One layout.ACCELERATOR_ENTRIES for every toy and SAE shape scanned: the largest any scan
    asks for, so that each gets at least its suggested group (groups past saturation cost
    memory, not speed, in these scans: each row gives its rate at the group the value implies)."""
    rows = [r for r in scan_rows if r.get("accelerator_entries")] if isinstance(scan_rows, list) else []
    if not rows:
        return {}
    value = max(r["accelerator_entries"] for r in rows)
    per_scan = {}
    for r in rows:
        g = min(2 ** int(math.log2(max(1, value // r["per_model_entries"]))), 2 ** 14)
        at = {p["per_device"]: p["rate"] for p in r["points"] if "rate" in p}
        per_scan[r["scan"]] = {"group": g, "share_of_peak": at[g] / r["peak"] if g in at else None}
    return {"ACCELERATOR_ENTRIES": value, "log2": int(math.log2(value)),
            "current": layout.ACCELERATOR_ENTRIES, "per_scan": per_scan}


# ---------------------------------------------------------------- report

def useful(report: dict) -> dict:
    sat = report.get("saturation")
    rows = {r["scan"]: r for r in sat} if isinstance(sat, list) else {}
    r, rate = rows.get("n=400/m=30"), report.get("matmul", {}).get("gflops")
    if not r or not r.get("peak_gflops") or not rate:
        return {"error": "no n=400/m=30 peak or no matmul rate"}
    return {"peak_gflops": r["peak_gflops"], "matmul_gflops": rate,
            "share": r["peak_gflops"] / rate, "at_per_device": r["peak_at"]}


def markdown(report: dict) -> str:
    d = report["device"]
    lines = [f"# gpu_check: {d['devices']} x {d['device_kind']} ({d['platform']}), "
             f"jax {d['jax']}, torch {d['torch'] or 'not installed'}, {d['date']}"
             + (" (tiny)" if report["tiny"] else ""), ""]
    lines += [f"- {note}" for note in d["notes"]]
    lines.append(f"- matmul precision asked: {d['matmul_precision']} (toysuper/precision.py)")
    if "gflops" in report.get("matmul", {}):
        mm = report["matmul"]
        lines.append(f"- float32 matmul {mm['size']}^3: {mm['gflops']:,.0f} GFLOP/s at the lab's "
                     f"precision, {mm['gflops_device_default']:,.0f} at the device's default")
    lines.append("")
    lines += ["| check | result |", "|---|---|"]
    g, ident, u = report.get("golden", {}), report.get("identity", {}), report.get("useful", {})
    if "error" in g:
        lines.append(f"| golden sweep | {g['error']} |")
    elif g:
        lines.append(f"| golden sweep ({g['models']} models) vs the CPU's | "
                     f"{'within' if g['within_tolerance'] else 'OUTSIDE'} rtol {g['rtol']:g}: "
                     f"loss {g['max_rel_diff']['loss']:.1e}, |W| {g['max_rel_diff']['W_norm']:.1e}"
                     f"{', bit-identical' if g['bit_identical'] else ''} |")
    if "error" in ident:
        lines.append(f"| bit-identity | {ident['error']} |")
    elif ident:
        alone = _bits(ident["alone_vs_sweep"], ident["alone_vs_sweep_max_diff"])
        groups = _bits(ident["group_2_vs_lab"], ident["group_2_vs_lab_max_diff"])
        lines.append(f"| alone vs in a sweep of {ident['models']} | {alone} |")
        lines.append(f"| chunkings ({ident['chunkings_detail']}) | {_bits(ident['chunkings'], None)} |")
        lines.append(f"| groups of 2 vs the lab's {ident['lab_group']} | {groups} |")
    if "share" in u:
        lines.append(f"| useful FLOP/s at the n=400/m=30 peak | {u['peak_gflops']:,.0f} GFLOP/s, "
                     f"{u['share']:.0%} of the matmul rate |")
    lines.append("")
    speed_rows_ = report.get("speed", [])
    if isinstance(speed_rows_, dict):
        lines += [f"speed: {speed_rows_['error']}", ""]
    elif speed_rows_:
        lines += ["| workload | models | n | m | toysuper model-steps/s | PyTorch loop | ratio | "
                  "useful GFLOP/s |", "|---|---|---|---|---|---|---|---|"]
        for r in speed_rows_:
            if "error" in r:
                lines.append(f"| {r['workload']} | {r['models']} | {r['n']} | {r['m']} | "
                             f"{r['error']} | | | |")
                continue
            base = (f"{r['torch']:,.0f} ({r['torch_device']})" if r["torch"]
                    else "skipped (no torch on this device)")
            ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "—"
            lines.append(f"| {r['workload']} | {r['models']} | {r['n']} | {r['m']} | "
                         f"{r['toysuper']:,.0f} | {base} | {ratio} | {r['useful_gflops']:.1f} |")
        lines.append("")
    sat = report.get("saturation", [])
    if isinstance(sat, dict):
        lines.append(f"saturation: {sat['error']}")
    elif sat:
        lines += ["| scan | unit | per device: rate | peak | suggested group | lab's group now | "
                  "ACCELERATOR_ENTRIES for it |", "|---|---|---|---|---|---|---|"]
        for r in sat:
            pts = ", ".join(f"{p['per_device']}: {p['rate']:,.0f}" if "rate" in p
                            else f"{p['per_device']}: ({p['stopped']})" for p in r["points"])
            entries = f"2^{int(math.log2(r['accelerator_entries']))}" if r.get("accelerator_entries") else "—"
            peak = f"{r['peak']:,.0f} at {r['peak_at']}" if r["peak"] else "—"
            lines.append(f"| {r['scan']} | {r['unit']} | {pts} | {peak} | {r['suggested']} | "
                         f"{r.get('lab_group_now', '—')} | {entries} |")
        adv = report.get("advice", {})
        if adv:
            per = "; ".join(f"{k}: groups of {v['group']}"
                            + (f" ({v['share_of_peak']:.0%} of peak)" if v["share_of_peak"] else "")
                            for k, v in adv["per_scan"].items())
            lines += ["", f"Suggested `layout.ACCELERATOR_ENTRIES = 2 ** {adv['log2']}` (now "
                          f"2 ** {int(math.log2(adv['current']))}): {per}."]
    return "\n".join(lines) + "\n"


def _bits(equal: bool, diff: float | None) -> str:
    if equal:
        return "bit-identical"
    return "not bit-identical" + (f": max |diff| {diff:.1e}" if diff is not None else "")


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    return x


def write(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(_jsonable(report), indent=1) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and .md")
    ap.add_argument("--tiny", action="store_true", help="every workload tiny: well under a minute on a CPU")
    ap.add_argument("--budget", type=float, default=420.0,
                    help="seconds the whole run may take (not enforced with --tiny)")
    ap.add_argument("--write-golden", action="store_true",
                    help=f"store the golden sweep's values in {GOLDEN.name} (on a CPU)")
    args = ap.parse_args(argv)
    # JAX takes 75% of a GPU's memory when it starts, which would leave the torch peer none.
    # Read when JAX starts its backend, which nothing above has done.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    t0 = time.perf_counter()
    budget = math.inf if args.tiny else args.budget  # a tiny run is never cut short
    deadline = t0 + budget
    if args.write_golden:
        stored = write_golden()
        print(f"wrote {GOLDEN}: losses {stored['loss']}")
    info, notes = environment()
    for note in notes:
        print(note, flush=True)
    size = Size(args.tiny, info["platform"] != "cpu")
    report = {"tiny": args.tiny, "device": info}

    report["seconds"] = {}  # per section: [wall, CPU of this process]

    def section(name, fn):
        print(f"{name} ({time.perf_counter() - t0:.0f} s)", flush=True)
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            report[name] = fn()
        except Exception as e:  # noqa: BLE001  (one failing section must not lose the others)
            report[name] = {"error": f"{type(e).__name__}: {e}"}
            print(f"  {name} failed: {report[name]['error']}", flush=True)
        report["seconds"][name] = [time.perf_counter() - wall, time.process_time() - cpu]
        write(report, args.out)

    section("matmul", lambda: matmul(size))
    section("golden", golden)
    section("identity", identity)
    # speed may take 30% of the budget from when it starts; the scans share what is left
    section("speed", lambda: speed_rows(size, time.perf_counter() + 0.3 * budget))
    section("saturation", lambda: scans(size, deadline - 10))
    section("advice", lambda: entries_advice(report["saturation"]))
    section("useful", lambda: useful(report))
    report["elapsed_s"] = time.perf_counter() - t0
    write(report, args.out)
    print(markdown(report))
    print(f"wrote {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'} "
          f"in {report['elapsed_s']:.0f} s")
    return report


if __name__ == "__main__":
    main()
