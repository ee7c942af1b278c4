"""Sweeps that survive their failures: diverged models, damaged files, two runs at one directory."""

import json
import os
import re
import signal
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import toysuper
from toysuper import cli, config, engine, family, optima, report, store, tables, upgrade, verdicts
from toysuper.figures import style

# lr 1e12 overflows every model within the first logged interval; 3e-3 trains normally
DIVERGING = {"data.density": [1.0, 0.1], "train.lr": [3e-3, 1e12]}


def experiment_file(tmp_path, cfg) -> str:
    """A TOML experiment file holding the config dict `cfg` (for the command line)."""
    path = tmp_path / f"{cfg['name']}.toml"
    path.write_text(config.to_toml(engine.resolve(cfg)))
    return str(path)


def one_line(text: str) -> str:
    assert text.count("\n") == 1 and "Traceback" not in text, text
    return text


# -- diverged models ------------------------------------------------------------------------


def test_diverged_models_are_kept_marked_and_named_and_the_rest_unchanged(tiny, tmp_path, capsys):
    out = tmp_path / "r"
    exp = experiment_file(tmp_path, dict(tiny, sweep=DIVERGING))
    assert cli.main(["run", exp, "--out", str(out), "--quiet"]) == 0
    said = capsys.readouterr().out
    assert ("2 of 4 models diverged (non-finite loss), kept with loss NaN and diverged = True in "
            "models.parquet: model 1 (density=1, lr=1e+12; by step 50); "
            "model 3 (density=0.1, lr=1e+12; by step 50)") in said

    res = toysuper.load(out)
    m = res.models
    assert m["diverged"].tolist() == [False, True, False, True]
    assert m["diverged_step"].isna().tolist() == [True, False, True, False]
    assert m["diverged_step"][[1, 3]].tolist() == [50, 50]
    assert m["loss"].isna().tolist() == [False, True, False, True]
    assert np.isnan(res.weights["W"][[1, 3]]).all() and np.isfinite(res.weights["W"][[0, 2]]).all()
    diverged_features = res.features[res.features["model"].isin([1, 3])]
    assert diverged_features[["norm", "dimensionality", "bias"]].isna().all().all()
    assert json.loads((out / "summary.json").read_text())["diverged"] == 2

    # the others are what they are without the diverging models beside them
    alone = toysuper.train_sweep(dict(tiny, sweep={"data.density": [1.0, 0.1]}))
    np.testing.assert_array_equal(res.weights["W"][[0, 2]], alone.weights["W"])
    np.testing.assert_array_equal(m["loss"][[0, 2]], alone.models["loss"])

    # run again: finished, so read as stored, nothing trained or rewritten
    summary = (out / "summary.json").read_text()
    again = toysuper.run(dict(tiny, sweep=DIVERGING), out=out, progress=False)
    assert (out / "summary.json").read_text() == summary
    pd.testing.assert_frame_equal(again.models, m)


def test_on_diverge_stop_ends_the_run_as_before(tiny, tmp_path, capsys):
    exp = experiment_file(tmp_path, dict(tiny, sweep=DIVERGING))
    out = tmp_path / "r"
    assert cli.main(["run", exp, "--out", str(out), "--quiet", "--set", "run.on_diverge=stop"]) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith("toysuper: training failed: model 1 diverged (non-finite loss)")
    assert "run.on_diverge = 'keep'" in err
    assert not (out / "summary.json").exists() and not (out / "run.lock").exists()

    assert cli.main(["run", exp, "--plan", "--set", "run.on_diverge=maybe"]) == 2
    assert "run.on_diverge = 'maybe' is not one of: keep, stop" in one_line(capsys.readouterr().err)


@pytest.fixture
def diverged_result(tiny):
    """Two seeds of two lrs at two densities, the high lr diverged: 8 models, 4 cells."""
    return toysuper.train_sweep(dict(tiny, sweep={**DIVERGING, "train.seed": [0, 1]}))


@pytest.mark.parametrize("name", ["optima", "neighbours", "units", "computation"])
def test_derived_tables_are_computed_with_diverged_models(name, diverged_result):
    table = tables.get(diverged_result, name)
    assert len(table) > 0


def test_structures_of_diverged_models(diverged_result):
    t = tables.get(diverged_result, "structures")
    gone = diverged_result.models.loc[diverged_result.models["diverged"], "model"]
    assert (t.loc[t["model"].isin(gone), "structure"] == "diverged").all()
    assert not (t.loc[~t["model"].isin(gone), "structure"] == "diverged").any()


