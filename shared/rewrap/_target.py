"""Choosing the target version, and knowing which versions are older or newer than it.

Rewrap never goes backwards: whatever version a request (or an out-of-order event) names,
the target is the newest enabled version as the vault reports it now. A request for an older
enabled version is redirected to the newest; a request for a missing or disabled version is
refused. A DEK found at a version newer than the target (rotated during the job) is left
alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.errors import KeyNotFoundError, KeywardError
from shared.rewrap._budget import VaultBudget, vault_budget
from shared.rewrap._errors import RewrapTargetError, TargetVersionNotFoundError
from shared.rewrap._job_state import rewrap_job_id
from shared.rewrap._ports import KeyVersionSource, KeyVersionView


def normalize_key_ref(key_ref: str) -> str:
    """``key_ref`` without surrounding blanks or a trailing slash."""
    return key_ref.strip().rstrip("/")


@dataclass(frozen=True)
class RewrapPlan:
    """The resolved target of a rewrap request.

    Attributes:
        key_ref: the unversioned key id.
        requested_version: what the caller asked for (``None``: "the newest").
        target_version: the newest enabled version, confirmed with the vault.
        versions: the vault's versions of the key when the plan was made.
        budget: the vault's published operation budget for the target's type and size.
    """

    key_ref: str
    requested_version: str | None
    target_version: str
    versions: Mapping[str, KeyVersionView]
    budget: VaultBudget

    @property
    def target_key_id(self) -> str:
        return f"{self.key_ref}/{self.target_version}"

    def job_id(self, scope: str = "") -> str:
        """The job's id for DEK store ``scope`` (see :func:`rewrap_job_id`)."""
        return rewrap_job_id(self.key_ref, self.target_version, scope)

    @property
    def redirected(self) -> bool:
        """Whether the request named an older version and the plan moved it to the newest."""
        return self.requested_version is not None and self.requested_version != self.target_version

    @property
    def target(self) -> KeyVersionView:
        return self.versions[self.target_version]


def unusable_reason(view: KeyVersionView, now: datetime) -> str | None:
    """Why a version may not be a target now (``None``: its attributes allow it).

    ``view.enabled`` is the source's own judgement (with its clock: the emulator's in tests);
    ``now`` is the caller's. Either one saying "not usable" refuses.
    """
    raw_enabled = view.attributes_enabled
    if raw_enabled is False or (raw_enabled is None and not view.enabled):
        return "disabled"
    if view.not_before is not None and now < view.not_before:
        return f"not valid before {view.not_before.isoformat()} (nbf)"
    if view.expires_on is not None and now >= view.expires_on:
        return f"expired at {view.expires_on.isoformat()} (exp)"
    if not view.enabled:
        if view.expires_on is not None and (view.not_before is None or now >= view.not_before):
            return f"expired by the vault's clock (exp {view.expires_on.isoformat()})"
        return "outside its nbf/exp window by the vault's clock"
    return None


async def resolve_target(
    keys: KeyVersionSource, key_ref: str, requested_version: str | None
) -> RewrapPlan:
    """Confirm the target with the vault.

    Raises:
        RewrapTargetError: the requested version does not exist or is not enabled, or the
            vault's answers disagree (its newest enabled version is not an enabled version).
        ServiceError: the vault could not be asked.
    """
    key_ref = normalize_key_ref(key_ref)
    requested = requested_version.strip().lower() if requested_version else None
    if requested is None:
        newest = (await keys.newest_enabled_version(key_ref)).lower()
        versions = await _listing(keys, key_ref)
    else:
        # The listing first: a request for a version the vault does not have (a stale or
        # forged event) is refused on that one listing, not after a second one.
        versions = await _listing(keys, key_ref)
        if not any(info.enabled for info in versions.values()):
            # As ``newest_enabled_version`` would have answered first.
            raise KeyNotFoundError(f"{key_ref} has no enabled version", status=404)
        info = versions.get(requested)
        if info is None:
            raise TargetVersionNotFoundError(
                f"version {requested} of {key_ref} does not exist; refusing to rewrap to it",
                key_ref=key_ref,
                version=requested,
                exists=False,
            )
        if not info.enabled:
            reason = unusable_reason(info, datetime.now(UTC)) or "outside its nbf/exp window"
            raise RewrapTargetError(
                f"version {requested} of {key_ref} is not enabled ({reason}); "
                "refusing to rewrap to it",
                key_ref=key_ref,
                version=requested,
                exists=True,
            )
        newest = (await keys.newest_enabled_version(key_ref)).lower()
        if newest not in versions:
            versions = await _listing(keys, key_ref)  # rotated between the two answers
    newest_info = versions.get(newest)
    if newest_info is None or not newest_info.enabled:
        raise RewrapTargetError(
            f"the vault named {newest} as the newest enabled version of {key_ref}, "
            "but does not list it as enabled; refusing to guess",
            key_ref=key_ref,
            version=newest,
            exists=False,
        )
    budget = vault_budget(newest_info.key_type, newest_info.key_size)
    return RewrapPlan(key_ref, requested, newest, versions, budget)


async def _listing(keys: KeyVersionSource, key_ref: str) -> dict[str, KeyVersionView]:
    """The vault's versions of ``key_ref`` by lower-case version (one listing)."""
    return {info.version.lower(): info for info in await keys.versions(key_ref)}


class VersionBook:
    """Answers "is this version newer than the target?", asking the vault about unknown ones.

    A version the plan's snapshot does not know may have been created after the plan (newer:
    leave its DEKs alone) or deleted long ago (older: its DEKs are unreadable). The book asks
    the vault once per unknown version; concurrent askers wait for the same answer, so no DEK
    is rewrapped backwards while the answer is pending.
    """

    def __init__(self, keys: KeyVersionSource, plan: RewrapPlan) -> None:
        self._keys = keys
        self._key_ref = plan.key_ref
        self._versions = dict(plan.versions)
        self._target_created = plan.target.created
        self._lookups: dict[str, asyncio.Task[None]] = {}

    async def is_ahead_of_target(self, version: str) -> bool:
        """Whether ``version`` is newer than the target (its DEKs must not be rewrapped)."""
        info = self._versions.get(version)
        if info is None:
            lookup = self._lookups.get(version)
            if lookup is None:
                lookup = asyncio.ensure_future(self._refresh())
                self._lookups[version] = lookup
            await asyncio.shield(lookup)
            info = self._versions.get(version)
        return info is not None and info.created > self._target_created

    def known(self, version: str) -> KeyVersionView | None:
        """What the book knows of ``version`` (after any lookup), or ``None``."""
        return self._versions.get(version)

    async def _refresh(self) -> None:
        try:
            fresh = await self._keys.versions(self._key_ref)
        except KeywardError:
            return  # unknown stays unknown: its DEKs go on to unwrap, which says why
        for info in fresh:
            self._versions.setdefault(info.version.lower(), info)
