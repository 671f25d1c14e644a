"""``python -m tests.campaign --scenarios 500 --seed 11``: the full retirement campaign.

Starts one Azurite (or uses ``KEYWARD_AZURITE_CONNECTION_STRING``), runs the scenarios and
prints the figures; exits 1 if any DEK, blob or snapshot was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time

from devtools.azurite import azurite_connection
from devtools.emulator.process import running_emulator
from tests.campaign._oracle import Features
from tests.campaign._run import campaign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="keyward's retirement campaign")
    parser.add_argument("--scenarios", type=int, default=500)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--first", type=int, default=0, help="index of the first scenario")
    parser.add_argument("--steps", type=int, default=14, help="random steps per scenario")
    parser.add_argument(
        "--vault",
        choices=("local", "emulator"),
        default="local",
        help="the key's vault: in-process local keys, or keyward's emulator (real adapter)",
    )
    parser.add_argument(
        "--force-all-kinds",
        action="store_true",
        help="generate every scenario kind even if the stores cannot show it (expect losses)",
    )
    args = parser.parse_args(argv)
    force = Features(True, True) if args.force_all_kinds else None
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        azurite = stack.enter_context(azurite_connection())
        emulator = stack.enter_context(running_emulator()) if args.vault == "emulator" else None
        figures, features = asyncio.run(
            campaign(
                azurite.connection_string,
                scenarios=args.scenarios,
                seed=args.seed,
                steps=args.steps,
                first=args.first,
                force=force,
                emulator=emulator,
            )
        )
    print(f"vault={args.vault} seed={args.seed} first={args.first} {figures.line()}")
    print(f"features: spellings={features.spellings} immutable_copies={features.immutable_copies}")
    print(f"elapsed {time.monotonic() - started:.0f} s")
    for what in figures.lost:
        print(f"LOST: {what}")
    return 1 if figures.deks_lost or figures.retired_writes else 0


if __name__ == "__main__":
    sys.exit(main())
