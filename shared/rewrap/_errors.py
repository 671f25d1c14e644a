"""Errors the rewrap engine raises on purpose, all inside keyward's one hierarchy."""

from __future__ import annotations

from shared.errors import KeywardError


class RewrapTargetError(KeywardError):
    """The requested target version may not be rewrapped to (missing or not enabled).

    Attributes:
        key_ref: the unversioned key id.
        version: the version that was refused.
        exists: the vault has that version (refused for what it is, not for being absent):
            the engine records the refusal on the version's job.
    """

    def __init__(self, message: str, *, key_ref: str, version: str, exists: bool = True) -> None:
        super().__init__(message)
        self.key_ref = key_ref
        self.version = version
        self.exists = exists


class TargetVersionNotFoundError(RewrapTargetError):
    """The requested version is not among the key's versions: it never existed (or went
    with its key). Unlike a disabled version, asking again will not change the answer."""


class JobLeaseError(KeywardError):
    """Another worker holds the job's lease, or took it over while this one was running.

    Attributes:
        job_id: the job concerned.
        owner: the worker that holds the lease, when known.
    """

    def __init__(self, message: str, *, job_id: str, owner: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.owner = owner
