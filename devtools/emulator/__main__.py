"""``python -m devtools.emulator --port N --state FILE``: run the emulator in the foreground.

At start it prints the CA bundle path and one machine-readable line,
``KEYWARD_EMULATOR_READY {"url": ..., "ca_path": ..., "port": ..., "pid": ...}``, and (with
``--ready-file``) writes the same JSON to a file, which is what the pytest fixture waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from devtools.emulator.server import EmulatorServer, load_state

READY_PREFIX = "KEYWARD_EMULATOR_READY "


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.emulator", description=__doc__)
    parser.add_argument("--port", type=int, default=8443, help="main HTTPS port (0: any free)")
    parser.add_argument("--state", type=Path, default=None, help="JSON state file (load/save)")
    parser.add_argument("--ready-file", type=Path, default=None, help="write ready JSON here")
    parser.add_argument(
        "--tls-dir",
        type=Path,
        default=None,
        help="where to write ca.pem and the server key (default: beside --state, else a temp dir)",
    )
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    tls_dir = args.tls_dir
    if tls_dir is None:
        if args.state is not None:
            tls_dir = args.state.resolve().parent / "emulator-tls"
        else:
            tls_dir = Path(tempfile.mkdtemp(prefix="keyward-emulator-"))
    server = EmulatorServer(
        load_state(args.state), port=args.port, tls_dir=tls_dir, state_file=args.state
    )
    await server.start()
    info = server.ready_info()
    print(f"keyward emulator on {server.url}", flush=True)
    print(f"CA bundle: {server.ca_path}  (REQUESTS_CA_BUNDLE / connection_verify)", flush=True)
    print(READY_PREFIX + json.dumps(info), flush=True)
    if args.ready_file is not None:
        temp = args.ready_file.with_suffix(".tmp")
        temp.write_text(json.dumps(info))
        os.replace(temp, args.ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
