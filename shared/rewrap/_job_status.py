"""A job's status, its retry schedule and its id: what the sweep, the engine and the
verdict all decide on (kept apart from the state record in ``_job_state``, which re-exports
them)."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from enum import StrEnum

_JOB_ID_PREFIX = "rewrap-"
_JOB_ID_HEX = 32


#: Runs of a job that ended short of clean (failed items, DEKs left under older versions)
#: the sweep makes before it stops retrying on its own (``POST /api/rewrap`` with
#: ``"restart": true`` still restarts it). Recorded on each job as ``max_attempts``.
MAX_JOB_ATTEMPTS = 6
#: Wait before the sweep retries such a job: doubles per attempt (5, 10, 20, 40, 80 min...),
#: at most ``JOB_RETRY_MAX_SECONDS``. Throttling and conflicts pass; a retry right away would
#: meet the same vault.
JOB_RETRY_BASE_SECONDS = 300
JOB_RETRY_MAX_SECONDS = 6 * 3600


class JobStatus(StrEnum):
    RUNNING = "running"
    #: Ended clean: every DEK is at the target (or newer, or gone); nothing is left behind.
    COMPLETED = "completed"
    #: Ended, but items failed (throttled out, conflicts, vault or write errors): the sweep
    #: retries it (a fresh pass) with backoff, up to ``max_attempts`` runs.
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    #: Ended with no failed item, but DEKs are still under older versions (unreadable ones,
    #: or DEKs written under an old version while the job ran): retried like the above.
    INCOMPLETE = "incomplete"
    #: Stopped by a fault that is not one item's (store down, target refused); resumable: by
    #: the sweep with backoff, up to ``max_attempts`` failures in a row, unless ``refused``.
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        """Whether the job ran to its end (clean or not); a run returns it as is."""
        return self in _ENDED

    @property
    def short_of_clean(self) -> bool:
        """Ended, but not clean: the sweep retries it with backoff, bounded."""
        return self in _SHORT_OF_CLEAN


_SHORT_OF_CLEAN = frozenset({JobStatus.COMPLETED_WITH_FAILURES, JobStatus.INCOMPLETE})
_ENDED = frozenset({JobStatus.COMPLETED, *_SHORT_OF_CLEAN})


def retry_delay(attempts: int) -> timedelta:
    """How long after its ``attempts``-th run ended short of clean a job is retried."""
    exponent = min(max(attempts, 1) - 1, 16)
    return timedelta(seconds=min(JOB_RETRY_MAX_SECONDS, JOB_RETRY_BASE_SECONDS * 2**exponent))


def rewrap_job_id(key_ref: str, target_version: str, scope: str = "") -> str:
    """The id of the job that rewraps key ``key_ref`` to ``target_version`` in ``scope``.

    ``scope`` names the DEK store (the engine passes ``store.name``): one key's DEKs may live
    in several stores (a table, blob containers), each its own job with its own checkpoint.
    Deterministic and case-insensitive (vault hosts, key names and versions are), safe as a
    Table row key, a file name or a queue message field.
    """
    identity = f"{key_ref.strip().rstrip('/').lower()}|{target_version.strip().lower()}"
    if scope:
        identity = f"{scope}|{identity}"
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:_JOB_ID_HEX]
    return _JOB_ID_PREFIX + digest
