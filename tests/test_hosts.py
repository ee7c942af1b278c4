"""Many hosts, tested as several processes on 127.0.0.1 (two CPU devices each, gloo collectives).

Each test starts the processes with the README's own launch commands (read from README.md, so
the documented commands are the tested ones), each under a deadline after which its whole
process group is killed: a test can fail, never hang.
"""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import toysuper
from toysuper import launch

README = Path(__file__).parents[1] / "README.md"
# Two shapes (n_hidden 1 and 2) make two chunks of 3 models, so a run can stop between them.
EXPERIMENT = """
name = "hosts"
description = "a small sweep for the multi-host tests"
figures = []
[model]
n_features = 5
[data]
importance = {decay = 0.9}
[train]
steps = 200
batch = 256
log_every = 50
eval_batch = 1024
lr = 3e-3
[sweep]
"data.density" = [1.0, 0.3, 0.1]
"model.n_hidden" = [1, 2]
"""
DEADLINE_S = 300  # for every process of one launch together


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    path = tmp_path_factory.mktemp("hosts") / "hosts.toml"
    path.write_text(EXPERIMENT)
    return path


@pytest.fixture(scope="module")
def one_process(experiment, tmp_path_factory):
    """The same sweep trained here, in one process on one device."""
    return toysuper.run(experiment, out=tmp_path_factory.mktemp("one") / "r", progress=False)


