"""Command line: `python -m replicate <stage>` runs one pipeline stage; stage names are dvc.yaml's.

    python -m replicate list                          # every stage, in pipeline order, with what it does
    python -m replicate mohan2020_generalization      # one stage, profile from params.yaml
    python -m replicate kadkhodaie2021                # every stage of one paper, then its report
    python -m replicate mohan2020_models --profile smoke   # (or REPLICATE_PROFILE=smoke)
    python -m replicate kadkhodaie2021 --prior mypriors:nlm   # another prior (REPLICATE_PRIOR); results go to
                                                      # results/<profile>-prior-mypriors-nlm/, marked analogue
    python -m replicate dvc-yaml [--check]            # regenerate dvc.yaml from the stage declarations
    python -m replicate check                         # stale or edited results of any committed profile -> exit 1
    python -m replicate check-repro [--profile mini]  # recompute a seeded sample of committed rows and compare
    python -m replicate dryrun [--workers 2]          # every paper-profile stage, tiny, on stand-in files

Expected errors (unknown profile or stage, a missing or corrupt file, a bad parameter) print one or two lines and
exit 2; `--debug` or REPLICATE_DEBUG=1 shows the traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

COMMANDS = ("list", "dvc-yaml", "check", "check-repro", "dryrun")


def _expected_errors() -> tuple[type[BaseException], ...]:
    from replicate.assets.registry import AssetError
    from replicate.denoisers.priors import PriorError
    from replicate.params import ParamsError
    from replicate.pipeline.stage import UnknownStage

    return (ParamsError, AssetError, FileNotFoundError, UnknownStage, PriorError)


def _list() -> int:
    from replicate.stages import all_stages

    for s in all_stages():
        print(f"{s.name:34s} {s.about}")
    return 0


def _dvc_yaml(check: bool) -> int:
    from pathlib import Path

    from replicate.pipeline.dvcgen import render
    from replicate.stages import all_stages

    path = Path("dvc.yaml")
    text = render(all_stages())
    if check:
        if not path.exists() or path.read_text() != text:
            print("dvc.yaml differs from the stage declarations: run `python -m replicate dvc-yaml`", file=sys.stderr)
            return 1
        print("dvc.yaml matches the stage declarations")
        return 0
    from replicate.io import write_text

    write_text(path, text)
    print(f"wrote {path} ({text.count('    cmd:')} stages)")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("check", "check-repro", "dryrun"):  # these parse their own arguments
        from replicate import dryrun
        from replicate.pipeline import check, rerun
        from replicate.stages import all_stages

        command = {"check": check.main, "check-repro": rerun.main, "dryrun": dryrun.main}[argv[0]]
        return command(argv[1:], all_stages())
    parser = argparse.ArgumentParser(prog="replicate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", help="a stage name (see `list`) or one of: " + ", ".join(COMMANDS))
    parser.add_argument("rest", nargs="*", help="`<paper> <stage>` is accepted for `<paper>_<stage>`")
    parser.add_argument("--check", action="store_true", help="dvc-yaml: only compare, do not write")
    parser.add_argument("--profile", help="mini | smoke | paper | dryrun (default: params.yaml's; REPLICATE_PROFILE)")
    parser.add_argument("--prior", help="a prior name or 'package.module:factory' in place of the papers' learned "
                                        "prior (REPLICATE_PRIOR; see replicate/denoisers/priors.py)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    if args.profile:
        os.environ["REPLICATE_PROFILE"] = args.profile
    if args.prior:
        os.environ["REPLICATE_PRIOR"] = args.prior
    debug = args.debug or os.environ.get("REPLICATE_DEBUG", "") not in ("", "0")
    try:
        if args.command == "list":
            return _list()
        if args.command == "dvc-yaml":
            return _dvc_yaml(args.check)
        name = args.command if not args.rest else "_".join([args.command, *args.rest])  # `<paper> <stage>` also works
        from replicate.pipeline.run import main_for
        from replicate.stages import PAPERS, get, paper_stages

        if name in PAPERS:   # a whole paper: its stages in pipeline order, then its report
            for stage in paper_stages(name):
                main_for(stage)
            return 0
        return main_for(get(name))
    except _expected_errors() as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        print("(run with --debug or REPLICATE_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
