"""Supported Python versions: stated once (pyproject's classifiers), said the same in the
README, and checked by ``make test`` (``devtools.pyversions``) for what this machine has."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from devtools import pyversions, pyversions_probe

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_supported_versions_are_the_classifiers() -> None:
    assert pyversions.supported_versions() == ["3.11", "3.12", "3.13"]


def test_requires_python_and_the_tools_target_the_oldest_supported_version() -> None:
    oldest = pyversions.supported_versions()[0]
    assert PYPROJECT["project"]["requires-python"] == f">={oldest}"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == oldest
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py" + oldest.replace(".", "")


def test_the_readme_states_the_same_versions() -> None:
    readme = (ROOT / "README.md").read_text()
    stated = re.search(r"\*\*Supported Python: ([0-9., ]+)\*\*", readme)
    assert stated, "README states the supported Python versions"
    assert [v.strip() for v in stated.group(1).split(",")] == pyversions.supported_versions()
    assert "--runtime-version 3.11" in readme


def test_the_tests_run_on_a_supported_version() -> None:
    assert "{}.{}".format(*sys.version_info[:2]) in pyversions.supported_versions()


def test_make_test_runs_the_check() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: .*\bpyversions\b", makefile, re.MULTILINE)
    assert "$(PY) -m devtools.pyversions" in makefile


def test_a_missing_interpreter_is_skipped_not_failed() -> None:
    lines: list[str] = []
    code = pyversions.run(
        ["3.11", "3.99"], current="3.11", find=lambda _: None, report=lines.append
    )
    assert code == 0
    assert lines == [
        "SKIP 3.11: no python3.11 on this machine (not checked)",
        "SKIP 3.99: no python3.99 on this machine (not checked)",
    ]


def test_an_unsupported_test_interpreter_fails() -> None:
    lines: list[str] = []
    code = pyversions.run(["3.11"], current="3.10", find=lambda _: None, report=lines.append)
    assert code == 1
    assert lines[0].startswith("FAIL 3.10")


def test_the_probe_passes_on_this_interpreter() -> None:
    lines: list[str] = []
    current = "{}.{}".format(*sys.version_info[:2])
    code = pyversions.run(
        [current], current=current, find=lambda _: Path(sys.executable), report=lines.append
    )
    assert code == 0, lines
    assert lines[0].startswith(f"ok   {current}")
    assert "fully tested" in lines[0]


def test_the_probe_reports_a_syntax_error_and_a_missing_stdlib_module(tmp_path: Path) -> None:
    package = tmp_path / "shared"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "broken.py").write_text("def f(:\n    pass\n")
    (package / "gone.py").write_text("import cgi_removed_from_stdlib\n")
    (package / "needs.py").write_text("import cryptography.hazmat\n")
    result = pyversions.probe(Path(sys.executable), ["cryptography"], root=tmp_path)
    failures = result["failures"]
    assert isinstance(failures, list)
    assert any(f.startswith("compile shared/broken.py") for f in failures)
    assert any("cgi_removed_from_stdlib" in f for f in failures)
    assert result["needs"] == {"cryptography": ["shared.needs"]}
    assert result["imported"] == ["shared"]
    assert pyversions_probe.module_name(tmp_path, package / "__init__.py") == "shared"


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_other_versions_are_found_or_skipped(version: str) -> None:
    interpreter = pyversions.find_interpreter(version)
    if interpreter is None:
        pytest.skip(f"no python{version} on this machine")
    assert pyversions._reports_version(interpreter, version)


def test_a_newer_python_refuses_an_invalid_escape_sequence(tmp_path: Path) -> None:
    """3.12 warns (SyntaxWarning) where 3.11 was silent; the probe makes that a failure."""
    interpreter = pyversions.find_interpreter("3.12") or pyversions.find_interpreter("3.13")
    if interpreter is None:
        pytest.skip("no python3.12 or python3.13 on this machine")
    package = tmp_path / "shared"
    package.mkdir()
    (package / "__init__.py").write_text('PATTERN = "\\d+"\n')
    result = pyversions.probe(interpreter, [], root=tmp_path)
    failures = result["failures"]
    assert isinstance(failures, list)
    assert any("invalid escape sequence" in f for f in failures), failures
