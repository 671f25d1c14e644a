"""``python -m devtools.pyversions``: check the product against every supported Python.

The supported versions are pyproject's ``Programming Language :: Python :: 3.X``
classifiers (the README says the same; tests/test_pyversions.py keeps them together). The
interpreter running this (the ``.venv``'s, the one ``make test`` runs every test with) must
be one of them, or the check fails. Each supported version is then probed with
``devtools/pyversions_probe.py``: every product file compiled by that interpreter, every
product module imported as far as the standard library allows (no site-packages), with
SyntaxWarnings as errors. That takes
about a second per version, not a test run. A version with no interpreter on this machine is
skipped, and says so.

Interpreters are looked for as ``python3.X`` on ``PATH`` (a pyenv shim that is not active
counts as absent), then in ``$PYENV_ROOT/versions/3.X.*`` (default ``~/.pyenv``), then
``/usr/bin/python3.X``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "devtools" / "pyversions_probe.py"
CLASSIFIER = "Programming Language :: Python :: "


def supported_versions(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The ``3.X`` versions pyproject's classifiers name, oldest first."""
    classifiers = tomllib.loads(pyproject.read_text())["project"].get("classifiers", [])
    versions = [c.removeprefix(CLASSIFIER) for c in classifiers if c.startswith(CLASSIFIER)]
    minors = [v for v in versions if v.count(".") == 1]
    return sorted(minors, key=lambda v: tuple(int(p) for p in v.split(".")))


def third_party_modules() -> list[str]:
    """Top-level module names installed by distributions (not the standard library)."""
    names = set(importlib.metadata.packages_distributions())
    product = {"shared", "keyward", "functions", "function_app"}
    return sorted(names - set(sys.stdlib_module_names) - product)


def _candidates(version: str) -> Iterator[Path]:
    on_path = shutil.which(f"python{version}")
    if on_path:
        yield Path(on_path)
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for home in sorted((pyenv / "versions").glob(f"{version}.*"), reverse=True):
        yield home / "bin" / f"python{version}"
    yield Path(f"/usr/bin/python{version}")


def _reports_version(interpreter: Path, version: str) -> bool:
    try:
        out = subprocess.run(
            [str(interpreter), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def find_interpreter(version: str) -> Path | None:
    """A working ``python3.X`` for ``version`` on this machine, or None."""
    for candidate in _candidates(version):
        if candidate.exists() and _reports_version(candidate, version):
            return candidate
    return None


def probe(interpreter: Path, third_party: list[str], root: Path = ROOT) -> dict[str, object]:
    """``devtools/pyversions_probe.py`` run by ``interpreter`` over ``root``'s product."""
    out = subprocess.run(
        [
            *(str(interpreter), "-I", "-S", "-B"),
            # 3.12 made an invalid escape sequence a SyntaxWarning (a SyntaxError to come)
            *("-W", "error::SyntaxWarning"),
            *(str(PROBE), str(root), json.dumps(third_party)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        result: dict[str, object] = json.loads(out.stdout)
    except json.JSONDecodeError:
        return {"failures": [f"probe crashed (exit {out.returncode}): {out.stderr.strip()}"]}
    return result


def run(
    versions: list[str],
    *,
    current: str,
    find: Callable[[str], Path | None] = find_interpreter,
    report: Callable[[str], None] = print,
) -> int:
    """Probe every version; 0 when all present ones pass and ``current`` is supported."""
    failed = False
    if current not in versions:
        report(f"FAIL {current}: the interpreter running the tests is not a supported version")
        failed = True
    third_party = third_party_modules()
    for version in versions:
        interpreter = find(version)
        if interpreter is None:
            report(f"SKIP {version}: no python{version} on this machine (not checked)")
            continue
        result = probe(interpreter, third_party)
        failures = result.get("failures") or []
        assert isinstance(failures, list)
        imported = result.get("imported") or []
        needs = result.get("needs") or {}
        assert isinstance(imported, list)
        assert isinstance(needs, dict)
        scope = "fully tested (make test)" if version == current else "compile-checked"
        summary = (
            f"{version} ({result.get('version')}, {interpreter}): {scope}; "
            f"{result.get('compiled')} files compiled, {len(imported)} modules imported, "
            f"{sum(len(m) for m in needs.values())} stop at packages not installed there "
            f"({', '.join(sorted(needs)) or 'none'})"
        )
        if failures:
            failed = True
            report(f"FAIL {summary}")
            for failure in failures:
                report(f"  {failure}")
        else:
            report(f"ok   {summary}")
    return 1 if failed else 0


def main() -> int:
    current = "{}.{}".format(*sys.version_info[:2])
    return run(supported_versions(), current=current)


if __name__ == "__main__":
    sys.exit(main())
