"""An application installs keyward with pip: the source distribution pyproject builds holds
``keyward`` and ``shared`` (nothing of the Function App, dev tooling or tests), declares
requirements.txt's pins, and ``from keyward import open_envelope`` works from it alone.

Built offline with the virtualenv's setuptools (``setuptools.build_meta``, the backend pip
would call), in a copy of the sources so the checkout gets no build artefacts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

_SOURCES = ("shared", "keyward", "pyproject.toml", "requirements.txt", "README.md")


def _build_sdist(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    for name in _SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    out = tmp_path / "dist"
    code = f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=source, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return out / done.stdout.strip().splitlines()[-1]


def test_the_sdist_holds_the_application_api_and_imports_alone(tmp_path: Path) -> None:
    sdist = _build_sdist(tmp_path)
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        archive.extractall(tmp_path / "unpacked", filter="data")
    top = names[0].split("/")[0]
    packaged = {name.split("/")[1] for name in names if name.count("/") >= 2}
    assert {"keyward", "shared"} <= packaged
    assert not packaged & {"functions", "devtools", "tests", "bench"}
    assert any(name.endswith("shared/application/__init__.py") for name in names)
    requires = (tmp_path / "unpacked" / top / "keyward.egg-info" / "requires.txt").read_text()
    assert "azure-data-tables==" in requires
    assert "azure-keyvault-keys==" in requires

    root = tmp_path / "unpacked" / top
    probe = (
        "import keyward, shared; "
        "print(keyward.__file__); print(shared.__file__); print(keyward.open_envelope.__name__)"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    keyward_file, shared_file, name = done.stdout.split()
    assert Path(keyward_file).is_relative_to(root)
    assert Path(shared_file).is_relative_to(root)
    assert name == "open_envelope"
