"""Sparse autoencoders as a family of the engine: an experiment with an [sae] section.

    flat settings -> sources.filled -> sae_train.SaeShape / sae_train.inputs -> sae_train per
        chunk -> tables (saes, latents, history, absorption) -> SaeResults

A chunk's part file keeps the SAEs' parameters as `param/NAME` and their evaluation sums
(sae_train.Scores) in the extra slot, `snap/NAME`.

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

import numpy as np
import pandas as pd

from toysuper import assemble, config, engine, sae_scores, sae_train, saes, settings, sources, verdicts
from toysuper import tables as tables_mod
from toysuper.errors import ConfigError
from toysuper.family import Arrays, Family, register
from toysuper.results import SaeResults


def column(key: str) -> str:
    """saes.parquet column of an SAE setting: source.kind -> source, source.model ->
    source_model, any other key its name without the section (sae.kind -> kind)."""
    section, name = key.split(".", 1)
    if section == "source":
        return "source" if name == "kind" else f"source_{name}"
    return name


def tables(cfg, sweep, chunks, done) -> tuple[dict, dict, dict]:
    """({saes, latents, history, absorption}, weights, no snapshots) from every chunk's arrays."""
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
            bad = engine.diverged({k: v[j:j + 1] for k, v in params.items()}, history[j:j + 1],
                                  one["mse"][None])[0][0]
            row = {"sae": int(i), **_settings_row(sweep[i]), "diverged": bool(bad),
                   "train_loss": float(history[j, -1, 0])}
            if bad:
                rows.append(row)
                continue
            scored = sae_scores.scores(decoders[j], hp.F[j], one, examples,
                                       saes.KIND[shape.kind].trivial_terms(shape.d))
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
    return out, assemble.stack_padded(len(sweep), pieces), {}


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


def page(res, summary: dict, traps: str):
    """The report's facts on an SAE sweep: SAEs, runtime, those losing to the trivial solution
    (the decoder bias alone), diverged ones, median MCC; no views."""
    from toysuper import report  # noqa: PLC0415  (the report draws: training needs no plotly)

    df = res.saes
    trained = df[~df["diverged"].astype(bool)]
    c = verdicts.saes(tables_mod.get(res, "sae_optima"))
    return report.Page([
        ("SAEs", f"{len(df):,}", False), ("runtime", report.runtime(summary), False),
        ("lose to the trivial solution", f"{c.trapped:,} of {c.total:,} SAEs"
         f"{' (diverged ones included)' if c.diverged else ''}", c.trapped > 0),
        ("median MCC", f"{trained['mcc'].median():.3f}" if len(trained) and "mcc" in trained
         else "-", False),
        ("diverged", f"{int(df['diverged'].sum()):,}", bool(df["diverged"].any())),
        ("traps declared", "yes" if traps else "no", False)])


def _train(shape, hp, on_segment, start) -> Arrays:
    t = sae_train.train_saes(shape, hp, on_segment)
    sums = {name: np.asarray(v) for name, v in t.scores._asdict().items()}
    return Arrays(t.params, t.history, sums["mse"], sums)


def _probe(shape, hp):
    return sae_train.programs(shape).segment, sae_train.initial(shape, hp)


def _prepare(cfg, sweep):
    return [sources.filled(s) for s in sweep]


def _reads(sweep) -> list[tuple[str, str]]:
    """(setting, results folder) of the stored source models."""
    return [("source.results", f) for f in
            sorted({str(s["source.results"]) for s in sweep if s["source.kind"] == "model"})]


def validate(cfg):
    """Rules across an SAE experiment's settings, checked on every SAE of the sweep."""
    for one in config.expand(cfg):
        kind, k, d = one["sae.kind"], one["sae.k"], one["sae.width"]
        if saes.KIND[kind].uses_k and k > d:
            raise ConfigError(f"sae.k = {k} is more than sae.width = {d} latents ({kind} keeps the "
                              f"k largest of them)")
        if one["source.kind"] == "model":
            if not one["source.results"]:
                raise ConfigError("source.kind = 'model' needs source.results, the results "
                                  "directory of the toy models whose hidden states to read")
            continue  # the stored model brings its own features and law: sources.filled checks
        p = settings.feature_vector("data.density", one["data.density"], one["source.n_features"])
        for key, value in one.items():
            if m := settings.FEATURE_KEY.match(key):
                p[int(m.group(2))] = float(value)
        sets = one["data.correlated"] + one["data.anticorrelated"]
        settings.check_hierarchy(one["data.hierarchy"], p, sets)
        members = [i for g in sets for i in g]
        if len(members) != len(set(members)):
            raise ConfigError(f"feature(s) {sorted({i for i in members if members.count(i) > 1})} "
                              f"belong to more than one set of data.correlated and "
                              f"data.anticorrelated")
        for g in one["data.anticorrelated"]:
            if p[g].sum() > 1 + 1e-9:
                raise ConfigError(f"data.anticorrelated set {g} has densities summing to "
                                  f"{p[g].sum():.3g} > 1; at most one member is active at a "
                                  f"time, so their densities must sum to at most 1")



def footnote(res) -> tuple[str, bool]:
    """The figures' footnote on whether every SAE shown beats its trivial solution."""
    from toysuper.figures import style  # noqa: PLC0415  (drawing only)

    return style.sae_footnote_text(res.saes)


FAMILY = register(Family(
    name="saes", noun="SAEs", member="sae", section="sae", described="an SAE experiment",
    settings=settings.SAE_TABLE, tables=("saes", "latents", "history"), results=SaeResults,
    shape=sae_train.SaeShape.of, inputs=sae_train.inputs, train=_train,
    group_size=sae_train.group_size, width_quantum=sae_train.width_quantum,
    memory=sae_train.memory, host_bytes=sae_train.host_bytes, label=sae_train.label,
    part_shapes=lambda shape, k: shape.part_shapes(k), assemble=tables, summary=summary,
    probe=_probe, always=("sae_optima",), prepare=_prepare, reads=_reads, validate=validate,
    loaded=verdicts.labelled, page=page, footnote=footnote,
))