def readme_commands(prefix: str) -> list[list[str]]:
    """The README's command lines that start with `prefix`, split into arguments."""
    lines = [line.strip() for line in README.read_text().splitlines()]
    return [shlex.split(line.split("#")[0]) for line in lines if line.startswith(prefix)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def commands(n: int, experiment: Path, out: Path, heartbeat=None) -> list[list[str]]:
    """The README's two launch commands, for n processes on this machine, writing to `out`."""
    shown = readme_commands("python -m toysuper.launch --coordinator")
    assert len(shown) == 2 and [c[c.index("--process-id") + 1] for c in shown] == ["0", "1"]
    port, cmds = free_port(), []
    for i in range(n):
        cmd = [sys.executable if a == "python" else a for a in shown[0]]
        cmd[cmd.index("--coordinator") + 1] = f"127.0.0.1:{port}"
        cmd[cmd.index("--processes") + 1] = str(n)
        cmd[cmd.index("--process-id") + 1] = str(i)
        cmd[-1] = str(experiment)  # the README's experiment file is the last argument
        if heartbeat:
            cmd[cmd.index("run"):cmd.index("run")] = ["--heartbeat-timeout", str(heartbeat)]
        cmds.append(cmd + ["--out", str(out), "--quiet"])
    return cmds


def environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PYTHONPATH")}
    env["JAX_NUM_CPU_DEVICES"] = "2"
    return {**env, **extra}


def start(cmds, logs: Path, envs) -> list[subprocess.Popen]:
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for i, (cmd, env) in enumerate(zip(cmds, envs)):
        with open(logs / f"{i}.out", "w") as out, open(logs / f"{i}.err", "w") as err:
            # a session of its own: the deadline kills the launcher and the child it trains in
            procs.append(subprocess.Popen(cmd, env=env, stdout=out, stderr=err,
                                          start_new_session=True))
    return procs


def finish(procs, logs: Path, deadline_s=DEADLINE_S) -> list[dict]:
    """Wait for every process (killing all at the deadline); each one's code, output, end time."""
    ends, t0 = {}, time.time()
    try:
        while len(ends) < len(procs) and time.time() - t0 < deadline_s:
            for i, p in enumerate(procs):
                if i not in ends and p.poll() is not None:
                    ends[i] = time.time()
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    assert len(ends) == len(procs), f"processes still running after {deadline_s} s: killed"
    return [{"code": p.returncode, "end": ends[i], "out": (logs / f"{i}.out").read_text(),
             "err": (logs / f"{i}.err").read_text()} for i, p in enumerate(procs)]


def run_processes(cmds, logs, env=None, deadline_s=DEADLINE_S) -> list[dict]:
    return finish(start(cmds, logs, [env or environment()] * len(cmds)), logs, deadline_s)


def assert_same_models(res, reference):
    np.testing.assert_array_equal(res.weights["W"], reference.weights["W"])
    np.testing.assert_array_equal(res.weights["b"], reference.weights["b"])
    np.testing.assert_array_equal(res.models["loss"], reference.models["loss"])
    np.testing.assert_array_equal(res.history["loss"], reference.history["loss"])


@pytest.mark.parametrize("n", [2, 3])
def test_processes_train_the_models_of_one_process(n, experiment, one_process, tmp_path):
    out = tmp_path / "r"
    ran = run_processes(commands(n, experiment, out), tmp_path / "logs")
    for i, r in enumerate(ran):
        assert r["code"] == 0, r["err"][-3000:]
        if i:
            assert f"process {i} of {n}: done" in r["out"]
    assert f"6 models -> {out}" in ran[0]["out"]
    assert_same_models(toysuper.load(out), one_process)
    assert not (out / "run.lock").exists()


INJECT = """
# Test only: the training child of this process dies (as if killed) at its DIE_AT-th gather of
# arrays from the devices; each chunk of the sweep gathers 6 times (4 losses, weights, final).
import os
if os.environ.get("DIE_AT") and os.environ.get("TOYSUPER_LAUNCH_WORKER"):
    from toysuper import train
    real, calls = train.to_host, [0]
    def to_host(tree):
        calls[0] += 1
        if calls[0] == int(os.environ["DIE_AT"]):
            os._exit(9)
        return real(tree)
    train.to_host = to_host
"""


def test_a_process_dying_mid_run_stops_the_others_and_the_run_resumes(experiment, one_process,
                                                                         tmp_path):
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(INJECT)
    out, heartbeat = tmp_path / "r", 10
    cmds = commands(2, experiment, out, heartbeat=heartbeat)
    envs = [environment(), environment(PYTHONPATH=str(inject), DIE_AT="8")]  # in chunk 2
    first, dying = finish(start(cmds, tmp_path / "logs", envs), tmp_path / "logs")
    assert dying["code"] == 9, dying["err"][-3000:]
    assert first["code"] == 1, first["err"][-3000:]
    # said by JAX's collective (gloo: connection reset) or, when it waits on, by the watcher
    # after JAX's distributed service ends the process for the missed heartbeats
    last = first["err"].strip().splitlines()[-1]
    assert "process 0 of 2 stopped: another process of this run died" in last, last
    assert last.endswith("start every process again to resume"), last
    # JAX declares the silent process dead after the heartbeat timeout; then process 0 stops
    assert first["end"] - dying["end"] < heartbeat + 30
    assert [p.name for p in (out / "parts").iterdir()] == ["chunk-00000.npz"]
    assert not (out / "summary.json").exists()

    # a run.lock left by process 0 when JAX aborted it is stale: its pid is gone
    again = run_processes(commands(2, experiment, out), tmp_path / "again")
    assert [r["code"] for r in again] == [0, 0], again[0]["err"][-3000:]
    res = toysuper.load(out)
    assert json.loads((out / "summary.json").read_text())["trained_chunks"] == 1
    assert_same_models(res, one_process)


def test_a_process_left_alone_gives_up_after_the_join_timeout(experiment, tmp_path):
    cmd = commands(2, experiment, tmp_path / "r")[0]
    cmd[cmd.index("run"):cmd.index("run")] = ["--join-timeout", "3"]
    (alone,) = run_processes([cmd], tmp_path / "logs", deadline_s=120)
    assert alone["code"] == 1
    assert "process 0 of 2 stopped: not every process joined within --join-timeout = 3 s" in \
        alone["err"].strip().splitlines()[-1]
    assert not (tmp_path / "r" / "parts").exists()  # nothing was trained or written


def test_the_slurm_example_reads_the_processes_from_the_cluster(experiment, one_process,
                                                                tmp_path):
    (srun,) = readme_commands("srun python -m toysuper.launch")
    cmd = [sys.executable if a == "python" else a for a in srun[1:]]
    cmd[-1] = str(experiment)
    out, port = tmp_path / "r", free_port()
    # what srun sets for 2 tasks on one node; JAX picks the coordinator from them
    slurm = dict(SLURM_JOB_ID="4242", SLURM_STEP_NODELIST="127.0.0.1", SLURM_NTASKS="2",
                 SLURM_STEP_NUM_NODES="1", JAX_COORDINATOR_PORT=str(port))
    envs = [environment(**slurm, SLURM_PROCID=str(i), SLURM_LOCALID=str(i)) for i in range(2)]
    cmds = [cmd + ["--out", str(out), "--quiet"]] * 2

    # a live run holds the directory: both processes refuse, before training
    out.mkdir()
    (out / "run.lock").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "started": None}))
    refused = finish(start(cmds, tmp_path / "refused", envs), tmp_path / "refused")
    assert [r["code"] for r in refused] == [2, 2], refused[0]["err"][-3000:]
    assert "is in use by another run" in refused[0]["err"]
    assert "process 0 refused" in refused[1]["err"]
    assert not (out / "parts").exists()

    (out / "run.lock").unlink()
    ran = finish(start(cmds, tmp_path / "logs", envs), tmp_path / "logs")
    assert [r["code"] for r in ran] == [0, 0], ran[0]["err"][-3000:]
    assert_same_models(toysuper.load(out), one_process)


@pytest.mark.parametrize("args, message", [
    (["--processes", "2", "--process-id", "2", "--coordinator", "h:1", "run", "x"],
     "--process-id = 2 must be one of 0 .. 1"),
    (["--processes", "2", "--process-id", "0", "run", "x"],
     "--coordinator, --processes and --process-id go together"),
    (["--coordinator", "host0", "--processes", "2", "--process-id", "0", "run", "x"],
     "--coordinator = 'host0' must be HOST:PORT"),
    (["--coordinator", "h:1", "--processes", "2", "--process-id", "0", "plot", "x"],
     "the command after the options must be `run EXPERIMENT ...`"),
])
def test_bad_launch_options_are_one_line_before_anything_starts(args, message, capsys):
    assert launch.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
