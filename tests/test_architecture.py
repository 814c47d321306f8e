"""The layout is the architecture: each sub-package imports only the layers below it, and no
module import cycle exists, counting lazy (function-level) imports too."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "costmodel"

# layer of each top-level unit of the package; a module may import its own unit or a lower layer
LAYERS = {"errors": 0, "spec": 0, "engine": 1, "calibration": 2, "estimate": 3, "serving": 3.5, "serving_split": 3.6,
          "analyses": 4, "planning": 4, "sweeps": 4, "plots": 5, "cli": 6}
GROUND = {"errors"}  # spec may import errors and errors imports nothing


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every costmodel module this file imports, at any depth (lazy imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path)
    pkg = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "costmodel")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "costmodel":
                continue
            for a in node.names:  # `from costmodel.x import y` may import the module costmodel.x.y
                sub = f"{mod}.{a.name}"
                out.add(sub if sub in MODULES else mod)
    return out


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {m: {i for i in imports_of(p) if i in MODULES and i != m} for m, p in MODULES.items()}


def unit(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root (costmodel/__init__)


def test_every_module_belongs_to_a_layer():
    strays = [m for m in MODULES if unit(m) not in LAYERS and unit(m) not in (None, "__main__")]
    assert not strays, f"modules outside the layers {sorted(LAYERS)}: {strays}"


@pytest.mark.parametrize("mod", sorted(m for m in MODULES if unit(m) in LAYERS))
def test_no_upward_import(mod):
    own = LAYERS[unit(mod)]
    bad = []
    for target in GRAPH[mod]:
        u = unit(target)
        if u is None or u == unit(mod):
            continue
        if LAYERS[u] > own or (LAYERS[u] == own and unit(mod) not in GROUND and u not in GROUND):
            bad.append(target)
    assert not bad, f"{mod} imports {bad}: a layer may import only the layers below it"


def test_no_import_cycle():
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_imports():
    """A function-level import is an edge: cli.main imports the estimate module inside a command."""
    assert "costmodel.estimate" in GRAPH["costmodel.cli.main"]
    assert "costmodel.spec.parameters" in GRAPH["costmodel.spec.model_catalog"]


def test_public_api_is_lazy_listed_and_documented():
    import subprocess
    import sys

    code = ("import sys, costmodel; assert 'numpy' not in sys.modules, 'import costmodel loaded numpy'; "
            "import json; print(json.dumps([costmodel.__all__, dir(costmodel)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import json

    names, listed = json.loads(out)
    import costmodel

    for name in ("estimate", "sweep", "pareto_front", "load_model", "load_hardware", "load_format", "roofline_plot",
                 "pareto_plot", "memory_plot", "idealized", "cost_of_pass", "test_time_scaling",
                 "speculative_decoding", "plan", "whatif", "formula", "latency_throughput", "validate", "calibrate",
                 "serve_load"):
        assert name in names and name in listed, name
    for name in names:
        obj = getattr(costmodel, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__ and ">>>" in obj.__doc__, f"costmodel.{name} needs a docstring with a call"


def test_estimate_stays_the_function_after_its_module_is_imported():
    import costmodel
    import costmodel.estimate  # noqa: F401  (binds the sub-module on the package unless guarded)
    from costmodel.estimate import Estimate

    e = costmodel.estimate("llama-3.1-8b", "h100", "fp8")
    assert isinstance(e, Estimate)
    text = repr(e)
    assert text.startswith("<Estimate llama-3.1-8b on 1 x h100-sxm in fp8") and "TPOT" in text and len(text) < 200


def test_sweep_and_pareto_from_the_package():
    import costmodel

    r = costmodel.sweep(models=["llama-3.1-8b"], hw=["h100", "b200"], fmt=["fp8", "bf16"])
    assert len(r) == 4
    mask = costmodel.pareto_front(r, "min:tpot_s,min:usd_per_million_tokens")
    assert mask.any() and set(r["hardware"][mask]) <= {"h100-sxm", "b200"}
