"""Supported Python versions: stated once (pyproject's classifiers), said the same in the
README, and checked by ``make test`` (``devtools.pyversions``) for what this machine has."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

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


def test_each_interpreter_found_answers_to_its_version() -> None:
    """What the check calls python3.X is a 3.X: this interpreter always, and 3.12/3.13
    wherever the machine has them (a missing one: ``test_a_missing_interpreter_is_...``)."""
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = {v: pyversions.find_interpreter(v) for v in ("3.12", "3.13")}
    pairs = [(current, Path(sys.executable))]
    pairs += [(v, i) for v, i in found.items() if i is not None]
    for version, interpreter in pairs:
        assert pyversions._reports_version(interpreter, version), (version, interpreter)


def test_a_syntax_warning_is_a_failure_on_every_interpreter_found(tmp_path: Path) -> None:
    """The probe runs with SyntaxWarning as an error: ``is`` with a literal warns on every
    supported version (this interpreter always among them), and 3.12+ also warns on an
    invalid escape sequence where 3.11 was silent."""
    newer = [found for v in ("3.12", "3.13") if (found := pyversions.find_interpreter(v))]
    for interpreter in [Path(sys.executable), *newer]:
        package = tmp_path / interpreter.name / "shared"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("X = 1\nY = X is 1\n")
        result = pyversions.probe(interpreter, [], root=package.parent)
        failures = result["failures"]
        assert isinstance(failures, list)
        assert any('"is" with' in f for f in failures), (interpreter, failures)
    for interpreter in newer:
        package = tmp_path / f"escape-{interpreter.name}" / "shared"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text('PATTERN = "\\d+"\n')
        result = pyversions.probe(interpreter, [], root=package.parent)
        failures = result["failures"]
        assert isinstance(failures, list)
        assert any("invalid escape sequence" in f for f in failures), failures
