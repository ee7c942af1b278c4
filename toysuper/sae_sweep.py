"""Training a sweep of SAEs (an experiment with an [sae] section): in memory or stored and drawn.

    cfg -> config.expand -> sources.filled -> plan.chunks(lab=sae_train) -> sae_train per chunk
        -> tables (saes, latents, history, absorption) -> SaeResults

The same results directory as toy models (store.py): config.toml first, a part per finished
chunk (so an interrupted sweep resumes), the tables, weights.npz, figures, summary.json last, and
the lock. A part keeps the SAEs' parameters as `param/NAME` and their evaluation sums
(sae_train.Scores) in the part's snapshot slot, `snap/NAME`.

Tables:
  saes.parquet       a row per SAE: its settings (sae.kind -> kind, sae.width -> width,
                     source.model -> source_model, data.density -> density, ...), the stored
                     source model's own swept settings as toy_<name>, and its scores
                     (sae_scores.scores): loss against the trivial solution, fve, l0, dead,
                     shrinkage, mcc, mmcs, worst_angle; its threshold labels (beats_trivial,
                     recovered, recovered_90) are derived: sae_optima.parquet (verdicts.py),
                     joined to `res.saes` when read
  latents.parquet    a row per (SAE, latent): firing frequency, dead, best and matched feature
  history.parquet    a row per (SAE, step): mean training loss and mse over log_every steps
  absorption.parquet with data.hierarchy: a row per (SAE, parent, child) (sae_scores.absorption)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from toysuper import (
    assemble,
    config,
    hosts,
    outputs,
    plan,
    sae_scores,
    sae_train,
    saes,
    sources,
    store,
    verdicts,
)
from toysuper import tables as tables_mod
from toysuper.errors import ConfigError, OutputsError, TrainingError
from toysuper.results import SaeResults


def column(key: str) -> str:
    """saes.parquet column of an SAE setting: source.kind -> source, source.model ->
    source_model, any other key its name without the section (sae.kind -> kind)."""
    section, name = key.split(".", 1)
    if section == "source":
        return "source" if name == "kind" else f"source_{name}"
    return name


def prepared(cfg: dict):
    sweep = [sources.filled(s) for s in config.expand(cfg)]
    outputs.check(cfg, sweep)
    return sweep, plan.chunks(sweep, cfg["run"]["chunk_size"], cfg["run"]["memory_gb"], lab=sae_train)


def train_chunks(sweep, chunks, done, progress=True, on_chunk=lambda chunk, arrays: None) -> None:
    """Train every chunk whose `done` entry is None, filling it with (params, history, final,
    sums); final is each SAE's evaluation mse sum (what store.save_part keeps as `final`)."""
    todo = [c for c in chunks if done[c.index] is None]
    with _progress(len(sweep), todo, progress) as bar:  # closed however training ends
        for c in todo:
            k = len(c.ids)
            t = sae_train.train_saes(c.shape, sae_train.inputs([sweep[i] for i in c.ids], c.width),
                                     lambda n=c.shape.log_every * k: bar.update(n))
            params = {name: v[:k] for name, v in t.params.items()}
            sums = {name: np.asarray(v)[:k] for name, v in t.scores._asdict().items()}
            arrays = (params, t.history[:k], sums["mse"], sums)
            bad = _diverged(*arrays)
            stop = [i for i, b in zip(c.ids, bad) if b and sweep[i]["run.on_diverge"] == "stop"]
            if stop:
                raise TrainingError(f"SAE {stop[0]} diverged (non-finite loss); finished chunks "
                                    f"are kept; lower train.lr, or set run.on_diverge = 'keep'")
            done[c.index] = arrays
            on_chunk(c, arrays)


def _diverged(params, history, final, sums) -> np.ndarray:
    bad = ~np.isfinite(history).reshape(len(final), -1).all(axis=1) | ~np.isfinite(final)
    for v in params.values():
        bad |= ~np.isfinite(np.asarray(v)).reshape(len(final), -1).all(axis=1)
    return bad


