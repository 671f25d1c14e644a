"""Deciding, from a record alone, what the engine must do with it. Pure and cheap.

Runs once per scanned DEK, so it compares strings instead of parsing URLs: a record belongs
to the key when its key id is the key's unversioned id followed by one 32-hex version
(case-insensitively, as vault hosts, key names and versions are).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from shared.crypto import WrapAlgorithm
from shared.rewrap._report import FailureReason
from shared.stores import DekRecord

_VERSION = re.compile(r"[0-9a-f]{32}")


class Action(Enum):
    REWRAP = "rewrap"
    CURRENT = "current"
    REPORT = "report"


@dataclass(frozen=True, slots=True)
class Triage:
    """The verdict on one record: rewrap from ``version``, no-op, or report ``reason``."""

    action: Action
    version: str = ""
    reason: str = ""
    detail: str = ""


_CURRENT = Triage(Action.CURRENT)


class RecordTriage:
    """Classifies records of one key against one target version."""

    def __init__(self, key_ref: str, target_version: str, *, allow_legacy_rsa1_5: bool) -> None:
        self._prefix = key_ref.lower() + "/"
        self._target = target_version.lower()
        self._allow_legacy = allow_legacy_rsa1_5

    def classify(self, record: DekRecord) -> Triage:
        """What to do with ``record`` (never raises)."""
        if record.problem is not None:
            return Triage(Action.REPORT, reason=FailureReason.UNPARSEABLE, detail=record.problem)
        key_id = record.key_id.lower()
        if not key_id.startswith(self._prefix):
            return Triage(
                Action.REPORT,
                reason=FailureReason.FOREIGN_KEY,
                detail="wrapped by another key than the one being rotated",
            )
        version = key_id[len(self._prefix) :]
        if not _VERSION.fullmatch(version):
            return Triage(
                Action.REPORT,
                reason=FailureReason.UNPARSEABLE,
                detail="key id has no valid version",
            )
        if version == self._target:
            return _CURRENT
        algorithm = record.algorithm
        if algorithm is None:
            return Triage(
                Action.REPORT,
                reason=FailureReason.UNSUPPORTED_ALGORITHM,
                detail="unknown wrap algorithm",
            )
        if algorithm is WrapAlgorithm.RSA1_5 and not self._allow_legacy:
            return Triage(
                Action.REPORT,
                reason=FailureReason.UNSUPPORTED_ALGORITHM,
                detail="RSA1_5 reads are disabled",
            )
        if not record.wrapped:
            return Triage(
                Action.REPORT, reason=FailureReason.UNPARSEABLE, detail="empty wrapped key"
            )
        return Triage(Action.REWRAP, version=version)


def rewrap_algorithm(source: WrapAlgorithm) -> WrapAlgorithm:
    """The algorithm of the new wrap: the record's own, except RSA1_5 (read-only) upgrades."""
    if source is WrapAlgorithm.RSA1_5:
        return WrapAlgorithm.RSA_OAEP_256
    return source
