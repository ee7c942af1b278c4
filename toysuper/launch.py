"""One process of a multi-host run: `python -m toysuper.launch [OPTIONS] run EXPERIMENT [...]`.

Every host starts the same command with its own --process-id; each joins the others through
`jax.distributed.initialize` and then runs `toysuper run` with the arguments after the options.
All processes train every chunk together and process 0 alone writes the results (hosts.py).

  python -m toysuper.launch --coordinator host0:1234 --processes 2 --process-id 0 run intro
  python -m toysuper.launch --coordinator host0:1234 --processes 2 --process-id 1 run intro

Under SLURM (srun) or on Cloud TPU leave out --coordinator, --processes and --process-id: JAX
reads them from the cluster. A process that dies stops the others within about
--heartbeat-timeout seconds, and a process left waiting for the others to join gives up after
--join-timeout; the finished chunks are kept, so starting every process again resumes the run.

The command runs the training in a child process and watches it. When another process dies,
JAX's distributed service ends this one with a fatal C++ log (SIGABRT), which no Python code in
it can catch; the watcher then says in one line what happened and what to do, and exits 1.
That line is the last: JAX's C++ log of the death (ERROR lines, a FATAL line, a stack trace) is
not shown unless TF_CPP_MIN_LOG_LEVEL is set to another level than JAX's default 1 (0 shows
all). The "[Gloo] Rank N is connected to M peer ranks" lines on stdout as processes join are
gloo's, printed at any log level; they say nothing is wrong.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import traceback

import jax

from toysuper import cli, hosts, layout

USAGE_ERROR = 2
# A process that stops answering is declared dead after this many seconds without a heartbeat
# (JAX's default is 100 s). Long enough for a loaded host, short enough that the survivors of a
# crash do not hold their devices idle for minutes.
HEARTBEAT_S = 60
JOIN_S = 300  # how long process 0 waits for the others to start (JAX's default)
# set in the child that trains, so that it trains instead of watching
WORKER = "TOYSUPER_LAUNCH_WORKER"
# what JAX's client logs when its distributed service found another process dead
LOST_TEXT = b"distributed service detected fatal errors"
JOIN_TEXT = b"RegisterTask"  # ... with the RPC that failed: joining


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m toysuper.launch",
        description="start one process of a multi-host `toysuper run` (jax.distributed)")
    p.add_argument("--coordinator", metavar="HOST:PORT",
                   help="address of process 0, the same on every host (omit on SLURM or Cloud TPU)")
    p.add_argument("--processes", type=int, metavar="N", help="how many processes in all")
    p.add_argument("--process-id", type=int, metavar="I", help="this process: 0 .. N-1")
    p.add_argument("--join-timeout", type=int, default=JOIN_S, metavar="S",
                   help=f"seconds to wait for every process to join (default {JOIN_S})")
    p.add_argument("--heartbeat-timeout", type=int, default=HEARTBEAT_S, metavar="S",
                   help=f"seconds of silence after which a process counts as dead and every "
                        f"other one stops (default {HEARTBEAT_S})")
    p.add_argument("command", nargs=argparse.REMAINDER,
                   help="`run EXPERIMENT [--set KEY=VALUE ...] [--out DIR] ...`, as for toysuper")
    return p


def _check(args) -> str | None:
    """What is wrong with the launch options, in one line, or None."""
    given = [args.coordinator, args.processes, args.process_id]
    if any(v is not None for v in given) and any(v is None for v in given):
        return ("--coordinator, --processes and --process-id go together (or none of them, "
                "for JAX to read them from SLURM or Cloud TPU)")
    if args.coordinator is not None and not re.fullmatch(r"\S+:\d{1,5}", args.coordinator):
        return f"--coordinator = {args.coordinator!r} must be HOST:PORT, e.g. host0:1234"
    if args.processes is not None and args.processes < 1:
        return f"--processes = {args.processes} must be a positive integer"
    if args.process_id is not None and not 0 <= args.process_id < args.processes:
        return f"--process-id = {args.process_id} must be one of 0 .. {args.processes - 1}"
    for name in ("join_timeout", "heartbeat_timeout"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} = {getattr(args, name)} must be a positive integer"
    if not args.command or args.command[0] != "run":
        return (f"the command after the options must be `run EXPERIMENT ...` "
                f"(got {' '.join(args.command) or 'nothing'!r})")
    return None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if problem := _check(args):
        print(f"toysuper.launch: error: {problem}", file=sys.stderr)
        return USAGE_ERROR
    if os.environ.get(WORKER):
        return _work(args)
    return _watch(args, argv)


def _watch(args, argv) -> int:
    """Run this command again as a child that trains; pass its output on; explain its death."""
    # As a run dies, JAX's C++ runtime logs ERROR lines (none at level 3), then a FATAL line and
    # a stack trace (held back by _Passer), unless the user chose a level: 1 is what importing
    # jax sets when none is chosen, so TF_CPP_MIN_LOG_LEVEL=0 shows everything
    quiet = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "1") == "1"
    env = {**os.environ, WORKER: "1", **({"TF_CPP_MIN_LOG_LEVEL": "3"} if quiet else {})}
    child = subprocess.Popen([sys.executable, "-m", "toysuper.launch", *argv], env=env,
                             stderr=subprocess.PIPE)
    # Ctrl-C reaches the child through the terminal (same process group); a TERM sent to this
    # process alone (kill, a scheduler) is passed on, so the child stops as it would have
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda sig, frame: child.send_signal(sig))
    tail, out = b"", _Passer(hold=quiet)
    while chunk := os.read(child.stderr.fileno(), 1 << 16):  # raw: tqdm redraws with \r
        out.pass_on(chunk)
        tail = (tail + chunk)[-(1 << 16):]
    code = child.wait()
    # the C++ abort that a death we explain below ends in (a FATAL line, a stack trace) is not
    # shown: the line below says what happened
    out.end(show_held=code >= 0 or LOST_TEXT not in tail)
    if code >= 0:  # it ended by itself, and said why if it failed
        return code
    me = (f"process {args.process_id} of {args.processes}" if args.process_id is not None
          else "this process")
    if LOST_TEXT in tail and JOIN_TEXT in tail:
        why = (f"not every process joined within --join-timeout = {args.join_timeout} s (are "
               f"all started, with the same --coordinator and --processes?)")
    elif LOST_TEXT in tail:
        why = (f"another process of this run died or stopped answering for --heartbeat-timeout "
               f"= {args.heartbeat_timeout} s (see its log)")
    else:
        why = f"ended by signal {signal.Signals(-code).name}"
    out.line_end()
    print(f"toysuper.launch: {me} stopped: {why}; finished chunks are kept: start every "
          f"process again to resume", file=sys.stderr)
    return 1


class _Passer:
    """Passes the child's stderr on as it comes, except, with `hold`, what follows the header of
    a FATAL log line of JAX's C++ runtime ("F1203 17:41:26.037105  27434 client.h:80] ..."):
    that is held until the child ends, and shown (end) unless the watcher explains the death."""

    FATAL = re.compile(rb"F\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ ")

    def __init__(self, hold: bool):
        self.hold, self.held, self.wait, self.last = hold, None, b"", b"\n"

    def pass_on(self, chunk: bytes) -> None:
        if self.held is not None:
            self.held += chunk
            return
        if not self.hold:
            return self._write(chunk)
        text, self.wait = self.wait + chunk, b""
        if m := self.FATAL.search(text):
            text, self.held = text[:m.start()], text[m.start():]
        elif (f := text.rfind(b"F", max(0, len(text) - 40))) >= 0 and re.fullmatch(
                rb"F[\d :.]*", text[f:]):  # perhaps a FATAL header cut between two chunks
            text, self.wait = text[:f], text[f:]
        self._write(text)

    def end(self, show_held: bool) -> None:
        self._write(self.wait + (self.held or b"") if show_held else self.wait)

    def line_end(self) -> None:
        if self.last != b"\n":  # a progress bar's line, cut off: the watcher's line starts anew
            self._write(b"\n")

    def _write(self, data: bytes) -> None:
        if data:
            sys.stderr.buffer.write(data)
            sys.stderr.buffer.flush()
            self.last = data[-1:]


def _work(args) -> int:
    """Join the other processes and run the toysuper command."""
    layout.use_all_cpu_cores()  # before JAX starts, as the toysuper command does
    # CPU devices of different processes exchange arrays through gloo (JAX 0.10's default;
    # older versions had no CPU collectives unless asked)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            args.coordinator, args.processes, args.process_id,
            initialization_timeout=args.join_timeout,
            heartbeat_timeout_seconds=args.heartbeat_timeout)
    except ValueError as e:  # no options and no cluster to read them from
        print(f"toysuper.launch: error: no cluster found to read the processes from ({e}); give "
              f"--coordinator, --processes and --process-id, or run under SLURM (srun) or on "
              f"Cloud TPU", file=sys.stderr)
        return USAGE_ERROR
    try:
        code = cli.main(args.command)
    except BaseException:
        if jax.process_count() == 1:
            raise
        traceback.print_exc()
        hosts.abandon(1)  # failed alone (a bug): the others are waiting in a collective
    # 0, and the errors every process meets together (a refused directory: 2, a diverged model
    # under run.on_diverge = "stop": 1), end through JAX's shutdown barrier, which all reach;
    # an interrupted process (130) is alone, and leaves without it
    if code not in (0, 1, 2) and jax.process_count() > 1:
        hosts.abandon(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
