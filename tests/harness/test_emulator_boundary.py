"""The emulated device's boundary: a test double and a product feature, reached only through adb.

The rest of the product talks to it the way it talks to a phone, over the adb protocol. Only the code
that *starts* one imports it, and only its public package (``harness.emulator``: ``EmulatedDevice`` and
friends), never its shell, file system or programs. The emulator in turn knows nothing of the harness
that drives it (no runner, planner, ADB client, profiling, CLI or server code).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import harness.emulator

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / "harness" / "emulator"

# The modules that start an emulated device: `--device emulated`, `jointdnn demo`, `jointdnn emulator`.
ENTRY_POINTS = {"harness/runner/devices.py", "harness/cli/run_cmd.py", "harness/cli/emulator_cmd.py"}
# What the emulator may use from the rest of the harness: device specs, the compute-slowdown pad and the
# adb binary (to `adb connect` itself).
EMULATOR_MAY_IMPORT = (
    "harness.emulator",
    "harness.specs",
    "harness.devices.slowdown",
    "harness.devices.adb_server",
)


def _imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(module, imported names) for every import statement in a file (relative ones resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # from . import x / from ..y import z
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{module}" if module else base
            yield module, [alias.name for alias in node.names]


def _reaches_emulator(module: str, names: list[str]) -> bool:
    return (
        module == "harness.emulator"
        or module.startswith("harness.emulator.")
        or (module == "harness" and "emulator" in names)
    )


def _product_files() -> Iterator[Path]:
    for folder in ("harness", "models", "server"):
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_only_the_entry_points_import_the_emulator_and_only_its_public_package() -> None:
    importers: dict[str, list[str]] = {}
    for path in _product_files():
        if path.is_relative_to(EMULATOR):
            continue
        for module, names in _imports(path):
            if _reaches_emulator(module, names):
                importers.setdefault(str(path.relative_to(ROOT)), []).append(
                    f"from {module} import {', '.join(names)}" if names else f"import {module}"
                )
    assert set(importers) == ENTRY_POINTS, importers
    public = set(harness.emulator.__all__)
    for file, statements in importers.items():
        for statement in statements:
            module, _, names = statement.removeprefix("from ").partition(" import ")
            assert module == "harness.emulator", f"{file}: {statement} (use the public package)"
            assert set(names.split(", ")) <= public, f"{file}: {statement} (not in harness.emulator.__all__)"


def test_the_emulator_does_not_import_the_harness_that_drives_it() -> None:
    offending = []
    for path in sorted(EMULATOR.rglob("*.py")):
        for module, _ in _imports(path):
            top = module.split(".")[0]
            if top == "server" or (top == "harness" and not module.startswith(EMULATOR_MAY_IMPORT)):
                offending.append(f"{path.relative_to(ROOT)}: {module}")
    assert offending == []
