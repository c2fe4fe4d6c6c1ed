"""Which source files a stage depends on: the static import closure of its module inside the `replicate` package.

Every `import replicate.x` / `from replicate.x import y` / relative import anywhere in a module (module level or
inside a function) is an edge; the closure of a module is every module reachable along the edges, plus the
`__init__.py` of every package on the way (importing `replicate.samplers.diffusion` runs `replicate/__init__.py` and
`replicate/samplers/__init__.py`) and the data files a module reads (PACKAGE_DATA). Static analysis over-approximates
(an import in a branch that never runs still counts), which is the safe side: a stage may rerun when it need not,
never the reverse. Nothing here imports the modules it analyses, so it is cheap and has no side effects.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "replicate"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = PACKAGE_DIR.parent

# Files a module reads at run time (not imports): a stage that imports the module depends on them too.
PACKAGE_DATA = {
    "replicate.assets.registry": ["replicate/assets/registry.tsv"],
    "replicate.report.catalog": ["replicate/report/catalog.yaml", "replicate/published"],
    "replicate.report.published": ["replicate/published"],
    "replicate.report.common": ["replicate/report/deviations"],
}


def module_file(module: str) -> Path | None:
    """The source file of a `replicate.*` module (package -> its __init__.py), or None if there is none."""
    rel = Path(*module.split("."))
    for candidate in (REPO_ROOT / rel.with_suffix(".py"), REPO_ROOT / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    rel = path.resolve().relative_to(REPO_ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _resolve_relative(importer: str, is_package: bool, level: int, target: str | None) -> str:
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


@functools.lru_cache(maxsize=None)
def direct_imports(module: str) -> frozenset[str]:
    """`replicate.*` modules imported anywhere in `module` (`from pkg import name` counts `pkg.name` when that is a
    module, else `pkg`)."""
    path = module_file(module)
    if path is None:
        return frozenset()
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module if node.level == 0 else _resolve_relative(module, is_package, node.level, node.module)
            if base is None:
                continue
            names = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                names.append(sub if module_file(sub) is not None else base)
        else:
            continue
        found.update(n for n in names if n == PACKAGE or n.startswith(PACKAGE + "."))
    found.discard(module)
    return frozenset(n for n in found if module_file(n) is not None)


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@functools.lru_cache(maxsize=None)
def closure(module: str) -> frozenset[str]:
    """Every `replicate.*` module that importing `module` may load (itself and its packages included)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        m = todo.pop()
        for name in _with_parents(m):
            if name not in seen and module_file(name) is not None:
                seen.add(name)
                todo.extend(direct_imports(name))
    return frozenset(seen)


def closure_files(modules) -> list[str]:
    """Repository-relative paths of the source and data files in the closure of `modules`, sorted."""
    files: set[str] = set()
    for module in modules:
        for m in closure(module):
            files.add(module_file(m).relative_to(REPO_ROOT).as_posix())
            files.update(PACKAGE_DATA.get(m, []))
    return sorted(files)


def all_modules() -> list[str]:
    """Every module of the package."""
    return sorted(module_name(p) for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


def import_graph() -> dict[str, frozenset[str]]:
    return {m: direct_imports(m) for m in all_modules()}
