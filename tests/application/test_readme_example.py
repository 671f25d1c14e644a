"""The README's application example runs as written, against Azurite and the emulator.

The block is taken from README.md verbatim (between its marker and the closing fence) and run
with ``exec``; only what Azure would give an application differs: ``keyward.open_envelope``
gets the emulator's credential, allow-list entry and CA (``DefaultAzureCredential`` and a
``*.vault.azure.net`` key URL need none), through a wrapper swapped in for the test.
"""

from __future__ import annotations

import functools
import re

import pytest

import keyward
from tests.application.conftest import AppWorld
from tests.conftest import ROOT

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

MARKER = "<!-- application-example:"
#: "Under ten lines" of code (``ruff format`` lays the block out with PEP 8's blank lines).
MAX_LINES = 9


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(re.escape(MARKER) + r"[^\n]*\n```python\n(.*?)\n```", readme, re.DOTALL)
    assert match, "README.md has no application example block"
    return match.group(1)


def test_the_example_is_under_ten_lines() -> None:
    lines = [line for line in readme_example().splitlines() if line.strip()]
    assert len(lines) <= MAX_LINES, lines


def test_the_readme_example_encrypts_and_reads_a_record(
    world: AppWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    options = world.options()
    options.pop("connection_string")
    monkeypatch.setattr(keyward, "open_envelope",
                        functools.partial(keyward.open_envelope, **options))  # fmt: skip
    monkeypatch.setenv("KEYWARD_KEY", world.key_ref)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", world.connection_string)
    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "readme_example"})
    assert capsys.readouterr().out.strip() == "b'amount: 1200 EUR'"
