"""The architecture as a test: the import graph of `replicate` has no cycles, and no module imports a higher layer.

Layers, lowest first (a module may import its own layer and the ones below; replicate/__init__.py says the same):
"""
from __future__ import annotations

from replicate.pipeline.codedeps import all_modules, closure, direct_imports, import_graph

LAYERS = [
    ("core", ("replicate", "replicate.io", "replicate.seeding", "replicate.params", "replicate.config",
              "replicate.runtime", "replicate.markdown", "replicate.progress")),
    ("data", ("replicate.assets", "replicate.data", "replicate.datasets_ncsn", "replicate.metrics")),
    ("models", ("replicate.denoisers", "replicate.operators", "replicate.noise")),
    ("methods", ("replicate.samplers", "replicate.solvers", "replicate.methods", "replicate.training",
                 "replicate.training_score")),
    ("pipeline", ("replicate.scaleout", "replicate.pipeline")),
    ("experiments", ("replicate.experiments",)),
    ("report", ("replicate.report", "replicate.published")),
    ("entry", ("replicate.stages", "replicate.cli", "replicate.__main__", "replicate.dryrun")),
]


def layer_of(module: str) -> int:
    best, rank = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert rank is not None, f"{module} is in no layer: add it to tests/test_layers.py"
    return rank


def test_every_module_has_a_layer():
    for m in all_modules():
        layer_of(m)


def test_no_module_imports_a_higher_layer():
    upward = []
    for module, imports in import_graph().items():
        for target in imports:
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                              f"({LAYERS[layer_of(target)][0]})")
    assert not upward, "\n".join(sorted(upward))


def test_the_report_does_not_import_the_experiments():
    # the report reads results and manifests only; what ran is in the manifests, never re-derived from experiment code
    offending = sorted(f"{m} imports {t}" for m, ts in import_graph().items() if m.startswith("replicate.report")
                       for t in ts if t.startswith("replicate.experiments"))
    assert not offending, "\n".join(offending)


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(m, path):
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycles.append(" -> ".join(path[path.index(t):] + [t]) if t in path else f"{m} -> {t}")
            elif state.get(t) is None:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    # a package's __init__ importing its own submodules is not a cycle of the architecture
    real = [c for c in cycles if not all(part.startswith(c.split(" -> ")[0].rsplit(".", 1)[0]) for part in
                                         c.split(" -> "))]
    assert not real, "\n".join(real)


def test_codedeps_sees_imports_inside_functions():
    # replicate.experiments.mohan2020_models imports the checkpoint loader only inside a function
    assert "replicate.denoisers.checkpoints" in direct_imports("replicate.experiments.mohan2020_models")
    assert "replicate.training" in closure("replicate.experiments.mohan2020_models")
    assert "replicate" in closure("replicate.io")  # the package's __init__ runs first