def test_a_cell_keeps_a_finished_seed_over_a_diverged_one(diverged_result):
    res = diverged_result
    cell = res.models[(res.models["lr"] < 1) & (res.models["density"] == 1.0)]["model"].tolist()
    models = res.models.copy()
    models.loc[cell[0], "loss"] = np.nan  # as if its first seed had diverged
    res.models = models
    assert cell[1] in optima.kept_models(res)


def test_a_run_with_diverged_models_draws_its_figures(tiny, tmp_path, capsys):
    """Every derived table reads diverged (NaN) models, so the run ends normally."""
    out = tmp_path / "r"
    exp = experiment_file(tmp_path, dict(tiny, sweep=DIVERGING, figures=["structure_mix"]))
    assert cli.main(["run", exp, "--out", str(out), "--quiet"]) == 0
    assert "diverged" in capsys.readouterr().out
    assert (out / "figures" / "structure_mix.png").exists()
    assert toysuper.load(out).models["diverged"].sum() == 2
    assert not (out / "run.lock").exists()


# -- counting diverged models: one function for every summary, footnote and report card -------

LRS = {"none": [3e-3], "some": [3e-3, 1e12], "all": [1e12]}


@pytest.mark.parametrize("which", list(LRS))
def test_toy_sweeps_count_diverged_models_as_trapped_everywhere(which, tiny, tmp_path, capsys):
    """None, some and all diverged: the run's summary line, a figure's footnote and the report's
    card count from verdicts.toys; a diverged model is trapped (docs/failures.md); a sweep that
    all diverged is stored and ends with one clear line, not a pandas error."""
    cfg = dict(tiny, sweep={"data.density": [1.0, 0.1], "train.lr": LRS[which]},
               figures=["structure_mix"], train=dict(tiny["train"], steps=100))
    out = tmp_path / "r"
    code = cli.main(["run", experiment_file(tmp_path, cfg), "--out", str(out), "--quiet"])
    said = capsys.readouterr()
    res = toysuper.load(out)
    o, cells = tables.get(res, "optima"), tables.get(res, "neighbours")
    c = verdicts.toys(o, cells)
    assert c.diverged == {"none": 0, "some": 2, "all": 2}[which] == int(o["diverged"].sum())
    assert o.loc[o["diverged"], "trapped"].all() and c.trapped >= c.diverged
    assert c.clean == c.total - len(set(o.loc[o["trapped"], "model"])
                                    | set(cells.loc[cells["local_minimum"], "model"]))
    line = optima.summary(o, cells)
    assert (f"{c.trapped} of {c.total} models are trapped" in line) if c.trapped else (
        f"every one of {c.total} models" in line)
    if which == "all":
        assert code == 1 and "every one of the 2 models diverged" in one_line(said.err)
        assert "idxmin" not in said.err and (out / "optima.parquet").exists()
        return
    assert code == 0 and line in said.out
    if c.diverged:
        assert f"diverged: {c.diverged} of the {c.trapped}" in line
    text, _ = style.footnote_text(res)
    assert f"{c.trapped} of {c.total} models trapped" in text or (
        not c.trapped and f"all {c.total} models beat" in text)
    (index, _) = report.build(out, tmp_path / "site")
    assert f"{c.trapped:,} of {c.total:,} models" in index.read_text()


SAE = {"name": "small", "source": {"n_features": 16, "n_hidden": 8}, "data": {"density": 0.05},
       "sae": {"kind": "topk", "width": 16, "k": 2},
       "train": {"steps": 200, "batch": 128, "lr": 3e-3, "log_every": 100, "eval_batch": 2048}}


@pytest.mark.parametrize("which", list(LRS))
def test_sae_sweeps_count_diverged_saes_as_losing_everywhere(which, tmp_path, capsys):
    """The SAE summary once said "-2 of 1 SAEs do NOT beat..." with one of two diverged and
    raised KeyError 'beats_trivial' with all diverged, in `run` and in `report`."""
    cfg = dict(SAE, sweep={"train.lr": LRS[which]}, figures=["sae_dictionary"])
    out = tmp_path / "s"
    code = cli.main(["run", experiment_file(tmp_path, cfg), "--out", str(out), "--quiet"])
    said = capsys.readouterr()
    res = toysuper.load(out)
    labels = tables.get(res, "sae_optima")
    c = verdicts.saes(labels)
    assert c.diverged == {"none": 0, "some": 1, "all": 1}[which]
    assert c.trapped == c.diverged  # these settings: every trained SAE beats the trivial one
    assert not labels.loc[labels["diverged"], "beats_trivial"].any()
    assert "beats_trivial" not in pd.read_parquet(out / "saes.parquet")  # derived, not stored
    line = family.get("saes").summary(res)
    assert "-" not in line.split(";")[0] and (
        f"{c.trapped} of {c.total} SAEs do NOT" in line if c.trapped else "all 1 SAEs" in line)
    text, flagged = style.footnote_text(res)
    assert flagged == bool(c.trapped) and (not c.trapped or f"{c.trapped} of {c.total}" in text)
    if which == "all":
        assert code == 1 and "every one of the 1 SAEs diverged" in one_line(said.err)
    else:
        assert code == 0 and line in said.out
    index, skipped = report.build(out, tmp_path / "site")
    assert not skipped and f"{c.trapped:,} of {c.total:,} SAEs" in index.read_text()


