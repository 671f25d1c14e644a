"""``python -m devtools.localhost``: run function_app locally, like ``func start``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from devtools.localhost.host import HostKeys, LocalFunctionsHost, load_local_settings

ROOT = Path(__file__).resolve().parents[2]


async def _serve(args: argparse.Namespace) -> None:
    settings = load_local_settings(Path(args.settings))
    settings.update({k: v for k, v in os.environ.items() if k not in settings})
    os.environ.update(settings)
    sys.path.insert(0, str(ROOT))
    from function_app import app

    host_json = json.loads((ROOT / "host.json").read_text())
    host = LocalFunctionsHost(
        app,
        settings=settings,
        host_json=host_json,
        port=args.port,
        keys=HostKeys(),
        run_timers=not args.no_timers,
    )
    await host.start()
    ready = {
        "url": host.base_url,
        "master_key": host.keys.master,
        "function_key": host.keys.function,
        "eventgrid_key": host.keys.eventgrid,
    }
    if args.ready_file:
        Path(args.ready_file).write_text(json.dumps(ready))
    print(f"keyward local host listening on {host.base_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await host.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--settings", default=str(ROOT / "local.settings.json"))
    parser.add_argument("--ready-file", default="")
    parser.add_argument("--no-timers", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
