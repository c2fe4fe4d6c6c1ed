"""Mutation testing of the samplers (and, on request, operators/ and noise/): does the test suite notice a one-token
change of the code?

Run from the repository root (relative paths; nothing in the checkout is modified, the mutants live in scratch
copies):

    nice -n 15 .venv/bin/python tests/mutation/run.py                          # replicate/samplers/*.py
    nice -n 15 .venv/bin/python tests/mutation/run.py replicate/noise/measurement.py replicate/operators/orthonormal.py
    .venv/bin/python tests/mutation/run.py --list replicate/samplers/langevin.py   # the mutants, not run
    .venv/bin/python tests/mutation/run.py --only "implicit_prior.py::_coarse_to_fine" --show   # their diffs

Options: --workers N (parallel mutants, default 2), --workdir DIR (scratch copies, default a temporary directory),
--json FILE (every mutant's outcome), --markdown FILE (the score table and the surviving mutants), --tests FILE...
(instead of the default test files of each module, TEST_FILES below).

How it works (a small stand-in for mutmut / cosmic-ray; mutmut 3 skips decorated functions such as the
``@torch.no_grad()`` samplers of annealed_langevin.py, and runs the whole suite to map tests to code):
  1. the modules' test files run once, unmutated, with a line tracer: which test executes which line of each target
     module (and how long each test takes). A baseline failure stops the run.
  2. mutants are generated from the AST, one change each (MUTATORS below): binary operators swapped (+ -, * /,
     ** -> *, // -> /), a term removed (a + b -> a or b, a - b -> a, a * b -> a or b, a / b -> a, a ** b -> a),
     unary minus / not removed, comparisons flipped (< <=, > >=, == !=, in / not in, is / is not), and / or
     swapped, if-conditions negated, augmented assignments swapped (+= -=, *= /=), numbers n -> n + 1, True / False
     swapped, and strings compared against ("x" -> "XXxXX"). Not mutated: docstrings, f-strings, annotations,
     exception messages (the whole ``raise`` statement; the condition guarding it is mutated), lines marked
     ``# pragma: no mutate``.
  3. each mutant is written into a scratch copy of the package and the tests that execute its line run there
     (fastest first, stopping at the first failure) in a forked child of a process that has imported torch once.
     Outcomes: killed (a test failed or errored), timeout (the tests ran past 5x their unmutated time + 20 s:
     counted as killed, e.g. an infinite loop), survived (every covering test passed), uncovered (no test executes
     the line: a survivor, not run). Mutants of code that runs at import time (module constants, signatures'
     default values, class bodies) are tested against all the module's tests.
  4. known equivalent mutants (EQUIVALENT.md beside this file: mutants that cannot change any output, each with
     its reason) are reported apart and left out of the score: score = killed / (generated - equivalent).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

# the test files that cover each module (paths relative to the repository root); a module not listed gets
# DEFAULT_TESTS of its package
TEST_FILES = {
    "replicate/samplers/langevin.py": ["tests/test_update_rules.py", "tests/test_langevin.py"],
    "replicate/samplers/implicit_prior.py": ["tests/test_update_rules.py", "tests/test_implicit_prior.py"],
    "replicate/samplers/diffusion.py": ["tests/test_update_rules.py", "tests/test_diffusion_samplers.py",
                                        "tests/test_dps_fidelity.py"],
    "replicate/samplers/annealed_langevin.py": ["tests/test_update_rules.py", "tests/test_annealed_langevin.py"],
}
DEFAULT_TESTS = {
    "replicate/samplers": ["tests/test_update_rules.py", "tests/test_langevin.py", "tests/test_implicit_prior.py",
                           "tests/test_diffusion_samplers.py", "tests/test_annealed_langevin.py",
                           "tests/test_dps_fidelity.py"],
    "replicate/operators": ["tests/test_operators.py", "tests/test_orthonormal_operators.py",
                            "tests/test_motion_kernels.py", "tests/test_sparse_dct.py", "tests/test_update_rules.py",
                            "tests/test_diffusion_samplers.py", "tests/test_implicit_prior.py"],
    "replicate/noise": ["tests/test_noise.py", "tests/test_xie_noise.py", "tests/test_update_rules.py",
                        "tests/test_dps_fidelity.py", "tests/test_diffusion_samplers.py"],
}
COPY = ["replicate", "tests", "pyproject.toml", "params.yaml"]   # what a scratch copy holds


# ================================================================================================ mutants
@dataclass
class Mutant:
    rel: str            # module path relative to the repository root
    qualname: str       # enclosing function / class ("<module>" at top level)
    lineno: int
    end_lineno: int
    kind: str           # mutator name
    orig: str           # source of the mutated node
    new: str            # its replacement
    line: str           # the (first) source line, stripped, for the report
    import_time: bool   # runs at import (module / class body, default values): all the module's tests
    start: int = 0      # byte span replaced in the module source
    end: int = 0
    key: str = ""       # stable id: rel::qualname: orig -> new [#k]
    outcome: str = ""
    killed_by: str = ""
    seconds: float = 0.0
    tests: list = field(default_factory=list)

    def apply(self, src: bytes) -> bytes:
        return src[: self.start] + self.new.encode() + src[self.end:]


_BINOP_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
               ast.Pow: ast.Mult, ast.Mod: ast.Div}
_CMP_SWAP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
             ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_AUG_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


def _paren(node: ast.AST) -> str:
    return "(" + ast.unparse(node) + ")"


class _Generator(ast.NodeVisitor):
    """Walks a module and records (node, replacement text, kind) for every mutation (module docstring, step 2)."""

    def __init__(self, src: bytes, rel: str):
        self.src, self.rel = src, rel
        self.lines = src.decode().splitlines()
        starts, pos = [], 0
        for ln in src.splitlines(keepends=True):
            starts.append(pos)
            pos += len(ln)
        self.line_start = starts + [pos]
        self.out: list[Mutant] = []
        self.scope: list[str] = []
        self.in_body = 0        # > 0 inside a function body (runs when called), 0 at import time
        self.compared = 0       # > 0 inside a comparison (strings there are mutated)

    # ----------------------------------------------------------------------------------------- plumbing
    def _span(self, node) -> tuple[int, int]:
        return (self.line_start[node.lineno - 1] + node.col_offset,
                self.line_start[node.end_lineno - 1] + node.end_col_offset)

    def _no_mutate(self, node) -> bool:
        return any("pragma: no mutate" in self.lines[i - 1] for i in range(node.lineno, node.end_lineno + 1))

    def add(self, node, new_text: str, kind: str, orig_node=None) -> None:
        if self._no_mutate(node):
            return
        start, end = self._span(node)
        orig = self.src[start:end].decode()
        self.out.append(Mutant(self.rel, ".".join(self.scope) or "<module>", node.lineno, node.end_lineno, kind,
                               orig, new_text, self.lines[node.lineno - 1].strip(), self.in_body == 0,
                               start, end))

    def _docstring(self, body) -> ast.AST | None:
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            return body[0]
        return None

    # ------------------------------------------------------------------------------------ scopes, skips
    def visit_Module(self, node):
        self._body(node.body)

    def _body(self, body):
        doc = self._docstring(body)
        for stmt in body:
            if stmt is not doc:
                self.visit(stmt)

    def visit_FunctionDef(self, node):
        for d in node.decorator_list:
            self.visit(d)
        # defaults are evaluated at import time (in_body unchanged); annotations are skipped
        for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.scope.append(node.name)
            self.visit(d)
            self.scope.pop()
        self.scope.append(node.name)
        self.in_body += 1
        self._body(node.body)
        self.in_body -= 1
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        for d in node.args.defaults:
            self.visit(d)
        self.in_body += 1
        self.visit(node.body)
        self.in_body -= 1

    def visit_ClassDef(self, node):
        for d in node.decorator_list + node.bases:
            self.visit(d)
        self.scope.append(node.name)
        self._body(node.body)
        self.scope.pop()

    def visit_AnnAssign(self, node):      # the annotation is not code
        if node.value is not None:
            self.visit(node.value)

    def visit_Raise(self, node):          # exception type and message: not behaviour under test
        return

    def visit_JoinedStr(self, node):      # f-strings: messages
        return

    def visit_Assert(self, node):
        return

    # ------------------------------------------------------------------------------------------ mutators
    def visit_BinOp(self, node):
        op = type(node.op)
        if op in _BINOP_SWAP:
            self.add(node, _paren(ast.BinOp(node.left, _BINOP_SWAP[op](), node.right)),
                     f"binop {op.__name__}->{_BINOP_SWAP[op].__name__}")
        if op in (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow):
            self.add(node, _paren(node.left), "drop right operand")
        if op in (ast.Add, ast.Mult):
            self.add(node, _paren(node.right), "drop left operand")
        self.generic_visit(node)

    def visit_UnaryOp(self, node):
        if isinstance(node.op, (ast.USub, ast.Not)):
            self.add(node, _paren(node.operand), f"drop unary {type(node.op).__name__}")
        self.generic_visit(node)

    def visit_Compare(self, node):
        for i, op in enumerate(node.ops):
            if type(op) in _CMP_SWAP:
                ops = list(node.ops)
                ops[i] = _CMP_SWAP[type(op)]()
                self.add(node, _paren(ast.Compare(node.left, ops, node.comparators)),
                         f"compare {type(op).__name__}->{type(ops[i]).__name__}")
        self.compared += 1
        self.generic_visit(node)
        self.compared -= 1

    def visit_BoolOp(self, node):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        self.add(node, _paren(ast.BoolOp(other, node.values)), f"boolop {type(node.op).__name__}->"
                                                                f"{type(other).__name__}")
        self.generic_visit(node)

    def _negate_test(self, test):
        if not isinstance(test, (ast.Compare, ast.BoolOp)) and not (isinstance(test, ast.UnaryOp)
                                                                    and isinstance(test.op, ast.Not)):
            self.add(test, _paren(ast.UnaryOp(ast.Not(), test)), "negate condition")

    def visit_If(self, node):
        self._negate_test(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node):
        self._negate_test(node.test)
        self.generic_visit(node)

    def visit_While(self, node):
        self._negate_test(node.test)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        op = type(node.op)
        if op in _AUG_SWAP:
            self.add(node, ast.unparse(ast.AugAssign(node.target, _AUG_SWAP[op](), node.value)),
                     f"augassign {op.__name__}->{_AUG_SWAP[op].__name__}")
        self.generic_visit(node)

    def visit_Constant(self, node):
        v = node.value
        if isinstance(v, bool):
            self.add(node, repr(not v), "bool")
        elif isinstance(v, int):
            self.add(node, repr(v + 1), "number +1")
        elif isinstance(v, float):
            self.add(node, repr(v + 1.0), "number +1")
        elif isinstance(v, str) and self.compared:
            self.add(node, repr("XX" + v + "XX"), "string")


def generate(rel: str) -> list[Mutant]:
    src = (REPO / rel).read_bytes()
    gen = _Generator(src, rel)
    gen.visit(ast.parse(src))
    seen: dict[str, int] = {}
    out = []
    for m in gen.out:
        base = f"{m.rel}::{m.qualname}: {m.orig} -> {m.new}"
        k = seen.get(base, 0)
        seen[base] = k + 1
        m.key = base + (f" #{k + 1}" if k else "")
        try:                                  # a mutant that does not parse is not a mutant
            ast.parse(m.apply(src))
        except SyntaxError:
            continue
        out.append(m)
    return out


# =============================================================================================== equivalents
def load_equivalent() -> dict[str, str]:
    """EQUIVALENT.md: lines "- `key` -- reason" (key as printed by --list)."""
    path = HERE / "EQUIVALENT.md"
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            m = re.match(r"- `(.+)` -- (.+)$", line)
            if m:
                out[m.group(1)] = m.group(2)
    return out


# ============================================================================================ running tests
class _LineTracer:
    """pytest plugin: per test, the lines of the target files it executes, and its duration."""

    def __init__(self, targets: set[str]):
        self.targets = targets
        self.lines: dict[str, set] = {}
        self.seconds: dict[str, float] = {}
        self.failed: list[str] = []
        self._hits: set = set()

    def _trace(self, frame, event, arg):
        fn = frame.f_code.co_filename
        if fn not in self.targets:
            return None
        hits = self._hits
        hits.add((fn, frame.f_lineno))

        def local(frame, event, arg):
            if event == "line":
                hits.add((fn, frame.f_lineno))
            return local
        return local

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self._hits = set()
        sys.settrace(self._trace)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            sys.settrace(None)
        self.seconds[item.nodeid] = time.perf_counter() - t0
        self.lines[item.nodeid] = self._hits

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(report.nodeid)


class _FirstFailure:
    def __init__(self):
        self.failed = ""

    def pytest_runtest_logreport(self, report):
        if report.failed and not self.failed:
            self.failed = report.nodeid


def _child_pytest(copy: Path, args: list[str], plugin, result: Path, payload) -> None:
    """In a forked child: run pytest in the scratch copy, write the result, exit without cleanup."""
    code = 1
    try:
        os.setsid()
        os.chdir(copy)
        sys.path.insert(0, str(copy))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        rc = pytest.main(["-q", "-p", "no:cacheprovider", *args], plugins=[plugin])
        result.write_text(json.dumps(payload(plugin, int(rc))))
        code = 0
    finally:
        os._exit(code)


def make_copy(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                            dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def baseline(copy: Path, rels: list[str], tests: list[str]) -> dict:
    """Run the tests unmutated with the line tracer: {nodeid: (seconds, {rel: [lines]})}."""
    targets = {str((copy / r).resolve()) for r in rels}
    result = copy / "baseline.json"
    pid = os.fork()
    if pid == 0:
        _child_pytest(copy, ["-p", "no:randomly", *tests], _LineTracer(targets), result, lambda p, rc: {
            "rc": rc, "failed": p.failed, "seconds": p.seconds,
            "lines": {k: sorted([os.path.relpath(f, copy), ln] for f, ln in v) for k, v in p.lines.items()}})
    _, status = os.waitpid(pid, 0)
    if not result.exists():
        raise SystemExit(f"baseline test run crashed (status {status})")
    out = json.loads(result.read_text())
    if out["rc"] != 0:
        raise SystemExit(f"the unmutated tests fail ({out['failed'][:5]}): fix them before mutation testing")
    return out


def select_tests(m: Mutant, base: dict, module_tests: list[str]) -> list[str]:
    lines = set(range(m.lineno, m.end_lineno + 1))
    if m.import_time:
        chosen = [t for t in base["seconds"] if any(t.startswith(f + "::") for f in module_tests)]
    else:
        chosen = [t for t, hits in base["lines"].items()
                  if any(r == m.rel and ln in lines for r, ln in hits)
                  and any(t.startswith(f + "::") for f in module_tests)]
    return sorted(chosen, key=lambda t: base["seconds"][t])


def run_mutants(mutants: list[Mutant], base: dict, tests_for: dict, workdir: Path, workers: int,
                log=print) -> None:
    copies = [make_copy(workdir / f"worker{i}") for i in range(workers)]
    originals = {rel: (REPO / rel).read_bytes() for rel in {m.rel for m in mutants}}
    queue = []
    for m in mutants:
        m.tests = select_tests(m, base, tests_for[m.rel])
        if not m.tests:
            m.outcome = "uncovered"
        else:
            queue.append(m)
    free = list(range(workers))
    running: dict[int, tuple] = {}
    done, total, t_start = 0, len(queue), time.time()
    while queue or running:
        while queue and free:
            m = queue.pop(0)
            w = free.pop()
            copy = copies[w]
            (copy / m.rel).write_bytes(m.apply(originals[m.rel]))
            result = copy / "mutant.json"
            if result.exists():
                result.unlink()
            limit = 20.0 + 5.0 * sum(base["seconds"][t] for t in m.tests)
            pid = os.fork()
            if pid == 0:
                _child_pytest(copy, ["-x", "-p", "no:randomly", *m.tests], _FirstFailure(), result,
                              lambda p, rc: {"rc": rc, "failed": p.failed})
            running[pid] = (m, w, time.time(), limit)
        time.sleep(0.05)
        for pid, (m, w, t0, limit) in list(running.items()):
            r, status = os.waitpid(pid, os.WNOHANG)
            if r == 0 and time.time() - t0 > limit:
                try:
                    os.killpg(pid, signal.SIGKILL)      # the child's own process group (os.setsid)
                except ProcessLookupError:
                    pass
                os.waitpid(pid, 0)
                m.outcome, m.killed_by = "timeout", f"> {limit:.0f} s"
            elif r == 0:
                continue
            else:
                res = copies[w] / "mutant.json"
                out = json.loads(res.read_text()) if res.exists() else {"rc": -1, "failed": "crash"}
                if out["rc"] == 0:
                    m.outcome = "survived"
                else:
                    m.outcome, m.killed_by = "killed", out["failed"] or f"pytest exit {out['rc']}"
            m.seconds = time.time() - t0
            (copies[w] / m.rel).write_bytes(originals[m.rel])
            del running[pid]
            free.append(w)
            done += 1
            if done % 25 == 0 or done == total:
                log(f"  {done}/{total} mutants run, {time.time() - t_start:.0f} s")


# ================================================================================================== report
def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre, half = p + z * z / (2 * n), z * ((p * (1 - p) + z * z / (4 * n)) / n) ** 0.5
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def sample_note(mutants: list[Mutant], equivalent: dict[str, str], population: int, seed: int) -> str:
    """The score of a random sample of mutants, as an estimate of the whole population's."""
    counted = [m for m in mutants if not (m.key in equivalent and m.outcome in ("survived", "uncovered"))]
    killed = sum(m.outcome in ("killed", "timeout") for m in counted)
    lo, hi = wilson(killed, len(counted))
    return (f"A seeded random sample (seed {seed}) of {len(mutants)} of the {population} mutants: {killed} of "
            f"{len(counted)} killed ({100 * killed / max(len(counted), 1):.1f}%); 95% Wilson interval for the score "
            f"of all {population}: {100 * lo:.1f}-{100 * hi:.1f}%.")