def tables(cfg, sweep, chunks, done) -> tuple[dict, dict]:
    """({saes, latents, history, absorption}, weights) from every chunk's arrays."""
    rows, latent_frames, history_frames, pair_frames, pieces = [], [], [], [], []
    examples = None
    for c in chunks:
        params, history, _, sums = done[c.index]
        shape, ids = c.shape, np.array(c.ids)
        examples = sae_train.evaluated(shape)
        hp = sae_train.inputs([sweep[i] for i in ids], len(ids))
        decoders = np.stack([np.asarray(saes.decoder({k: v[j] for k, v in params.items()}, shape.kind))
                             for j in range(len(ids))])
        for j, i in enumerate(ids):
            one = {k: v[j] for k, v in sums.items()}
            bad = _diverged({k: v[j:j + 1] for k, v in params.items()}, history[j:j + 1],
                            one["mse"][None], None)[0]
            row = {"sae": int(i), **_settings_row(sweep[i]), "diverged": bool(bad),
                   "train_loss": float(history[j, -1, 0])}
            if bad:
                rows.append(row)
                continue
            scored = sae_scores.scores(decoders[j], hp.F[j], one, examples)
            # threshold labels are derived, not stored (verdicts.sae_optima)
            row.update({k: v for k, v in scored.items() if k not in verdicts.SAE_LABELS})
            rows.append(row)
            lat = sae_scores.latents(decoders[j], hp.F[j], one["fires"], examples)
            latent_frames.append(pd.DataFrame({"sae": int(i), **lat}))
            if shape.pairs:
                ab = sae_scores.absorption(one["pairs"][:len(shape.pairs)])
                pair_frames.append(pd.DataFrame({
                    "sae": int(i), "parent": [p for p, _ in shape.pairs],
                    "child": [ch for _, ch in shape.pairs], **ab}))
        segments = history.shape[1]
        history_frames.append(pd.DataFrame({
            "sae": np.repeat(ids, segments),
            "step": np.tile(shape.log_every * np.arange(1, segments + 1), len(ids)),
            "loss": history[:, :, 0].ravel(), "mse": history[:, :, 1].ravel()}))
        pieces.append((ids, {**params, "W_dec": decoders, "features": hp.F, "source_W": hp.W}))
    out = {"saes": _ordered(assemble.tidy(pd.DataFrame.from_records(rows))),
           "latents": _ordered(pd.concat(latent_frames, ignore_index=True) if latent_frames
                               else pd.DataFrame({"sae": []})),
           "history": _ordered(pd.concat(history_frames, ignore_index=True))}
    if pair_frames:
        out["absorption"] = _ordered(pd.concat(pair_frames, ignore_index=True))
    out["saes"] = _with_source_settings(out["saes"], sweep)
    return out, assemble.stack_padded(len(sweep), pieces)


def _settings_row(s: dict) -> dict:
    return {column(k): v for k, v in s.items() if not k.startswith("run.")}


def _with_source_settings(df: pd.DataFrame, sweep) -> pd.DataFrame:
    """The stored source models' own swept settings, as toy_<name> columns (toy_density,
    toy_seed, ...): an SAE sweep over source.model is a sweep over those."""
    found = {}
    for i, s in enumerate(sweep):
        if s["source.kind"] != "model":
            continue
        res = sources.stored(str(s["source.results"]))
        swept = {c for c in res.models.columns if c in
                 {"case", *(k.split(".", 1)[1] for k in res.config.get("sweep", {}))}}
        row = res.models.loc[res.models["model"] == s["source.model"]].iloc[0]
        for c in swept:
            found.setdefault(f"toy_{c}", {})[i] = row[c]
    for name, values in found.items():
        df[name] = df["sae"].map(values)
    return df


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("sae", kind="stable", ignore_index=True) if len(df) else df


