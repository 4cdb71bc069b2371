"""Import rules between the layers, checked on the source (parsed with ``ast``, nothing is imported).

* ``server/`` never imports ``harness`` (it depends on ``models`` only);
* ``models/`` never imports ``harness`` or ``server``;
* ``harness/planner/`` is pure: no TensorFlow, Keras, matplotlib, rich or typer, neither directly nor
  through the project's own modules it imports.

What counts as an import:

* the direct rules (server, models, the planner's own files) count **every** ``import`` statement in
  the file: module level, inside functions (lazy imports run as soon as the function is called) and
  under ``if TYPE_CHECKING:`` (a type-only import still couples the layers);
* the planner's transitive rule follows the project's own modules (``harness.*``, ``models.*``,
  ``server.*``, ``device_profiles``) through every import that can **run**: module level and inside
  functions, but not ``if TYPE_CHECKING:`` blocks, which never execute. Importing ``a.b.c`` also runs
  ``a/__init__.py`` and ``a/b/__init__.py``, so those are edges too; ``from a.b import c`` is an edge
  to ``a.b.c`` when that is a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = ("harness", "models", "server", "device_profiles")
PLANNER_FORBIDDEN = ("tensorflow", "keras", "matplotlib", "rich", "typer")


@dataclass(frozen=True)
class Import:
    """One imported module name at one place in a file."""

    module: str  # absolute dotted name, e.g. "harness.specs" or "rich.table"
    names: tuple[str, ...]  # `from module import a, b` -> ("a", "b"); () for `import module`
    file: Path  # relative to ROOT
    line: int
    statement: str  # the source of the import statement
    in_function: bool
    type_checking: bool

    def modules(self) -> Iterator[str]:
        """``module`` and, for ``from module import a``, ``module.a`` (which may be a submodule)."""
        yield self.module
        for name in self.names:
            if name != "*":
                yield f"{self.module}.{name}"

    def where(self) -> str:
        scope = " (inside a function)" if self.in_function else ""
        scope += " (under TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.file}:{self.line} `{self.statement}`{scope}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    """Every first-party module name -> its file (relative to ROOT)."""
    found: dict[str, Path] = {}
    for package in FIRST_PARTY:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path.relative_to(ROOT)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_in_source(source: str, file: Path, package: str) -> list[Import]:
    """The imports of one file; ``package`` resolves relative imports (``from . import x``)."""
    tree = ast.parse(source, filename=str(file))
    lines = source.splitlines()
    found: list[Import] = []

    def statement(node: ast.stmt) -> str:
        text = " ".join(line.strip() for line in lines[node.lineno - 1 : (node.end_lineno or node.lineno)])
        return text.replace("( ", "(").replace(" )", ")")

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(
                    Import(alias.name, (), file, node.lineno, statement(node), in_function, type_checking)
                )
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names = tuple(alias.name for alias in node.names)
            found.append(
                Import(module, names, file, node.lineno, statement(node), in_function, type_checking)
            )
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, in_function, True)
            for child in node.orelse:
                visit(child, in_function, type_checking)
            return
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner, type_checking)

    visit(tree, False, False)
    return found


@cache
def _imports(file: Path) -> tuple[Import, ...]:
    name = _module_name(ROOT / file)
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    return tuple(_imports_in_source((ROOT / file).read_text(), file, package))


def _is_under(module: str, top: str) -> bool:
    return module == top or module.startswith(top + ".")


def _files_under(folder: str) -> list[Path]:
    files = sorted(p.relative_to(ROOT) for p in (ROOT / folder).rglob("*.py"))
    assert files, f"no Python files under {folder}/"
    return files


def _first_party_targets(imported: str) -> Iterator[str]:
    """The project modules that run when ``imported`` is imported: it and its parent packages."""
    parts = imported.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        if name in _modules():
            yield name


def _forbidden(imp: Import, forbidden: tuple[str, ...]) -> str | None:
    """The first module of ``imp`` under one of ``forbidden``, if any."""
    return next((m for m in imp.modules() if any(_is_under(m, top) for top in forbidden)), None)


def _direct_violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{imp.where()} imports {bad}"
        for file in _files_under(folder)
        for imp in _imports(file)
        if (bad := _forbidden(imp, forbidden))
    ]


def _reachable_violations(roots: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    """Forbidden imports that run when any of ``roots`` is imported, each with the chain that gets there."""
    chain: dict[Path, list[Import]] = {root: [] for root in roots}
    queue = list(roots)
    problems: list[str] = []
    while queue:
        file = queue.pop(0)
        for imp in _imports(file):
            if imp.type_checking:
                continue
            if bad := _forbidden(imp, forbidden):
                problems.append(f"{bad}: " + " -> ".join(step.where() for step in [*chain[file], imp]))
            for target in {t for m in imp.modules() for t in _first_party_targets(m)}:
                target_file = _modules()[target]
                if target_file not in chain:
                    chain[target_file] = [*chain[file], imp]
                    queue.append(target_file)
    return sorted(set(problems))


def test_scanner_sees_function_level_type_checking_and_from_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import rich.table\n"
        "from harness import specs\n"
        "if TYPE_CHECKING:\n"
        "    import keras\n"
        "def f():\n"
        "    from matplotlib.figure import (\n        Figure,\n    )\n"
        "class C:\n"
        "    from . import sibling\n"
    )
    found = {
        (module, i.in_function, i.type_checking)
        for i in _imports_in_source(source, Path("x.py"), "pkg")
        for module in i.modules()
    }
    assert ("rich.table", False, False) in found
    assert ("harness.specs", False, False) in found  # `from harness import specs` names the submodule
    assert ("keras", False, True) in found
    assert ("matplotlib.figure", True, False) in found
    assert ("pkg.sibling", False, False) in found  # class bodies run at import time


def test_server_never_imports_harness() -> None:
    problems = _direct_violations("server", ("harness",))
    assert not problems, (
        "server/ must not import harness (use models.errors / models.profile_rows):\n" + "\n".join(problems)
    )


def test_models_never_import_harness_or_server() -> None:
    problems = _direct_violations("models", ("harness", "server"))
    assert not problems, "models/ must not import harness or server:\n" + "\n".join(problems)


def test_planner_imports_no_tensorflow_plotting_or_terminal_ui_directly() -> None:
    problems = _direct_violations("harness/planner", PLANNER_FORBIDDEN)
    assert not problems, "harness/planner/ must stay pure:\n" + "\n".join(problems)


@pytest.mark.parametrize("module", sorted(p.name for p in (ROOT / "harness" / "planner").glob("*.py")))
def test_planner_imports_no_tensorflow_plotting_or_terminal_ui_transitively(module: str) -> None:
    root = Path("harness", "planner", module)
    problems = _reachable_violations([root], PLANNER_FORBIDDEN)
    assert not problems, f"importing {root} runs forbidden imports:\n" + "\n".join(problems)
