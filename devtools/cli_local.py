"""DEVELOPMENT ONLY: the operator CLI with RSA keys from a local directory instead of Key Vault.

``python -m devtools.cli_local --local-keys DIR <keyward command and options>`` runs
:func:`shared.cli.main` with a key source loaded from ``DIR/manifest.json`` (see
``devtools.local_keys``). It lives here, not in the CLI, because private keys on disk are
what production must never have: the product package cannot even import this module.
Example::

    python -m devtools.cli_local --local-keys .keyward/keys rewrap --vault contoso-kv \\
        --key payments --store sqlite:.keyward/deks.sqlite --dry-run
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from devtools.local_keys import load_local_keys
from shared.cli import main as cli_main
from shared.cli._factories import Closer, KeySourceOpener, KeyTarget
from shared.rewrap import KeyVersionSource


def local_key_opener(directory: Path) -> KeySourceOpener:
    """A ``KeySourceOpener`` serving the keys in ``directory`` (loaded when a command asks)."""

    async def open_keys(
        target: KeyTarget, ca_bundle: str | None
    ) -> tuple[KeyVersionSource, Closer]:
        return load_local_keys(directory), _nothing_to_close

    return open_keys


async def _nothing_to_close() -> None:
    return None


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    """Run a keyward command with local keys; returns its exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.cli_local",
        description="DEVELOPMENT ONLY: keyward's CLI with local RSA keys instead of Key Vault.",
    )
    parser.add_argument(
        "--local-keys",
        type=Path,
        metavar="DIR",
        required=True,
        help="use RSA keys from DIR/manifest.json instead of Key Vault",
    )
    known, rest = parser.parse_known_args(argv)
    return cli_main(rest, console, open_keys=local_key_opener(known.local_keys))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
