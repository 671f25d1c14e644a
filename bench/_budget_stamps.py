"""(f): when keyward *sent* each unwrap, from its own processes, to compare with the vault.

The emulator counts a request when its handler admits it; a loaded emulator admits in
bursts, so its 10-second count can exceed what the clients sent in any 10 seconds. To tell
the two apart, each worker process notes the moment every unwrap leaves the engine (after
the rate limiter let it go) by wrapping the context's Key Vault adapter: :class:`StampedKeys`
forwards every call unchanged and only counts ``unwrap`` calls of its wrappers, in 0.1 s bins.
:class:`StampFile` appends the bins to a file once a second (flushed), so a worker killed
with SIGKILL leaves its sends up to its last second behind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from pathlib import Path
from typing import Any

#: Bin width in seconds (stamps are wall-clock times, comparable across processes).
BIN_SECONDS = 0.1


class _Bins:
    def __init__(self) -> None:
        self.counts: collections.Counter[int] = collections.Counter()

    def note(self) -> None:
        self.counts[int(time.time() / BIN_SECONDS)] += 1


class StampedWrapper:
    """An unwrapper whose ``unwrap`` calls are counted; everything else is the inner one's."""

    def __init__(self, inner: Any, bins: _Bins) -> None:
        self._inner = inner
        self._bins = bins

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def unwrap(self, wrapped: bytes) -> Any:
        self._bins.note()
        return await self._inner.unwrap(wrapped)


class StampedKeys:
    """The context's Key Vault adapter, with its wrappers' unwraps counted."""

    def __init__(self, inner: Any, bins: _Bins) -> None:
        self._inner = inner
        self._bins = bins

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        return StampedWrapper(await self._inner.wrapper(*args, **kwargs), self._bins)


class StampFile:
    """Appends ``bin count`` lines for the bins that closed, once a second."""

    def __init__(self, path: str) -> None:
        self.bins = _Bins()
        self._path = Path(path)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    def _flush(self, everything: bool = False) -> None:
        now = int(time.time() / BIN_SECONDS)
        done = [b for b in self.bins.counts if everything or b < now]
        if done:
            with self._path.open("a") as out:
                out.writelines(f"{b} {self.bins.counts.pop(b)}\n" for b in sorted(done))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._flush()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._flush(everything=True)


def read_stamps(paths: list[Path]) -> dict[int, int]:
    """Every process's bins, summed (a missing file: a process that sent nothing)."""
    total: collections.Counter[int] = collections.Counter()
    for path in paths:
        if path.exists():
            for line in path.read_text().splitlines():
                stamp, count = line.split()
                total[int(stamp)] += int(count)
    return dict(total)


def max_sent_per_window(bins: dict[int, int], window_seconds: float) -> int:
    """Most unwraps sent in any window of ``window_seconds`` (sliding by one bin)."""
    if not bins:
        return 0
    width = round(window_seconds / BIN_SECONDS)
    first, last = min(bins), max(bins)
    best = running = 0
    for b in range(first, last + 1):
        running += bins.get(b, 0) - bins.get(b - width, 0)
        best = max(best, running)
    return best
