"""The library's layers, enforced: no module imports a higher layer, and no import cycle exists.

Every module under ``src/srjudge`` is parsed with :mod:`ast`; its imports are those at module level,
those inside functions, and ``importlib.import_module("srjudge....")`` calls with a literal name.
A module's package is the first name after ``srjudge.`` (``srjudge/demo.py`` is ``demo``; the
top-level ``srjudge/__init__.py`` is ``srjudge``), and each package has a rank in :data:`RANKS`,
lowest first. A module may import its own rank or lower ones; among the research and app packages
of rank 11 only the pairs in :data:`SAME_RANK_ALLOWED` may import each other.

Cycles: the module graph of module-level imports (not counting ``if TYPE_CHECKING:`` blocks) has no
cycle, and the package graph of all imports has none either, except within one package.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "srjudge"

RANKS: Mapping[str, int] = {
    # 0: the core
    "srjudge": 0,
    "errors": 0,
    "spec": 0,
    "registry": 0,
    "atomic": 0,
    "provenance": 0,
    "jsonl": 0,
    "config": 0,
    "execute": 0,  # the execution layer: local, processes, Ray (imports only the core)
    # the library
    "images": 1,
    "models": 2,
    "faces": 2,
    "metrics": 3,
    "degrade": 3,
    "sr": 4,
    "vlm": 4,
    "readers": 5,
    "judges": 6,
    "select": 7,
    "report": 8,
    "audit": 9,
    "run": 10,
    "serve": 10,
    # research tools and the demo, then the command line
    "bench": 11,
    "testbed": 11,
    "train": 11,
    "demo": 11,
    "demo_faces": 11,
    "cli": 12,
}
"""Package -> layer, lowest first: a module imports only from its own layer or lower ones."""

RESEARCH_RANK = 11
SAME_RANK_ALLOWED = frozenset({("train", "testbed"), ("train", "bench"), ("testbed", "bench")})
"""(importer, imported) pairs allowed between different packages of :data:`RESEARCH_RANK`."""


@dataclass(frozen=True)
class Import:
    """One import of an srjudge module by another."""

    path: Path  # the importing file
    line: int
    source: str  # importing module, e.g. srjudge.readers.vlm
    target: str  # imported module (or the package, when the name imported is not a module)
    in_function: bool  # made inside a function (runs when the function is called)
    type_checking: bool  # under ``if TYPE_CHECKING:`` (never runs)

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root.parent)}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_of(module: str) -> str:
    """``srjudge.judges.vlm.judge`` -> ``judges``, ``srjudge.demo`` -> ``demo``, ``srjudge`` -> ``srjudge``.

    Each top-level module of the core (``srjudge.errors``...) is a package of its own.
    """
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Collector(ast.NodeVisitor):
    """The srjudge imports of one module, each with where it is made (module level, function, type check)."""

    def __init__(self, path: Path, module: str, is_package: bool, modules: set[str], top: str) -> None:
        self.path, self.module, self.modules, self.top = path, module, modules, top
        self.package = module if is_package else module.rpartition(".")[0]
        self.functions = 0
        self.type_checking = 0
        self.found: list[Import] = []

    def _add(self, node: ast.AST, target: str) -> None:
        if target == self.top or target.startswith(self.top + "."):
            self.found.append(
                Import(
                    self.path,
                    getattr(node, "lineno", 0),
                    self.module,
                    target,
                    self.functions > 0,
                    self.type_checking > 0,
                )
            )

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.visit(node.test)
            self.type_checking += 1
            for child in node.body:
                self.visit(child)
            self.type_checking -= 1
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base_parts = self.package.split(".")
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            base = ".".join([*base_parts, *([node.module] if node.module else [])])
        else:
            base = node.module or ""
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            self._add(node, sub if sub in self.modules else base)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "import_module" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self._add(node, first.value)
        self.generic_visit(node)


def collect_imports(root: Path) -> list[Import]:
    """Every import of an srjudge module by a module under ``root`` (the ``srjudge`` package folder)."""
    files = sorted(root.rglob("*.py"))
    modules = {module_name(p, root) for p in files}
    found: list[Import] = []
    for path in files:
        module = module_name(path, root)
        collector = _Collector(path, module, path.name == "__init__.py", modules, root.name)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        found += collector.found
    return found


def layer_violations(imports: Iterable[Import], root: Path) -> list[str]:
    """One line per import of a higher layer (or of a package that has no rank yet)."""
    out = []
    for imp in imports:
        src, dst = package_of(imp.source), package_of(imp.target)
        if src == dst:
            continue
        missing = [p for p in (src, dst) if p not in RANKS]
        if missing:
            out.append(f"{imp.where(root)}: {imp.source} -> {imp.target}: give {', '.join(missing)} a rank")
            continue
        upward = RANKS[dst] > RANKS[src]
        sideways = RANKS[dst] == RANKS[src] == RESEARCH_RANK and (src, dst) not in SAME_RANK_ALLOWED
        if upward or sideways:
            layers = f"layers {src} {RANKS[src]} -> {dst} {RANKS[dst]}"
            out.append(f"{imp.where(root)}: {imp.source} -> {imp.target} ({layers})")
    return out


def _cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with a cycle (Tarjan), each sorted; nodes with self-loops too."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def strongconnect(start: str) -> None:
        nonlocal counter
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return found


def _describe(component: list[str], edges: Mapping[tuple[str, str], list[Import]], root: Path) -> str:
    """One shortest cycle through the component's first node, each step with (up to 3) places."""
    members = set(component)
    first = component[0]
    previous: dict[str, str] = {}
    queue = [first]
    while queue and first not in previous:
        node = queue.pop(0)
        for a, b in sorted(edges):
            if a == node and b in members and b not in previous:
                previous[b] = node
                queue.append(b)
    path = [first]
    while len(path) == 1 or path[-1] != first:
        path.append(previous[path[-1]])
    path.reverse()
    lines = [" -> ".join(path)]
    for a, b in itertools.pairwise(path):
        places = sorted({i.where(root) for i in edges[(a, b)]})
        more = f" (+{len(places) - 3} more)" if len(places) > 3 else ""
        lines.append(f"    {a} -> {b} at {', '.join(places[:3])}{more}")
    return "\n".join(lines)


