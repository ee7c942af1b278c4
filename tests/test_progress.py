"""Progress bars of the long stages besides training (toysuper/progress.py): the `--plan` probe,
derived tables and figures (`plot`, and `run` after training), and `report`. Each bar, forced on
(TOYSUPER_PROGRESS=1), reaches its total on stderr; off, or on a stderr that is not a terminal,
nothing is drawn."""

import re
import shutil
from pathlib import Path

import pytest

from toysuper import cli, engine, outputs, progress, report, store

ROOT = Path(__file__).resolve().parent.parent


def _copy(name: str, dest: Path) -> Path:
    """A committed results directory, copied without its resumable parts."""
    shutil.copytree(ROOT / "results" / name, dest / name, ignore=shutil.ignore_patterns("parts"))
    return dest / name


def _ends(err: str, desc: str) -> tuple[int, int]:
    """(count, total) of the last state drawn of the bar named `desc`."""
    states = re.findall(rf"{re.escape(desc)}[^\r\n]*?(\d+)/(\d+)", err)
    assert states, f"no {desc!r} bar on stderr: {err!r}"
    return tuple(map(int, states[-1]))


def test_the_tables_and_figures_bar_counts_each_table_and_figure(tmp_path, monkeypatch, capsys):
    res = store.load(_copy("intro", tmp_path))
    monkeypatch.setenv(progress.ENV, "1")
    made = outputs.make(res)
    total = len(outputs.table_names(res.config)) + len(outputs.figure_names(res.config))
    assert len(made) == len(outputs.figure_names(res.config)) and total > len(made)
    assert _ends(capsys.readouterr().err, "tables and figures") == (total, total)


def test_plot_shows_the_bar_and_prints_the_figures(tmp_path, monkeypatch, capsys):
    folder = _copy("intro", tmp_path)
    monkeypatch.setenv(progress.ENV, "1")
    assert cli.main(["plot", str(folder), "--figure", "loss_curves"]) == 0
    out, err = capsys.readouterr()
    assert out.split() == [str(folder / "figures" / "loss_curves.png")]
    n = len(outputs.table_names(store.load(folder).config, ["loss_curves"])) + 1
    assert _ends(err, "tables and figures") == (n, n)


def test_the_report_bar_counts_the_results_directories(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    for name in ("intro", "superposition"):
        _copy(name, results)
    monkeypatch.setenv(progress.ENV, "1")
    report.build(results, tmp_path / "site")
    assert _ends(capsys.readouterr().err, "report") == (2, 2)


def test_the_plan_probe_bar_times_two_segments_per_shape(tiny, monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV, "1")
    cfg = dict(tiny, sweep={"data.density": [1.0, 0.1], "model.n_hidden": [1, 2]})  # 2 shapes
    text = engine.describe_plan(cfg, probe=True)
    assert text.count("probe:") == 2
    err = capsys.readouterr().err
    assert _ends(err, "probe of relu n=5 m=1 batch=256") == (2, 2)
    assert len(re.findall(r"probe of relu n=5 m=\d batch=256[^\r\n]*2/2", err)) >= 2  # one bar per shape


@pytest.mark.parametrize("env, enabled", [("0", True), (None, True), ("1", False)])
def test_no_bar_when_turned_off_or_not_on_a_terminal(env, enabled, tmp_path, monkeypatch,
                                                      capsys):
    """TOYSUPER_PROGRESS=0, or no setting and a captured (not a terminal) stderr, or the caller's
    progress=False (run --quiet): nothing drawn."""
    if env is None:
        monkeypatch.delenv(progress.ENV, raising=False)
    else:
        monkeypatch.setenv(progress.ENV, env)
    res = store.load(_copy("intro", tmp_path))
    outputs.make(res, ["loss_curves"], progress=enabled)
    with progress.bar(3, "by hand", enabled) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""

