"""The package's layers: every import inside course_lib follows the rule its folders
show (README, "Layout"), no two modules import each other in a circle, and no
module takes a `_private` name from another. Imports inside functions count too.

    core         imports only core
    techniques   a technique's package imports only core and itself
    combined     imports core, techniques and itself
    zoo          imports core, techniques, combined and itself
    app          imports every layer
    course_lib   (the facade: __init__ and __main__) imports every layer
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "course_lib"
RANK = {"core": 0, "techniques": 1, "combined": 2, "zoo": 3, "app": 4}
FACADE = 5


def module_sources(package: Path = PACKAGE) -> dict[str, str]:
    """Dotted module name -> source, for every .py file of the package."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


def imports_of(name: str, source: str, modules: set[str],
               is_package: bool) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every import in `source`
    of a module of the package, at any depth (function bodies included)."""
    package = name if is_package else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names
                    if a.name.split(".")[0] == "course_lib"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "course_lib":
                continue
            for a in node.names:  # `from pkg import module` imports the module
                sub = f"{target}.{a.name}"
                out.append((sub, "", node.lineno) if sub in modules
                           else (target, a.name, node.lineno))
    return out


def layer(module: str) -> tuple[int, str]:
    """(rank, unit): the unit is the layer, or a technique's own package."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in RANK:
        return FACADE, "course_lib"
    if parts[1] == "techniques" and len(parts) > 2:
        return RANK["techniques"], ".".join(parts[:3])
    return RANK[parts[1]], ".".join(parts[:2])


def allowed(importer: str, imported: str) -> bool:
    """The layer rule for one import."""
    rank_a, unit_a = layer(importer)
    rank_b, unit_b = layer(imported)
    if unit_a == unit_b:
        return True
    if unit_a.startswith("course_lib.techniques"):  # a technique: core and itself
        return rank_b == RANK["core"]
    return rank_b < rank_a


def problems(sources: dict[str, str]) -> list[str]:
    """Every import that breaks the layers, takes a private name, or closes a cycle."""
    modules = set(sources)
    packages = {m for m in modules if any(o.startswith(m + ".") for o in modules)}
    found, graph = [], {m: set() for m in modules}
    for name, source in sources.items():
        for target, what, line in imports_of(name, source, modules, name in packages):
            where = f"{name}, line {line}: imports {target}" + (f".{what}" if what
                                                                 else "")
            if target not in modules:
                found.append(f"{where}, which is not a module of the package")
                continue
            if not allowed(name, target):
                found.append(f"{where} (layer {layer(target)[1]} is not below "
                             f"{layer(name)[1]})")
            if what.startswith("_") and target != name:
                found.append(f"{where}: a private name of another module")
            graph[name].add(target)
    found += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                out.append(sorted(group) + [sorted(group)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_follows_its_layers():
    found = problems(module_sources())
    assert not found, "\n".join(found)


def test_every_layer_is_a_folder_that_says_what_it_is_for():
    for name in RANK:
        init = PACKAGE / name / "__init__.py"
        assert init.is_file(), f"course_lib/{name}/ is not a package"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 80, f"course_lib/{name}/__init__.py: no docstring"
    flat = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py"], f"modules outside a layer: {flat}"


def toy(**sources: str) -> dict[str, str]:
    """A hand-made package: module name (with _ for .) -> source."""
    return {"course_lib." + k.replace("__", "."): v for k, v in sources.items()}


BASE = dict(core="", core__model="X = 1\n", core__losses="", techniques="",
            techniques__pruning="", techniques__pruning__masks="",
            techniques__quantization="", techniques__quantization__quant="",
            combined="", zoo="", app="")


@pytest.mark.parametrize("case,sources,message", [
    ("core imports a technique",
     dict(core__losses="from ..techniques.pruning import masks\n"), "not below"),
    ("a technique imports another technique",
     dict(techniques__pruning__masks="from ..quantization import quant\n"),
     "not below"),
    ("a technique imports a recipe, inside a function",
     dict(techniques__pruning__masks="def f():\n    from ...zoo import x\n"),
     "not below"),
    ("a private name from another module",
     dict(techniques__pruning__masks="from ...core.model import _hidden\n"),
     "private name"),
    ("a cycle inside core",
     dict(core__model="from .losses import y\n", core__losses="from .model import X\n"),
     "import cycle"),
    ("an absolute import of a module that does not exist",
     dict(app="import course_lib.train\n"), "not a module"),
])
def test_the_rule_catches_each_kind_of_mistake(case, sources, message):
    found = problems(toy(**{**BASE, **sources}))
    assert any(message in f for f in found), f"{case}: not caught: {found}"


def test_the_rule_lets_each_layer_use_the_ones_below():
    ok = toy(**{**BASE,
                "techniques__pruning__masks": "from ...core.model import X\n",
                "combined": "from ..techniques.pruning import masks\n"
                            "from ..techniques.quantization.quant import y\n",
                "zoo": "from ..combined import z\nfrom ..core import model\n",
                "app": "from ..zoo import w\n"})
    assert problems(ok) == []