def test_stored_sae_labels_are_replaced_by_derived_ones(tmp_path):
    """saes.parquet written before the labels were derived keeps stale ones: they are ignored."""
    out = tmp_path / "s"
    toysuper.run(dict(SAE, sweep={"train.seed": [0, 1]}), out=out, progress=False)
    stale = pd.read_parquet(out / "saes.parquet").assign(beats_trivial=False, recovered=7.0)
    stale.to_parquet(out / "saes.parquet")
    res = toysuper.load(out)
    assert res.saes["beats_trivial"].all() and (res.saes["recovered"] <= 1).all()


# -- damaged files ------------------------------------------------------------------------------

TWO_CHUNKS = {"data.density": [1.0, 0.1], "model.n_hidden": [1, 2]}  # a chunk per shape


def damage(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "bad bytes":  # the zip directory intact, an array's bytes not (CRC check)
        mid = len(data) // 3
        path.write_bytes(data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 64]) + data[mid + 64:])
    elif how == "cut short":  # a valid file whose arrays are not the chunk's
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["history"] = arrays["history"][:, :2]
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)


@pytest.mark.parametrize("how", ["truncated", "empty", "bad bytes", "cut short"])
def test_a_damaged_part_is_trained_again_never_read_as_finished(how, tiny, tmp_path, capsys):
    cfg, out = dict(tiny, sweep=TWO_CHUNKS), tmp_path / "r"
    first = toysuper.run(cfg, out=out, progress=False)
    (out / "summary.json").unlink()  # as if stopped after its parts: finished runs read as stored
    part = out / "parts" / "chunk-00001.npz"
    damage(part, how)
    assert "1 of 2 chunks already finished" in engine.describe_plan(cfg, out=out, probe=False)
    capsys.readouterr()

    again = toysuper.run(cfg, out=out, progress=False)
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"toysuper: {part} is damaged (") and "2 models will be trained again" in err
    if how == "cut short":
        assert "history has shape (2, 2), expected (2, 4)" in err
    assert json.loads((out / "summary.json").read_text())["trained_chunks"] == 1
    np.testing.assert_array_equal(again.weights["W"], first.weights["W"])
    assert store.load_part(out, 1, np.array([1, 3])) is not None  # the retrained part, whole


@pytest.fixture
def finished(tiny, tmp_path):
    out = tmp_path / "r"
    res = toysuper.run(tiny, out=out, progress=False)
    return out, res


@pytest.mark.parametrize("name, how, says", [
    ("weights.npz", "missing", "weights.npz is missing"),
    ("weights.npz", "truncated", "weights.npz cannot be read (BadZipFile"),
    ("models.parquet", "truncated", "models.parquet cannot be read ("),
    ("history.parquet", "empty", "history.parquet cannot be read ("),
])
def test_a_damaged_results_file_is_one_line_and_rebuilt_from_the_parts(name, how, says, tiny,
                                                                       finished, capsys):
    out, res = finished
    if how == "missing":
        (out / name).unlink()
    else:
        damage(out / name, how)
    with pytest.raises(toysuper.ConfigError, match="damaged") as e:
        toysuper.load(out)
    assert says in str(e.value) and "finished chunks (parts/) are kept" in str(e.value)
    assert cli.main(["plot", str(out)]) == 2
    assert says in one_line(capsys.readouterr().err)

    again = toysuper.run(tiny, out=out, progress=False)  # nothing to train: rebuilt from parts/
    assert json.loads((out / "summary.json").read_text())["trained_chunks"] == 0
    np.testing.assert_array_equal(again.weights["W"], res.weights["W"])
    assert toysuper.load(out).models.equals(again.models)


