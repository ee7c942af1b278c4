"""Polish rounds: restart every local-minimum cell from the neighbour's solution that beat it.

run.polish = N (a host setting; 0, the default, leaves a run's results as trained). After a
sweep is trained and stored, each round:
  1. scores every sweep cell against its neighbours (optima.neighbours: neighbours.parquet);
  2. retrains the kept model of every cell marked local_minimum with its own settings but its
     learning rate annealed to 0 (RECIPE, below) and train.init_from = this results directory
     (toysuper/starts.py: the kept solution of the nearest tasks that scores lowest on the
     cell's task, so the neighbour's that beat it);
  3. keeps, per cell, the lower-loss model (by the loss kept models are chosen by,
     optima.kept_models): a round's model replaces the kept one under its model id only if
     it scores lower on the cell's own task and evaluation sample (same seed, same key);
  4. rewrites the results (core tables, weights, snapshots, derived tables and figures).
Rounds stop when no cell is beaten, after N rounds, or when a round replaced nothing (the next
round would start from the same solutions with the same keys, and repeat it exactly).

What was done is stored beside the results:
  polish.parquet   one row per (round, restarted cell): model, neighbour (that beat it),
                   loss_before, loss_after (the round's model), replaced, beaten_after
  summary.json     "polish": the rounds' recipe; per round, cells beaten before and after,
                   models replaced, seconds; and why the rounds stopped
A replaced model keeps the sweep's settings in models.parquet, though its start and schedule
were the round's (polish.parquet and summary.json say which); its history is the round's.
An interrupted polish resumes: every round leaves a finished results directory, and
summary.json says how many rounds it holds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from toysuper import assemble, config, hosts, optima, outputs, plan, starts, store, train
from toysuper.results import SHAPE, Results

KEY = "run.polish"
# A round trains as the sweep did but with its learning rate annealed to 0 (cosine): at a
# constant lr Adam's noise holds a restarted model above the solution it started from, and it
# ends where the beaten model was. Measured on results/phase_n2 (36 local-minimum cells, lr
# 3e-3 constant): restarts at the constant lr replaced 8 of the 36 kept models, then none;
# annealed, 36 of 36 in the first round, with 9 cells beaten after it.
RECIPE = {"train.schedule": "cosine"}
RECORD = "polish.parquet"
COLUMNS = ["round", "model", "neighbour", "loss_before", "loss_after", "replaced", "beaten_after"]
STOPPED = {"none beaten": "no cell is beaten by a neighbour's solution",
           "round limit": "run.polish rounds done",
           "nothing replaced": "a round improved no cell, so another would repeat it exactly"}


def after(out, cfg: dict, res, progress: bool = False):
    """Polish the stored results of `cfg` in `out` (`res`, as `engine.run` returns them) for up
    to cfg's run.polish rounds; returns the results as stored at the end."""
    rounds = cfg.get("run", {}).get("polish", 0)
    if not rounds or res is None:
        return res
    if hosts.count() > 1:
        store.notice(f"{KEY} = {rounds} is skipped: polish rounds train on one process; run "
                     f"the experiment again on one host to polish '{out}'")
        return res
    out = Path(out)
    with store.Lock(out):
        summary = json.loads((out / "summary.json").read_text())
        state = summary.get("polish", {"recipe": RECIPE, "rounds": [], "stopped": None})
        record = _record(out, len(state["rounds"]))
        cells = optima.neighbours(res)
        while True:
            beaten = cells[cells["local_minimum"]]
            stop = ("none beaten" if beaten.empty else "round limit" if len(state["rounds"]) >= rounds
                    else "nothing replaced" if state["rounds"] and not state["rounds"][-1]["replaced"]
                    else None)
            if stop:
                if state["rounds"] and state["stopped"] is None:
                    # rounds stored since the derived tables and figures were last made (here,
                    # or by a polish cut short before it could make them). The stored ones
                    # describe the models before the rounds: none may be read while the others
                    # are made (claims read phase.parquet, made after them).
                    res.derived.clear()
                    outputs.make(res, progress=progress)
                if state["stopped"] != stop:
                    state["stopped"] = stop
                    summary["polish"] = state
                    store.write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
                store.notice(f"{KEY}: {len(state['rounds'])} round(s); {len(beaten)} local-minimum "
                             f"cell(s) left ({STOPPED[stop]}); see {RECORD}")
                return res
            t0 = time.time()
            number = len(state["rounds"]) + 1
            polished, rows = _one_round(out, cfg, res, beaten, progress)
            cells = optima.neighbours(polished)
            still = set(cells.loc[cells["local_minimum"], "model"])
            rows = rows.assign(round=number, beaten_after=rows["model"].isin(still))[COLUMNS]
            record = pd.concat([record, rows], ignore_index=True) if len(record) else rows
            state["rounds"].append({"round": number, "beaten_before": len(beaten),
                                    "replaced": int(rows["replaced"].sum()),
                                    "beaten_after": len(still),
                                    "seconds": round(time.time() - t0, 2)})
            state["stopped"] = None
            summary["polish"] = state
            # the record first, then the results with summary.json last, which says how many
            # rounds of the record the stored results hold
            store.write_table(out / RECORD, record)
            _write(out, polished, summary, rounds)
            res = store.load(out)


