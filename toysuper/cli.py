"""The `toysuper` command: run, plot, upgrade, list, report. Parses arguments and calls the library."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

USAGE_ERROR = 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="toysuper", description=__doc__.split(":")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="train an experiment, store its results and draw its figures")
    p.add_argument("experiment", help="an experiment file, or the name of one in experiments/")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set train.steps=2000 (repeatable)")
    p.add_argument("--out", help="results directory (default: results/<experiment name>)")
    p.add_argument("--force", action="store_true",
                   help="replace results of a different configuration in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--plan", action="store_true",
                   help="train nothing: print models, chunks, estimated memory and time")
    p.add_argument("--no-probe", action="store_true",
                   help="with --plan: skip the timing probe (compiles and runs one segment)")

    p = sub.add_parser("plot", help="redraw the figures of a results directory without training")
    p.add_argument("results", help="a results directory written by `toysuper run`")
    p.add_argument("--figure", action="append", help="draw only this figure (repeatable)")

    p = sub.add_parser("upgrade", help="rewrite a results directory from an older toysuper in "
                                         "the current schema")
    p.add_argument("results", help="a results directory written by `toysuper run`")

    p = sub.add_parser("list", help="list the experiments with one-line descriptions")
    p.add_argument("folder", nargs="?", help="folder of experiment files (default: experiments/)")

    p = sub.add_parser("report", help="write a static HTML site of a folder of results "
                                        "(opens offline from file://)")
    p.add_argument("results", nargs="?", default="results",
                   help="a folder of results directories, or one (default: results/)")
    p.add_argument("--out", default="report",
                   help="folder for the site, replaced whole if it holds an earlier report "
                        "(default: report/)")

    args = parser.parse_args(argv)
    # imported after parsing, so that --help answers without starting JAX
    from toysuper import layout
    from toysuper.errors import ConfigError

    layout.use_all_cpu_cores()

    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        print(f"toysuper: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("toysuper: interrupted; finished chunks are kept, run again to resume",
              file=sys.stderr)
        return 130


def _run(args) -> int:
    from toysuper import engine, hosts
    from toysuper.errors import OutputsError, TrainingError

    if args.plan:
        print(engine.describe_plan(args.experiment, args.overrides, out=args.out,
                                   probe=not args.no_probe))
        return 0
    try:
        res = engine.run(args.experiment, args.overrides, out=args.out, force=args.force,
                         progress=not args.quiet)
    except TrainingError as e:
        done = isinstance(e, OutputsError)  # trained and stored; only drawing failed
        print(f"toysuper: {'' if done else 'training failed: '}{e}", file=sys.stderr)
        return 1
    except OSError as e:  # the disk filled up or turned read-only mid-run
        where = f" {e.filename}" if e.filename else ""
        print(f"toysuper: training stopped: cannot write{where} ({e.strerror or e}); finished "
              f"chunks are kept: free the disk and run again to resume", file=sys.stderr)
        return 1
    except hosts.LOST as e:
        if hosts.count() == 1:
            raise
        # a collective failed: another process of a multi-host run died or was cut off
        print(f"toysuper: {hosts.lost_message(e)}", file=sys.stderr)
        hosts.abandon(1)
    if res is None:  # a multi-host run's other processes: process 0 writes and reports
        print(f"process {hosts.index()} of {hosts.count()}: done; process 0 wrote the results")
        return 0
    from toysuper import claims, engine, family, tables

    fam = family.of(res.config)
    print(f"{len(engine.members(res))} {fam.noun} -> {res.path}")
    if report := engine.diverged_report(res):
        print(report)
    print(fam.summary(res))
    print(claims.summary(tables.get(res, "claims")))
    for png in sorted((res.path / "figures").glob("*.png")):
        print(f"  {png}")
    return 0


def _plot(args) -> int:
    from toysuper import config, family, figures, outputs, store
    from toysuper.errors import ConfigError

    res = store.load(args.results)
    names = args.figure
    for name in names or []:
        if name not in figures.FIGURES:
            raise ConfigError(f"--figure {name!r} is not one of: {', '.join(figures.FIGURES)}")
    sweep = family.of(res.config).prepare(res.config, config.expand(res.config))
    outputs.check(res.config, sweep)
    # tables are computed afresh: their rules may have changed since the run
    for path in outputs.make(res, names):
        print(path)
    return 0


def _upgrade(args) -> int:
    from toysuper import store, upgrade

    found = store.upgrade(args.results)
    print(f"{args.results}: results schema {found} -> {upgrade.SCHEMA}" if found < upgrade.SCHEMA
          else f"{args.results}: already at results schema {found}")
    return 0


def _list(args) -> int:
    from toysuper import experiments
    from toysuper.errors import ConfigError

    folders = [Path(args.folder)] if args.folder else experiments.dirs()
    files = sorted({f.name: f for d in folders for f in d.glob("*.toml")}.values())
    if args.folder and not Path(args.folder).is_dir():
        raise ConfigError(f"folder '{args.folder}' does not exist")
    if not files:
        raise ConfigError(f"no experiment files (*.toml) in {', '.join(map(str, folders)) or 'experiments/'}")
    width = max(len(f.stem) for f in files)
    for f in files:
        try:
            description = tomllib.loads(f.read_text()).get("description", "")
        except tomllib.TOMLDecodeError:
            description = "(not valid TOML)"
        print(f"{f.stem:<{width}}  {description}")
    return 0


def _report(args) -> int:
    from toysuper import report

    index, skipped = report.build(args.results, args.out)
    for line in skipped:  # listed on the index too
        print(f"toysuper: left out {line}", file=sys.stderr)
    print(f"report -> {index}")
    return 0


COMMANDS = {"run": _run, "plot": _plot, "upgrade": _upgrade, "list": _list, "report": _report}

if __name__ == "__main__":
    sys.exit(main())
