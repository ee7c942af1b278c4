"""Scale: models split over several devices, a run stopped part-way, planning a huge sweep.

Subprocesses give each check the JAX it needs: XLA_FLAGS must be set before JAX starts, and
a run is stopped with a real signal, not a simulated exception.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np

import toysuper
from toysuper import cli, config, plan

# 12 models of 20 features at batch 1024: groups of 8 (train.group_size), so 4 devices split
# a chunk of 32, and run.chunk_size = 8 makes 2 chunks on one device.
SWEEP = """
name = "scale"
description = "a small sweep for the scale tests"
figures = []
[model]
n_features = 20
n_hidden = 5
[train]
steps = {steps}
batch = 1024
log_every = 50
eval_batch = 2048
[run]
chunk_size = {chunk}
[sweep]
"data.density" = {{logspace = [1, 0.02], num = 6}}
"train.seed" = [0, 1]
"""


def write(tmp_path, steps=100, chunk=4096):
    path = tmp_path / f"scale_{steps}_{chunk}.toml"
    path.write_text(SWEEP.format(steps=steps, chunk=chunk))
    return path


def toysuper_cmd(*args, devices=None):
    env = dict(os.environ)
    env.pop("JAX_NUM_CPU_DEVICES", None)
    if devices:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return [sys.executable, "-m", "toysuper.cli", *map(str, args)], env


def test_four_devices_give_the_results_of_one(tmp_path):
    exp = write(tmp_path)
    cmd, env = toysuper_cmd("run", exp, "--out", tmp_path / "four", "--quiet", devices=4)
    probe = subprocess.run([sys.executable, "-c", "import jax; print(jax.device_count())"],
                           env=env, capture_output=True, text=True)
    assert probe.stdout.strip() == "4"
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    four = toysuper.load(tmp_path / "four")
    one = toysuper.run(exp, out=tmp_path / "one", progress=False)  # this process: 1 device
    np.testing.assert_array_equal(four.weights["W"], one.weights["W"])
    np.testing.assert_array_equal(four.models["loss"], one.models["loss"])
    np.testing.assert_array_equal(four.history["loss"], one.history["loss"])


def test_a_run_killed_part_way_resumes_to_the_uninterrupted_result(tmp_path):
    # 2 chunks of 8 models, each long enough to catch the run between them
    exp = write(tmp_path, steps=6000, chunk=8)
    out = tmp_path / "killed"
    cmd, env = toysuper_cmd("run", exp, "--out", out, "--quiet", devices=1)
    # A shell runs a background job with Ctrl-C ignored, and a child inherits that: tests started
    # that way (`bash .ci/run &`) would send a SIGINT the run never sees. The child restores the
    # default first, then becomes the toysuper command.
    reset = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
             "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
    proc = subprocess.Popen([cmd[0], "-c", reset, *cmd[1:]], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = out / "parts" / "chunk-00000.npz"
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C while the second chunk trains
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert sorted(p.name for p in (out / "parts").iterdir()) == ["chunk-00000.npz"]
    assert not (out / "summary.json").exists()

    resumed = toysuper.run(exp, out=out, progress=False)
    assert resumed.path == out and (out / "summary.json").exists()
    fresh = toysuper.run(exp, out=tmp_path / "fresh", progress=False)
    np.testing.assert_array_equal(resumed.weights["W"], fresh.weights["W"])
    np.testing.assert_array_equal(resumed.models["loss"], fresh.models["loss"])


def test_a_million_model_sweep_is_planned_in_bounded_device_memory(tmp_path, capsys):
    exp = tmp_path / "million.toml"
    exp.write_text(MILLION)
    assert cli.main(["run", str(exp), "--plan", "--out", str(tmp_path / "m")]) == 0
    text = capsys.readouterr().out
    assert "1000000 models in 245 chunks" in text  # 4096 models per chunk
    device_mb = int(text.split("~")[1].split(" MB")[0])
    assert device_mb < 100
    assert "estimated time" in text
    assert not (tmp_path / "m").exists()  # planning writes nothing


def test_memory_budget_shrinks_chunks_and_names_the_key_when_too_small(tmp_path, capsys):
    exp = write(tmp_path)
    code = cli.main(["run", str(exp), "--plan", "--set", "run.memory_gb=0.00001"])
    assert code == 2
    assert "run.memory_gb = 1e-05 is too small" in capsys.readouterr().err
    cfg = config.load(exp)
    settings = config.expand(cfg)
    (whole,) = plan.chunks(settings, 4096)
    per_model, in_flight = toysuper.train.memory(whole.shape)
    budget = (in_flight + 8 * per_model) / 2**30  # room for 8 models: one group
    assert [c.width for c in plan.chunks(settings, 4096, budget)] == [8, 8]


MILLION = """
name = "million"
description = "a million n=2, m=1 models: a 1000 x 1000 grid of density and importance"
[model]
n_features = 2
n_hidden = 1
[train]
steps = 100
log_every = 50
batch = 256
eval_batch = 1024
[sweep]
"data.density" = {logspace = [1, 0.01], num = 1000}
"data.importance[1]" = {logspace = [0.1, 10], num = 1000}
"""