def test_a_damaged_config_is_one_line_and_refused_unless_forced(tiny, finished, capsys):
    out, _ = finished
    (out / "config.toml").write_text("schema = [\n")
    with pytest.raises(toysuper.ConfigError, match=r"config.toml cannot be read \(TOMLDecodeError"):
        toysuper.load(out)
    exp = experiment_file(out.parent, tiny)
    assert cli.main(["run", exp, "--out", str(out), "--quiet"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "config.toml' is damaged (TOMLDecodeError" in err and "--force" in err
    assert cli.main(["run", exp, "--out", str(out), "--quiet", "--force"]) == 0


def test_results_of_a_newer_schema_are_refused_in_one_line_by_every_command(tiny, finished, capsys):
    out, _ = finished
    text = (out / "config.toml").read_text()
    (out / "config.toml").write_text(text.replace(f"schema = {upgrade.SCHEMA}",
                                                  f"schema = {upgrade.SCHEMA + 1}"))
    before = sorted(p.name for p in out.iterdir())
    exp = experiment_file(out.parent, tiny)
    for args in (["run", exp, "--out", str(out), "--quiet"], ["plot", str(out)],
                 ["upgrade", str(out)], ["run", exp, "--out", str(out), "--plan"]):
        assert cli.main(args) == 2, args
        assert "was written by a newer toysuper" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in out.iterdir()) == before  # nothing touched


def test_results_without_divergence_columns_read_as_none_diverged(finished):
    out, _ = finished
    models = pd.read_parquet(out / "models.parquet").drop(columns=["diverged", "diverged_step"])
    models.to_parquet(out / "models.parquet")
    config = out / "config.toml"  # written before run.on_diverge: results schema 3
    config.write_text(re.sub(r"(?m)^schema = \d+$", "schema = 3", config.read_text()))
    res = toysuper.load(out)
    assert not res.models["diverged"].any() and res.models["diverged_step"].isna().all()


# -- one run at a time ------------------------------------------------------------------------

HOLD = """
import sys, time
from toysuper import store
store.Lock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(300)
"""


def test_a_second_run_into_a_directory_refuses_and_a_killed_ones_lock_is_taken_over(
        tiny, tmp_path, capsys):
    out = tmp_path / "r"
    exp = experiment_file(tmp_path, tiny)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cli.main(["run", exp, "--out", str(out), "--quiet"]) == 2
        err = one_line(capsys.readouterr().err)
        assert f"'{out}' is in use by another run (pid {holder.pid} on {socket.gethostname()}" in err
        assert not (out / "config.toml").exists()  # refused before touching anything
    finally:
        holder.send_signal(signal.SIGKILL)  # killed: its lock stays behind
        holder.wait()
        holder.stdout.close()
    assert (out / "run.lock").exists()
    assert cli.main(["run", exp, "--out", str(out), "--quiet"]) == 0
    assert f"left by a run that is gone (pid {holder.pid}" in capsys.readouterr().err
    assert not (out / "run.lock").exists()


def lock_of(**holder):
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": None,
                       **holder})


def test_stale_and_foreign_locks(tiny, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    for stale in (lock_of(pid=int(gone)),       # its process has exited
                  lock_of(started=-1),          # this pid, but reused: started at another time
                  "not a lock"):                # not written by toysuper
        (out / "run.lock").write_text(stale)
        with store.Lock(out) as lock:
            assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        assert not (out / "run.lock").exists()
    for live in (lock_of(), lock_of(host="elsewhere", pid=1)):  # this process; another host's
        (out / "run.lock").write_text(live)
        with pytest.raises(toysuper.ConfigError, match=r"is in use by another run.*delete"):
            store.Lock(out).acquire()
        assert (out / "run.lock").read_text() == live


def test_the_lock_is_released_when_a_run_is_refused_or_fails(tiny, finished):
    out, _ = finished
    with pytest.raises(toysuper.ConfigError, match="different configuration"):
        toysuper.run(tiny, ["train.lr=0.01"], out=out, progress=False)
    assert not (out / "run.lock").exists()
    with pytest.raises(toysuper.TrainingError):
        toysuper.run(tiny, ["train.lr=1e12", "run.on_diverge=stop"], out=out, force=True,
                     progress=False)
    assert not (out / "run.lock").exists()


def test_phase_table_with_a_cell_all_diverged():
    res = toysuper.train_sweep({
        "name": "phase_tiny", "model": {"kind": "relu", "n_features": 2, "n_hidden": 1},
        "train": {"steps": 100, "batch": 256, "log_every": 50, "eval_batch": 1024},
        "sweep": {"data.density": [1.0, 0.1], "train.lr": [3e-3, 1e12]}})
    assert res.models["diverged"].sum() == 2
    tables.get(res, "phase")
