"""benchmarks/gpu_check.py runs end to end at --tiny size on the CPU, so the prepared GPU check
cannot rot; and the group size it suggests is the one train.group_size would then pick."""

import json
import sys
from pathlib import Path

import pytest

from toysuper import config, layout, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import gpu_check  # noqa: E402

SECTIONS = ("device", "matmul", "golden", "identity", "speed", "saturation", "advice", "useful")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    gpu_check.main(["--tiny", "--out", str(out)])
    return json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_every_section_is_there_without_error(report):
    got, md = report
    for name in SECTIONS:
        assert name in got, name
        assert not (isinstance(got[name], dict) and "error" in got[name]), (name, got[name])
    assert [r["workload"] for r in got["speed"]] == ["a", "b", "c"]
    assert all(r["toysuper"] > 0 and "error" not in r for r in got["speed"])
    assert [r["scan"] for r in got["saturation"]] == [*gpu_check.TOY_SCANS, "SAE topk", "LLC regression"]
    assert all(r["suggested"] and r["peak"] > 0 for r in got["saturation"])
    assert got["matmul"]["gflops"] > 0 and 0 < got["useful"]["share"]
    assert got["device"]["matmul_precision"] == "highest"
    assert "| golden sweep" in md and "| scan |" in md and "| workload |" in md


def test_a_model_is_bit_identical_alone_in_a_sweep_and_across_chunkings(report):
    ident = report[0]["identity"]
    assert ident["alone_vs_sweep"] and ident["chunkings"], ident


def test_golden_sweep_matches_the_stored_cpu_values(report):
    g = report[0]["golden"]
    assert g["within_tolerance"], ("the golden sweep moved: if training changed on purpose, "
                                   "rerun `python benchmarks/gpu_check.py --write-golden --tiny "
                                   "--out /tmp/x` on a CPU", g)


def test_torch_peer_is_run_or_said_to_be_skipped(report):
    got, md = report
    if got["device"]["torch"] is None:
        assert all(r["torch"] is None for r in got["speed"])
        assert "skipped" in md and "pip install torch" in md
    else:
        assert all(r["torch"] > 0 and r["ratio"] > 0 for r in got["speed"])


def test_suggested_group_is_the_smallest_count_within_90_percent_of_the_peak():
    rates = ((2, 10.0), (4, 60.0), (8, 91.0), (16, 100.0), (32, 97.0))
    points = [{"per_device": k, "rate": r} for k, r in rates] + [{"per_device": 64, "stopped": "memory"}]
    assert gpu_check.suggested(points) == {"peak": 100.0, "peak_at": 16, "suggested": 8}
    assert gpu_check.suggested([{"per_device": 2, "stopped": "memory"}])["suggested"] is None


@pytest.mark.parametrize("n, batch, group", [(2, 1024, 4096), (20, 1024, 64), (400, 1024, 8),
                                             (5, 256, 2)])
def test_printed_entries_give_the_suggested_group(n, batch, group, monkeypatch):
    # on a CPU layout.group_size reads GROUP_ENTRIES as an accelerator reads ACCELERATOR_ENTRIES
    shape = train.Shape.of(config.expand(config.resolve(
        {"name": "g", "model": {"n_features": n, "n_hidden": 1}, "train": {"batch": batch}}))[0])
    monkeypatch.setattr(layout, "GROUP_ENTRIES", gpu_check.entries_for(group, batch * n))
    monkeypatch.setattr(layout, "MAX_GROUP", 2 ** 14)
    assert train.group_size(shape) == group
