"""Command line: `python -m replicate <paper> <stage>` runs one pipeline stage (what dvc.yaml calls).

    python -m replicate list                       # every paper and stage
    python -m replicate mohan2020 generalization   # one stage, active profile from params.yaml
    REPLICATE_PROFILE=smoke python -m replicate mohan2020 train

Each experiment module exposes STAGES: dict[name, callable(params) -> None].
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time

PAPERS = {
    "foundation": "replicate.experiments.foundation",
    "mohan2020": "replicate.experiments.mohan2020",
    "kadkhodaie2021": "replicate.experiments.kadkhodaie2021",
    "kawar2021": "replicate.experiments.kawar2021",
    "chung2023": "replicate.experiments.chung2023",
    "xie2023": "replicate.experiments.xie2023",
    "elad_lecture": "replicate.experiments.elad_lecture",
    "report": "replicate.report.build",
}


def stages(paper: str) -> dict:
    if paper not in PAPERS:
        raise SystemExit(f"unknown paper {paper!r}; choose one of: {', '.join(PAPERS)}")
    return importlib.import_module(PAPERS[paper]).STAGES


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="replicate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paper", help="paper id (or 'list')")
    parser.add_argument("stage", nargs="?", help="stage name")
    args = parser.parse_args(argv)
    if args.paper == "list":
        for paper in PAPERS:
            try:
                print(f"{paper}: {', '.join(stages(paper))}")
            except ModuleNotFoundError as exc:
                print(f"{paper}: not implemented yet ({exc.name})")
        return 0
    table = stages(args.paper)
    if args.stage not in table:
        raise SystemExit(f"unknown stage {args.stage!r} for {args.paper}; choose one of: {', '.join(table)}")
    from replicate import params as P
    from replicate.runtime import setup

    section = "report" if args.paper == "report" else args.paper
    prm = P.load(section)
    setup(prm)
    start = time.perf_counter()
    print(f"[replicate] {args.paper}.{args.stage} (profile {prm['profile']}, seed {prm['seed']})", file=sys.stderr)
    table[args.stage](prm)
    print(f"[replicate] {args.paper}.{args.stage} done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
