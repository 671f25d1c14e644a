"""The deployed package holds only what the Function App runs.

``.funcignore`` decides what ``func azure functionapp publish`` uploads. Every Python module it
leaves in must be imported, directly or transitively, by ``function_app`` (the only entry point
the Functions host loads), so development-only code (seed writers, local keys, the CLI, a
synchronous adapter copy) cannot creep back into the product package unnoticed: it is either
used by the app, or moved out (``devtools/``, ``bench/``, ``tests/``), or ignored explicitly.

Imports are read from the source (``ast``), wherever they stand: module level, inside a
function, under ``TYPE_CHECKING``, or a literal ``importlib.import_module("...")``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pathspec

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "function_app"


def _deployed_modules() -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file ``.funcignore`` leaves in."""
    patterns = (ROOT / ".funcignore").read_text().splitlines()
    ignored = pathspec.GitIgnoreSpec.from_lines(patterns)
    modules: dict[str, Path] = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0].startswith(".") or ignored.match_file(relative.as_posix()):
            continue
        # A file is left out when any folder above it is ignored (gitignore semantics).
        if any(
            ignored.match_file(f"{'/'.join(relative.parts[:i])}/")
            for i in range(1, len(relative.parts))
        ):
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported_names(path: Path, module: str) -> set[str]:
    """Every module name ``path`` imports (and, for ``from a import b``, ``a.b`` too)."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def _reachable(modules: dict[str, Path]) -> set[str]:
    seen: set[str] = set()
    pending = [ENTRY]
    while pending:
        name = pending.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        # Importing a.b.c runs a/__init__ and a/b/__init__ first.
        parts = name.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        for imported in _imported_names(modules[name], name):
            pending.extend(
                ".".join(imported.split(".")[:i]) for i in range(1, imported.count(".") + 2)
            )
    return seen


def test_every_deployed_module_is_imported_by_the_function_app() -> None:
    modules = _deployed_modules()
    assert ENTRY in modules
    assert "shared.composition" in modules
    unused = sorted(set(modules) - _reachable(modules))
    assert not unused, (
        "in the deployed package but never imported by function_app (move it to devtools/, "
        f"bench/ or tests/, or add it to .funcignore): {unused}"
    )


def _product_modules() -> dict[str, Path]:
    """Module name -> file for every module of the product (deployed or not)."""
    modules: dict[str, Path] = {ENTRY: ROOT / f"{ENTRY}.py"}
    for top in ("shared", "functions", "keyward"):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def test_every_module_the_function_app_imports_is_deployed() -> None:
    """The converse: a ``.funcignore`` entry that catches a module the app imports would
    deploy a Function App that fails at start-up."""
    deployed = _deployed_modules()
    missing = sorted(set(_reachable(_product_modules())) - set(deployed))
    assert not missing, f"function_app imports these, but .funcignore leaves them out: {missing}"


def test_development_code_is_not_deployed() -> None:
    modules = _deployed_modules()
    for prefix in ("devtools", "bench", "tests", "shared.cli", "shared.application", "keyward"):
        assert not [m for m in modules if m == prefix or m.startswith(f"{prefix}.")], prefix