def _progress(n, todo, enabled):
    """A bar over SAE-steps (each SAE's steps, summed), as sweep._progress."""
    total = sum(c.shape.steps * len(c.ids) for c in todo)
    return tqdm(total=total, unit=" SAE-steps", unit_scale=True, desc=f"training {n} SAEs",
                disable=not enabled or total == 0,
                file=sys.stderr, dynamic_ncols=True)


def train_sweep(cfg: dict) -> SaeResults:
    """Train an SAE experiment (a resolved config) in memory; writes nothing."""
    sweep, chunks = prepared(cfg)
    done = {c.index: None for c in chunks}
    train_chunks(sweep, chunks, done, progress=False)
    tabs, weights = tables(cfg, sweep, chunks, done)
    return verdicts.labelled(SaeResults.of(None, cfg, tabs, weights))


def run(cfg: dict, out=None, force=False, progress=True) -> SaeResults | None:
    """Train (or resume) an SAE experiment, store its tables and draw its figures (sweep.run)."""
    sweep, chunks = prepared(cfg)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    for s in sweep:
        if s["source.kind"] == "model" and Path(s["source.results"]).resolve() == out.resolve():
            raise ConfigError(f"source.results = {s['source.results']!r} is this run's own "
                              f"results directory; write to another one with --out")
    if (res := store.finished_run(out, cfg, force)) is not None:
        if not hosts.writer():
            return None
        store.notice(f"'{out}' holds this experiment's finished results: nothing is trained or "
                     f"rewritten (`toysuper plot {out}` redraws its figures, --force retrains)")
        return res
    t0 = time.time()
    lock = store.Lock(out)
    try:
        done = hosts.finished_chunks(out, cfg, force, chunks, lock)
        trained = sum(v is None for v in done.values())
        clock = [time.time()]  # when the chunk being trained started

        def save(c, arrays):
            start, clock[0] = clock[0], time.time()
            if hosts.writer():
                store.save_part(out, c.index, np.array(c.ids), *arrays, seconds=clock[0] - start)

        train_chunks(sweep, chunks, done, progress, save)
        if not hosts.writer():
            hosts.written()
            return None
        tabs, weights = tables(cfg, sweep, chunks, done)
        store.write_sae_results(out, tabs, weights, {
            "saes": len(sweep), "chunks": len(chunks), "trained_chunks": trained,
            "diverged": int(tabs["saes"]["diverged"].sum()), **store.timing(out, t0)})
        res = store.load(out)
        every = bool(res.saes["diverged"].all())
        outputs.make(res, figure_list=[] if every else None)  # nothing finite to draw
        hosts.written()
        if every:
            raise OutputsError(verdicts.all_diverged(res, "SAEs"))
    finally:
        lock.release()
    return res


def describe_plan(cfg: dict, out=None, probe=True) -> str:
    sweep, chunks = prepared(cfg)
    out = Path(out) if out is not None else Path("results") / cfg["name"]
    differ = store.differences(out, cfg)
    done = sum(store.finished(out, c.index, np.array(c.ids), c.shape) for c in chunks) \
        if (out / "config.toml").exists() and not differ else 0
    lines = plan.describe(cfg, sweep, chunks, done, probe, lab=sae_train)
    lines[0] = lines[0].replace(" models in ", " SAEs in ", 1)
    return "\n".join(lines)


def summary(res: SaeResults) -> str:
    """One line: how many SAEs beat the trivial solution (the decoder bias alone); a diverged
    SAE counts as losing (verdicts.py)."""
    c = verdicts.saes(tables_mod.get(res, "sae_optima"))
    ok = res.saes[~res.saes["diverged"].astype(bool)]
    words = (f"all {c.total} SAEs beat the trivial solution (decoder bias alone)" if not c.trapped
             else f"{c.trapped} of {c.total} SAEs do NOT beat the trivial solution (decoder bias "
             f"alone, or diverged{verdicts.diverged_words(c)}; see sae_optima.parquet)")
    medians = "; ".join(f"median {name} {ok[name].median():.3f}" if name in ok and len(ok)
                        else f"median {name} -" for name in ("mcc", "fve"))
    return f"checked: {words}; {medians}"
