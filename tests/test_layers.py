"""The package's layers: each module imports only modules of its own layer or below, no cycles.

Every ``import``/``from ... import`` of gankit is read from the source (ast), inside functions
too, so an upward import cannot hide in a function body. Layers, bottom to top:

0. leaves: errors, cache, catalog, config, checkpoint, device, distributed, ema, nn, conv, optim,
   losses, distances, lipschitz, visual, nn_translation, theory (pure functions and building blocks)
1. data (reading, batching, rendering; knows no model or metric)
2. metrics (scores on tensors and features; the evaluation classifiers and their training)
3. models (one family per file)
4. evaluate (which metrics a run gets)
5. trainer (the loop)
6. runs (Run, run directories, config resolution)
7. translate, export, serve, report (commands over saved runs)
8. api and the package itself (the public Python API)
9. cli (argparse over the API)
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gankit"
LAYERS = {
    "errors": 0,
    "score_protocols": 0,
    "cache": 0,
    "catalog": 0,
    "config": 0,
    "checkpoint": 0,
    "device": 0,
    "distributed": 0,
    "ema": 0,
    "nn": 0,
    "conv": 0,
    "optim": 0,
    "losses": 0,
    "distances": 0,
    "lipschitz": 0,
    "visual": 0,
    "progress": 0,
    "nn_translation": 0,
    "theory": 0,
    "data": 1,
    "metrics": 2,
    "models": 3,
    "evaluate": 4,
    "trainer": 5,
    "runs": 6,
    "translate": 7,
    "export": 7,
    "weights": 7,
    "serve": 7,
    "report": 7,
    "api": 8,
    "": 8,  # gankit/__init__.py
    "cli": 9,
    "__main__": 9,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    if top not in LAYERS:
        raise AssertionError(f"{module}: add its top-level name to LAYERS in {__file__}")
    return LAYERS[top]


def gankit_imports(path: Path) -> set[str]:
    """Every gankit module ``path`` imports (``from gankit import x`` counts x if a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gankit"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "gankit":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
    return found


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}
GRAPH = {name: gankit_imports(path) - {name} for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module):
    upward = sorted(m for m in GRAPH[module] if layer(m) > layer(module))
    assert not upward, f"{module} (layer {layer(module)}) imports from above: {upward}"


def test_no_import_cycles():
    """Depth-first search for a back edge among gankit modules (package __init__ included)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH[node]):
            if nxt not in GRAPH:
                continue
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_no_private_name_is_imported_from_another_module():
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gankit"):
                names = [a.name for a in node.names]
                private = [n for n in names if n.startswith("_") and not n.endswith("__")]
                assert not private, f"{module} imports private {private} from {node.module}"


def test_every_module_has_a_layer_and_the_test_knows_them_all():
    assert {"gankit.data.base", "gankit.metrics.translation", "gankit.evaluate"} <= set(MODULES)
    for module in MODULES:
        layer(module)


def test_import_gankit_and_help_stay_light():
    """`import gankit` and the CLI's parser need neither torch nor matplotlib (a fresh process)."""
    import subprocess
    import sys

    code = (
        "import sys, gankit, gankit.cli; gankit.cli._parser(); "
        "heavy = [m for m in ('torch', 'matplotlib', 'numpy') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout  # how fast: `make bench-cli`