def _record(out: Path, rounds: int) -> pd.DataFrame:
    """The stored record of the rounds summary.json counts (a round cut short after writing
    the record but before summary.json is trained again)."""
    path = out / RECORD
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    df = pd.read_parquet(path)
    return df[df["round"] <= rounds].reset_index(drop=True)


def _one_round(out: Path, cfg: dict, res, beaten: pd.DataFrame, progress: bool):
    """Retrain the beaten cells' kept models from `out`'s solutions: (the results with the
    improved ones swapped in, in memory; one row per retrained model)."""
    sweep = config.expand(res.config)
    ids = [int(i) for i in beaten["model"]]
    rows = [{**sweep[i], starts.KEY: str(out), **RECIPE} for i in ids]
    chunks = plan.chunks(rows, cfg["run"]["chunk_size"], cfg["run"]["memory_gb"])
    done = {}
    for c in chunks:
        k = len(c.ids)
        if progress:
            store.notice(f"{KEY}: restarting {k} local-minimum cell(s) from the solutions that "
                         f"beat them")
        t = train.train(c.shape, train.inputs([rows[j] for j in c.ids], c.width),
                        start=starts.chunk(rows, c.ids, c.width, c.shape))
        done[c.index] = ({n: np.asarray(v[:k]) for n, v in t.params["params"].items()},
                         np.asarray(t.history[:k]), np.asarray(t.final[:k]),
                         {n: np.asarray(v[:k]) for n, v in t.snapshots["params"].items()}
                         if t.snapshots else {})
    new, weights, snaps = assemble.tables(rows, chunks, done)
    # the loss each cell keeps its model by (optima._cells): the training loss for finite data
    by = "train_loss" if "dataset_size" in res.models and (res.models["dataset_size"] > 0).any() \
        else "loss"
    before = res.models.set_index("model")[by].to_numpy()[ids]
    after_ = new["models"][by].to_numpy()
    replaced = np.isfinite(after_) & ~(after_ >= np.nan_to_num(before, nan=np.inf))
    polished = _swapped(res, {ids[j]: j for j in np.flatnonzero(replaced)}, new, weights, snaps)
    return polished, pd.DataFrame({"model": ids, "neighbour": beaten["neighbour"].astype(int).to_numpy(),
                         "loss_before": res.models.set_index("model")["loss"].to_numpy()[ids],
                         "loss_after": new["models"]["loss"].to_numpy(), "replaced": replaced})


STATS = ("loss", "train_loss", "dims_per_feature")  # models.parquet columns a model's training sets


def _swapped(res, swap: dict, new: dict, weights: dict, snaps: dict) -> Results:
    """`res` with models swap = {model id: row of the round} replaced by the round's, in memory."""
    models, features, history = res.models.copy(), res.features.copy(), res.history.copy()
    stored = {name: a.copy() for name, a in res.weights.items()}
    shots = {name: a.copy() for name, a in res.snapshots.items()}
    for i, j in swap.items():
        for col in STATS:
            models.loc[models["model"] == i, col] = new["models"].loc[j, col]
        for table, fresh, cols in ((features, new["features"], _numbers(features)),
                                   (history, new["history"], ["loss"])):
            mine, theirs = table["model"] == i, fresh["model"] == j
            table.loc[mine, cols] = fresh.loc[theirs, cols].to_numpy()
        for name, a in stored.items():
            a[(i, *_cut(res.shapes[name][i]))] = weights[name][(j, *_cut(res.shapes[name][i]))]
        for name, a in shots.items():
            if name != "step" and not name.endswith(SHAPE):
                a[(i, *_cut(shots[name + SHAPE][i]))] = snaps[name][(j, *_cut(
                    shots[name + SHAPE][i]))]
    if "diverged" in models:  # a replaced model is finite (a diverged one is never kept over it)
        models.loc[models["model"].isin(list(swap)), "diverged"] = False
        models.loc[models["model"].isin(list(swap)), "diverged_step"] = pd.NA
    stored.update({name + SHAPE: s for name, s in res.shapes.items()})
    return Results.of(None, res.config, {"models": models, "features": features,
                                         "history": history}, stored, shots)


def _write(out: Path, res, summary: dict, rounds: int) -> None:
    """Store `res` in `out`. The tables are as read, upgraded to the current schema, so the
    config follows them, after them (upgrade steps leave upgraded tables as they are, so a
    polish cut short in between reads them right), with the run.polish it was polished by."""
    weights = {**res.weights, **{name + SHAPE: s for name, s in res.shapes.items()}}
    store.write_results(out, {"models": res.models, "features": res.features,
                              "history": res.history}, weights, res.snapshots, summary)
    store.write_config(out, {**res.config, "run": {**res.config.get("run", {}), "polish": rounds}})


def _numbers(features: pd.DataFrame) -> list[str]:
    """The features-table columns computed from a model's weights."""
    return [c for c in ("norm", "superposition", "dimensionality", "bias") if c in features]


def _cut(shape) -> tuple:
    return tuple(slice(0, int(k)) for k in shape)