def module_cycles(imports: Iterable[Import], root: Path) -> list[str]:
    """Cycles among modules through module-level imports (``if TYPE_CHECKING:`` blocks left out)."""
    graph: dict[str, set[str]] = {}
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in imports:
        if imp.in_function or imp.type_checking or imp.source == imp.target:
            continue
        graph.setdefault(imp.source, set()).add(imp.target)
        edges.setdefault((imp.source, imp.target), []).append(imp)
    return [_describe(c, edges, root) for c in _cycles(graph)]


def package_cycles(imports: Iterable[Import], root: Path) -> list[str]:
    """Cycles among packages through any import (in functions and by importlib too)."""
    graph: dict[str, set[str]] = {}
    edges: dict[tuple[str, str], list[Import]] = {}
    for imp in imports:
        src, dst = package_of(imp.source), package_of(imp.target)
        if src != dst:
            graph.setdefault(src, set()).add(dst)
            edges.setdefault((src, dst), []).append(imp)
    return [_describe(c, edges, root) for c in _cycles(graph)]


# ----------------------------------------------------------------------------------------------------------
# The rules, on srjudge
# ----------------------------------------------------------------------------------------------------------


def test_every_package_has_a_layer() -> None:
    packages = {package_of(module_name(p, SRC)) for p in SRC.rglob("*.py")}
    assert not packages - set(RANKS), f"give these packages a layer in RANKS: {sorted(packages - set(RANKS))}"


def test_no_module_imports_a_higher_layer() -> None:
    found = layer_violations(collect_imports(SRC), SRC)
    assert not found, "imports of a higher layer (file:line, from -> to):\n" + "\n".join(found)


def test_no_import_cycle_between_modules_at_import_time() -> None:
    found = module_cycles(collect_imports(SRC), SRC)
    assert not found, "module-level import cycles:\n" + "\n".join(found)


def test_no_import_cycle_between_packages() -> None:
    found = package_cycles(collect_imports(SRC), SRC)
    assert not found, "package import cycles (any import):\n" + "\n".join(found)


# ----------------------------------------------------------------------------------------------------------
# The checker itself, on small made-up trees
# ----------------------------------------------------------------------------------------------------------


