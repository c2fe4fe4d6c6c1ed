"""The README's commands work as written: every shell command of its ```bash blocks names a Make target, a DVC stage,
a params key or a CLI stage / paper / option that exists (checked without running the long ones), the cheap ones are
run for real, and its Python example runs. The CLI's --help examples are checked the same way."""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def commands() -> list[list[str]]:
    """Each command of the README's bash blocks as argv (comments, env assignments and `&&` chains split off)."""
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            for part in filter(None, (p.strip() for p in line.split("&&"))):
                argv = shlex.split(part)
                while argv and re.match(r"^[A-Z_]+=", argv[0]):
                    argv = argv[1:]
                if argv:
                    out.append(argv)
    return out


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.M))


def dvc_stages() -> set[str]:
    return set(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])


def params_key_exists(key: str) -> bool:
    """A `dvc exp run -S` key: a path params.yaml has (or, with DVC's leading '+', one whose parent exists)."""
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    add = key.startswith("+")
    parts = key.lstrip("+").split(".")
    node = data
    for i, p in enumerate(parts):
        if not isinstance(node, dict) or p not in node:
            return add and i == len(parts) - 1 and isinstance(node, dict)
        node = node[p]
    return not add


def cli_parses(args: list[str]) -> str:
    """'' when `python -m replicate <args>` names a stage, a paper or a command with valid options; else why not."""
    from replicate.cli import COMMANDS
    from replicate.stages import PAPERS, stage_names

    parser = argparse.ArgumentParser(exit_on_error=False, add_help=False)
    parser.add_argument("command")
    parser.add_argument("rest", nargs="*")
    for flag in ("--profile", "--prior"):
        parser.add_argument(flag)
    for flag in ("--check", "--debug", "--help"):
        parser.add_argument(flag, action="store_true")
    try:
        ns = parser.parse_args(args)
    except (argparse.ArgumentError, SystemExit) as e:
        return f"options do not parse: {e}"
    name = "_".join([ns.command, *ns.rest])
    if ns.command in COMMANDS or name in PAPERS or name in stage_names():
        return ""
    return f"{name!r} is no stage, paper or command"


def test_every_readme_command_names_what_exists():
    problems, seen = [], 0
    for argv in commands():
        tool = Path(argv[0]).name
        seen += 1
        if tool == "make":
            if argv[1] not in make_targets():
                problems.append(f"make {argv[1]}: no such target")
        elif tool == "dvc" and argv[1] == "repro":
            targets = [a for a in argv[2:] if not a.startswith("-")]
            problems += [f"dvc repro {t}: no such stage" for t in targets if t not in dvc_stages()]
        elif tool == "dvc" and argv[1:3] == ["exp", "run"]:
            keys = [argv[i + 1].split("=")[0] for i, a in enumerate(argv) if a == "-S"]
            problems += [f"dvc exp run -S {k}: params.yaml has no such key" for k in keys
                         if k not in ("profile", "prior") and not params_key_exists(k)]
        elif tool.startswith("python") and argv[1:3] == ["-m", "replicate"]:
            why = cli_parses(argv[3:])
            if why:
                problems.append(f"{' '.join(argv)}: {why}")
        elif tool.startswith("python") and argv[1] == "-m":
            if not (REPO / Path(*argv[2].split("."))).with_suffix(".py").exists():
                problems.append(f"{' '.join(argv)}: no module {argv[2]}")
        elif tool in ("dvc", "conda"):
            pass   # dvc exp show / metrics / plots: DVC's own commands
        else:
            problems.append(f"unchecked command in the README: {' '.join(argv)}")
    assert seen >= 10
    assert not problems, "\n".join(problems)


def test_cli_help_examples_name_what_exists():
    import replicate.cli as cli

    examples = [line.split("#")[0].split("python -m replicate", 1)[1].split()
                for line in cli.__doc__.splitlines() if line.strip().startswith("python -m replicate")]
    assert len(examples) >= 5
    problems = [f"{' '.join(e)}: {why}" for e in examples if (why := cli_parses(e))]
    assert not problems, "\n".join(problems)


def run(args, **kw):
    return subprocess.run([sys.executable, "-m", "replicate", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, **kw)


def test_the_cheap_commands_run_as_written():
    listed = run(["list"])
    assert listed.returncode == 0 and "mohan2020_generalization" in listed.stdout
    helped = run(["--help"])
    assert helped.returncode == 0 and "python -m replicate list" in helped.stdout
    assert run(["dvc-yaml", "--check"]).returncode == 0


@pytest.mark.slow
def test_the_readme_python_example_runs():
    (example,) = [b for b in blocks("python") if "methods.run(" in b]
    model = REPO / "data" / "models" / "mini" / "mohan2020" / "universal_color.pt"
    assert model.exists(), f"{model.relative_to(REPO)} is committed with the mini results; it is missing here"
    done = subprocess.run([sys.executable, "-c", example], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "torch.Size([1, 3, 64, 64]) 50" in done.stdout


def test_dvc_exp_run_set_rewrites_params_without_changing_them(tmp_path):
    """`dvc exp run -S key=value` rewrites params.yaml with DVC's own YAML writer (it reflows flow mappings and
    drops quotes): the rewritten file must still parse to the same parameters, or every `-S` run fails."""
    from dvc.utils.serialize import modify_yaml

    target = tmp_path / "params.yaml"
    target.write_text((REPO / "params.yaml").read_text())
    expected = yaml.safe_load(target.read_text())
    with modify_yaml(str(target)) as data:
        data["profile"] = "dryrun"
    expected["profile"] = "dryrun"
    assert yaml.safe_load(target.read_text()) == expected
