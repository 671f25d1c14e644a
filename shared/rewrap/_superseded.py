"""When a key version stops receiving new wraps from writers: the verdict's "not yet" rule.

Why: applications wrap new DEKs (and new KEKs) under the newest vault version *they have
cached*, so for a while after a rotation new rows still land under the version before it,
possibly after the verdict's count. A count that began too soon could call that version
safe to disable while a row wrapped under it is on its way. So a version superseded less
than the writers' wait ago (``shared.records._write_bound.superseded_wait_seconds``: their
newest-version refresh, mode TTL and write bound) is not judged: the verdict says when it can
be. Pure; the wait is an input (``shared.rewrap`` may not import ``shared.records``).

"Superseded at" is when the next newer enabled version became usable: its ``created`` (or
its ``nbf`` when later). Versions are read from the vault's version list the verdict already
reads; a version the vault no longer lists is not judged by this rule (nothing can wrap
under it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from shared.rewrap._ports import KeyVersionView


def _usable_from(info: KeyVersionView) -> datetime:
    not_before = info.not_before
    return max(info.created, not_before) if not_before is not None else info.created


def superseded_at(version: str, versions: Sequence[KeyVersionView]) -> datetime | None:
    """When the next newer enabled version of ``version`` became usable (``None``: no newer
    enabled version, or the vault does not list ``version``).

    Key Vault's ``created`` has one-second resolution, so the order within a second is
    unknown: a strictly newer version decides when there is one (the later, safe reading for
    a version that may have won the tie); otherwise a version created in the same second.
    """
    wanted = version.lower()
    own = next((v for v in versions if v.version.lower() == wanted), None)
    if own is None:
        return None
    others = [v for v in versions if v.enabled and v.version.lower() != wanted]
    newer = [_usable_from(v) for v in others if v.created > own.created]
    if not newer:
        newer = [_usable_from(v) for v in others if v.created == own.created]
    return min(newer) if newer else None


def answerable_at(
    version: str, versions: Sequence[KeyVersionView], wait: timedelta
) -> datetime | None:
    """From when a count of ``version`` can be trusted: ``wait`` after it was superseded
    (``None``: not superseded, the newest-version blocker or nothing applies). The wait's
    floor is the caller's (``Settings.superseded_wait``); only a development emulator whose
    clock was moved ahead of keyward's is given a negative one.
    """
    superseded = superseded_at(version, versions)
    return None if superseded is None else superseded + wait