def _tree(tmp_path: Path, files: Mapping[str, str]) -> Path:
    root = tmp_path / "srjudge"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        for parent in path.relative_to(root).parents:
            init = root / parent / "__init__.py"
            if not init.exists():
                init.write_text("")
    return root


def test_an_upward_import_is_reported_with_its_place(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "errors.py": "",
            "images/io.py": "from srjudge.errors import X\n\n"
            "def load():\n    from srjudge.judges.base import J\n",
            "judges/base.py": "from srjudge.images import io\nimport srjudge.errors\n",
            "judges/vlm/judge.py": "from ..base import J\nfrom ... import errors\n",
            "vlm/reader.py": "import importlib\nM = importlib.import_module('srjudge.train.common')\n",
            "train/common.py": "from srjudge.demo import photo\nfrom srjudge.testbed import glyphs\n",
            "testbed/glyphs.py": "from srjudge.bench import data\n",
            "bench/data.py": "",
            "demo.py": "from srjudge.train import common\nfrom srjudge.judges import base\n",
        },
    )
    assert layer_violations(collect_imports(root), root) == [
        "srjudge/demo.py:1: srjudge.demo -> srjudge.train.common (layers demo 11 -> train 11)",
        "srjudge/images/io.py:4: srjudge.images.io -> srjudge.judges.base (layers images 1 -> judges 6)",
        "srjudge/train/common.py:1: srjudge.train.common -> srjudge.demo (layers train 11 -> demo 11)",
        "srjudge/vlm/reader.py:2: srjudge.vlm.reader -> srjudge.train.common (layers vlm 4 -> train 11)",
    ]


def test_relative_imports_resolve_to_modules(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "judges/base.py": "",
            "judges/vlm/helpers.py": "",
            "judges/vlm/judge.py": "from ..base import J\nfrom . import helpers\nfrom ...images import io\n",
            "images/io.py": "",
        },
    )
    targets = {(i.source, i.target) for i in collect_imports(root)}
    assert targets == {
        ("srjudge.judges.vlm.judge", "srjudge.judges.base"),
        ("srjudge.judges.vlm.judge", "srjudge.judges.vlm.helpers"),
        ("srjudge.judges.vlm.judge", "srjudge.images.io"),
    }


def test_module_cycles_count_runtime_imports_only(tmp_path: Path) -> None:
    cycle = _tree(
        tmp_path / "a", {"sr/a.py": "from srjudge.sr import b\n", "sr/b.py": "import srjudge.sr.a\n"}
    )
    found = module_cycles(collect_imports(cycle), cycle)
    assert len(found) == 1 and found[0].startswith("srjudge.sr.a -> srjudge.sr.b -> srjudge.sr.a")
    assert "srjudge/sr/b.py:1" in found[0]
    typed = _tree(
        tmp_path / "b",
        {
            "sr/a.py": "from srjudge.sr import b\n",
            "sr/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from srjudge.sr.a import A\n"
            "def f():\n    import srjudge.sr.a\n",
        },
    )
    assert module_cycles(collect_imports(typed), typed) == []


def test_package_cycles_count_every_import(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "judges/readout.py": "from srjudge.readers.base import Reader\n",
            "readers/base.py": "",
            "readers/vlm.py": "def build():\n    from srjudge.judges.vlm import VLMJudge\n",
            "metrics/a.py": "import srjudge.degrade.b\n",
            "degrade/b.py": "",
        },
    )
    imports = collect_imports(root)
    found = package_cycles(imports, root)
    assert len(found) == 1 and found[0].startswith("judges -> readers -> judges")
    assert "srjudge/readers/vlm.py:2" in found[0] and "srjudge/judges/readout.py:1" in found[0]
    assert layer_violations(imports, root) == [
        "srjudge/readers/vlm.py:2: srjudge.readers.vlm -> srjudge.judges.vlm (layers readers 5 -> judges 6)"
    ]


def test_a_package_without_a_layer_is_reported(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"plugins/x.py": "from srjudge.images import io\n", "images/io.py": ""})
    assert layer_violations(collect_imports(root), root) == [
        "srjudge/plugins/x.py:1: srjudge.plugins.x -> srjudge.images.io: give plugins a rank"
    ]