def summarize(mutants: list[Mutant], equivalent: dict[str, str], seconds: float) -> str:
    rows, surv = [], []
    mods = sorted({m.rel for m in mutants})
    tot = dict(gen=0, killed=0, timeout=0, survived=0, uncovered=0, equivalent=0)
    for rel in mods:
        ms = [m for m in mutants if m.rel == rel]
        eq = [m for m in ms if m.key in equivalent and m.outcome in ("survived", "uncovered")]
        c = dict(gen=len(ms), killed=sum(m.outcome == "killed" for m in ms),
                 timeout=sum(m.outcome == "timeout" for m in ms),
                 survived=sum(m.outcome == "survived" and m.key not in equivalent for m in ms),
                 uncovered=sum(m.outcome == "uncovered" and m.key not in equivalent for m in ms), equivalent=len(eq))
        for k in tot:
            tot[k] += c[k]
        rows.append((rel, c))
        surv += [m for m in ms if m.outcome in ("survived", "uncovered") and m.key not in equivalent]

    def score(c):
        denom = c["gen"] - c["equivalent"]
        return f"{100.0 * (c['killed'] + c['timeout']) / denom:.1f}%" if denom else "-"

    out = ["| module | mutants | killed | timeout | survived | not covered | equivalent | score |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for rel, c in rows + [("**total**", tot)]:
        out.append(f"| {rel} | {c['gen']} | {c['killed']} | {c['timeout']} | {c['survived']} | {c['uncovered']} | "
                   f"{c['equivalent']} | {score(c)} |")
    out.append("")
    out.append(f"Score = (killed + timeout) / (mutants - equivalent). Run time {seconds / 60:.0f} min.")
    if surv:
        out += ["", "Surviving mutants (not known equivalent):", ""]
        out += [f"- `{m.key}` ({m.outcome}, line {m.lineno}: `{m.line}`)" for m in surv]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help="module files (default: replicate/samplers/*.py)")
    ap.add_argument("--tests", nargs="*", help="test files to use instead of TEST_FILES / DEFAULT_TESTS")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--workdir", help="scratch directory (default: a new temporary one)")
    ap.add_argument("--json", help="write every mutant's outcome here")
    ap.add_argument("--markdown", help="write the score table and the survivors here")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--show", action="store_true", help="with --list / --only: print each mutant's change")
    ap.add_argument("--only", help="only mutants whose key contains this text")
    ap.add_argument("--sample", type=int, help="run a seeded random sample of this many mutants (the score then "
                                               "comes with a 95%% Wilson interval for the whole population)")
    ap.add_argument("--seed", type=int, default=0, help="seed of --sample")
    a = ap.parse_args(argv)
    os.chdir(REPO)
    rels = a.modules or sorted(str(p.relative_to(REPO)) for p in (REPO / "replicate/samplers").glob("*.py")
                               if p.name != "__init__.py")
    rels = [str(Path(r)) for r in rels]
    mutants = [m for r in rels for m in generate(r)]
    if a.only:
        mutants = [m for m in mutants if a.only in m.key]
    population = len(mutants)
    if a.sample and a.sample < population:
        import random

        mutants = sorted(random.Random(a.seed).sample(mutants, a.sample), key=lambda m: (m.rel, m.lineno, m.key))
    equivalent = load_equivalent()
    if a.list or (a.show and not a.json and not a.markdown):
        for m in mutants:
            eq = "  [equivalent]" if m.key in equivalent else ""
            print(f"{m.key}{eq}" + (f"\n    line {m.lineno}: {m.line}\n    {m.kind}: {m.orig} -> {m.new}"
                                     if a.show else ""))
        print(f"{len(mutants)} mutants")
        return 0
    tests_for = {}
    for r in rels:
        pkg = str(Path(r).parent)
        tests_for[r] = a.tests or TEST_FILES.get(r) or DEFAULT_TESTS.get(pkg) or []
        if not tests_for[r]:
            raise SystemExit(f"no test files known for {r}: pass --tests")
    all_tests = sorted({t for v in tests_for.values() for t in v})
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    sys.dont_write_bytecode = True
    import torch  # noqa: F401  (imported once, before forking: the children share it)
    workdir = (Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="mutation-"))).resolve()
    t0 = time.time()
    print(f"{len(mutants)} mutants in {len(rels)} module(s); baseline run of {len(all_tests)} test file(s) "
          f"in {workdir}", flush=True)
    base = baseline(make_copy(workdir / "baseline"), rels, all_tests)
    print(f"baseline: {len(base['seconds'])} tests, {sum(base['seconds'].values()):.0f} s", flush=True)
    run_mutants(mutants, base, tests_for, workdir, a.workers, log=lambda s: print(s, flush=True))
    seconds = time.time() - t0
    report = summarize(mutants, equivalent, seconds)
    if len(mutants) < population:
        report += "\n\n" + sample_note(mutants, equivalent, population, a.seed)
    print(report)
    if a.json:
        Path(a.json).write_text(json.dumps([{k: v for k, v in asdict(m).items() if k not in ("start", "end")}
                                            for m in mutants], indent=1))
    if a.markdown:
        Path(a.markdown).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
