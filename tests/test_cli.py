"""The `toysuper` command: exit codes, one-line errors, and plot redrawing stored figures."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from toysuper import cli

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"

TINY = """
name = "tiny"
description = "a tiny test experiment"
figures = ["feature_plane", "loss_curves"]
[model]
n_features = 5
n_hidden = 2
[train]
steps = 100
batch = 128
log_every = 50
eval_batch = 512
[sweep]
data.density = [1.0, 0.1]
"""


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.mark.parametrize("args, words", [
    (["run", "{tiny}", "--set", "train.stepz=5"], ["unknown key 'train.stepz'", "train.steps"]),
    (["run", "{tiny}", "--set", "data.density=2"], ["data.density = 2", "(0, 1]"]),
    (["run", "{tiny}", "--set", "data.importance=-1"], ["data.importance", ">= 0"]),
    (["run", "{tiny}", "--set", "model.n_hidden=0"], ["model.n_hidden = 0", "positive integer"]),
    (["run", "{tiny}", "--set", "train.steps=-100"], ["train.steps = -100", "positive integer"]),
    (["run", "{tmp}/missing.toml"], ["missing.toml", "does not exist"]),
    (["plot", "{tmp}"], ["not a toysuper results directory"]),
    # each once a traceback, a silent blow-up or a refusal only after training (issue 30)
    (["run", "{tiny}", "--plan", "--set", "train.lr=nan"], ["train.lr = nan", "finite"]),
    (["run", "{tiny}", "--plan", "--set", "run.memory_gb=nan"], ["run.memory_gb = nan", "finite"]),
    (["run", "{tiny}", "--plan", "--set", "run.memory_gb=100000"],
     ["run.memory_gb = 100000 is more than this machine's memory"]),
    (["run", "{tmp}/llc.toml", "--plan", "--set", "data.dataset_size=1"],
     ["table 'llc' needs data.dataset_size = 0", "at least 2"]),
    (["run", "{tmp}/"], ["is a folder", "experiment file"]),
    (["run", "{tiny}", "--out", "/proc/toysuper-cannot-write"], ["cannot write into"]),
])
def test_bad_input_exits_2_with_one_line(args, words, tiny_file, tmp_path, capsys):
    (tmp_path / "llc.toml").write_text('tables = ["llc"]\n' + TINY.replace('name = "tiny"', 'name = "llc"'))
    args = [a.format(tiny=tiny_file, tmp=tmp_path) for a in args]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("toysuper: error:")
    for w in words:
        assert w in err


def test_console_script_error_has_no_traceback(tiny_file):
    proc = subprocess.run([sys.executable, "-m", "toysuper.cli", "run", str(tiny_file),
                           "--set", "model.kind=mlp"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "model.kind = 'mlp' is not one of: linear, relu" in proc.stderr


def test_run_then_plot_redraws_the_same_figures(tiny_file, tmp_path, capsys):
    out = tmp_path / "res"
    assert cli.main(["run", str(tiny_file), "--out", str(out), "--quiet"]) == 0
    figs = sorted((out / "figures").glob("*.png"))
    assert [f.name for f in figs] == ["feature_plane.png", "loss_curves.png"]
    before = {f.name: image.imread(f) for f in figs}
    for f in figs:
        f.unlink()
    assert cli.main(["plot", str(out)]) == 0
    for name, pixels in before.items():
        np.testing.assert_array_equal(image.imread(out / "figures" / name), pixels)


def test_list_shows_every_experiment_with_its_description(capsys):
    assert cli.main(["list", str(EXPERIMENTS)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    names = {line.split()[0] for line in lines}
    assert {"intro", "superposition"} <= names
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_experiment_is_valid_and_documented(path):
    from toysuper import config
    cfg = config.load(path)
    assert cfg["description"] and cfg["figures"]
    assert path.read_text().startswith("#"), "an experiment file opens with a comment"


def test_unknown_experiment_name_lists_the_known_ones(capsys):
    assert cli.main(["run", "nosuchexperiment"]) == 2
    err = capsys.readouterr().err
    assert "nosuchexperiment" in err and "superposition" in err


def test_a_sweep_too_large_for_the_host_is_refused_before_it_is_made(tmp_path, capsys):
    """1e8 seeds once filled 4 GB and ran silent for minutes; now refused from its axes' sizes."""
    path = tmp_path / "big.toml"
    path.write_text(TINY.replace("data.density = [1.0, 0.1]", "train.seed = {range = 100000000}"))
    assert cli.main(["run", str(path), "--plan", "--no-probe"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the sweep has 100,000,000 models" in err


SAE = """
name = "s"
[source]
n_features = 8
n_hidden = 4
[sae]
width = 8
"""


def test_sae_experiments_refuse_toy_tables_and_sae_results_as_their_source(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text('tables = ["llc"]\n' + SAE)
    assert cli.main(["run", str(path), "--plan", "--no-probe"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tables: 'llc' reads toys results, not an SAE" in err
    # a stored SAE sweep is no toy model to read activations from (once an AttributeError)
    stored = EXPERIMENTS.parent / "results" / "sae_dictionary"
    path.write_text(SAE.replace("[source]", f'[source]\nkind = "model"\nresults = "{stored}"'))
    assert cli.main(["run", str(path), "--plan", "--no-probe"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "holds SAEs, not toy models" in err


def test_an_unknown_derived_table_is_a_clear_error():
    from toysuper import tables
    from toysuper.errors import ConfigError

    class Stored:  # any results: the name is refused before anything is read
        derived: dict = {}

    with pytest.raises(ConfigError, match="no derived table named 'nope'; known: "):
        tables.get(Stored(), "nope")


def test_the_progress_bar_counts_model_steps():
    """Two shapes of 2 models each, 100 and 200 steps: 600 model-steps (it once said 300)."""
    from toysuper import config, engine, family, plan

    cfg = engine.resolve({"name": "p", "model": {"n_features": 5, "n_hidden": 2},
                          "train": {"log_every": 50},
                          "sweep": {"train.steps": [100, 200], "data.density": [1.0, 0.1]}})
    chunks = plan.chunks(config.expand(cfg), 4096)
    bar = engine._progress(family.default(), 4, chunks, enabled=True)
    try:
        assert bar.total == 2 * 100 + 2 * 200
    finally:
        bar.close()
