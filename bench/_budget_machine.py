"""(f) on a shared 2-core machine: what the stand-ins for remote services get of the CPU.

In production the vault, the storage account and the vault's application are other
machines: none of them competes with keyward for its host's CPU, and Key Vault counts a
request when it arrives. Here they are processes beside keyward's workers and beside other
engineers' test suites (load averages of 5-13 on 2 cores). A starved emulator answers late
and then in bursts: it admits seconds' worth of requests at once, so its sliding 10-second
count (what it throttles on) can exceed what any client sent in 10 seconds, and a starved
application is late. Both would be the bench's faults, not keyward's. So the run can give
the emulator, Azurite and the application process a higher priority (a lower nice value;
``--budget-nice``), which they use only for the work they have; keyward's worker processes
stay at the default priority and compete like any tenant of a shared host.

:func:`service_cpu` reads how much CPU the emulator and Azurite got (``/proc/<pid>/stat``),
reported with the figures so a reader can tell a starved vault from a slow keyward.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The service processes among this process's descendants, by a word of their command line.
SERVICES = ("devtools.emulator", "azurite")


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, CPU seconds), for every process we may read."""
    ticks = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        table[int(entry.name)] = (int(fields[1]), command, cpu)
    return table


def service_pids() -> dict[str, list[int]]:
    """The emulator's and Azurite's pids among this process's descendants (a launcher may
    sit in between, so grandchildren too)."""
    table = _processes()
    ours = {os.getpid()}
    for _ in range(3):
        ours |= {pid for pid, (parent, _, _) in table.items() if parent in ours}
    found: dict[str, list[int]] = {}
    for pid in sorted(ours - {os.getpid()}):
        for name in SERVICES:
            if name in table[pid][1]:
                found.setdefault(name, []).append(pid)
    return found


def service_cpu() -> dict[str, float]:
    """CPU seconds so far of the emulator and of Azurite."""
    table = _processes()
    return {
        name: sum(table[pid][2] for pid in pids if pid in table)
        for name, pids in service_pids().items()
    }


def prioritize(pids: list[int], nice: int) -> None:
    """Set the nice value of ``pids`` (processes this run started); 0 leaves them as is."""
    if nice:
        for pid in pids:
            os.setpriority(os.PRIO_PROCESS, pid, nice)
