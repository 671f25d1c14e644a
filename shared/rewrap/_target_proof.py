"""Proving the target version before the first write: its attributes, its key_ops, a round trip.

The vault's list of versions says a version is "enabled"; that is not proof that DEKs wrapped
under it can be read back. Before a job writes its first batch (and again at the start of
every slice, since an operator may change the version meanwhile) the engine:

1. reads the version itself (``GET /keys/{name}/{version}``: attributes and ``key_ops``) and
   refuses it when it is disabled, not yet valid (``nbf``), expired (``exp``), or its
   ``key_ops`` lack ``unwrapKey`` (without it nothing wrapped under it could ever be unwrapped:
   Key Vault answers 403 ``KeyOperationForbidden``), or lack ``wrapKey`` where keyward wraps in
   the vault (AES keys; RSA wraps are local with the public key);
2. proves one round trip: wraps a fresh random probe key the way the engine wraps DEKs
   (locally for RSA), unwraps it *in the vault*, and compares key check values.

Any failure raises :class:`RewrapTargetError` with the specific reason, before any DEK is
touched. The probe key is random, used once and wiped; it never protected data.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from shared.crypto import DEFAULT_WRAP_ALGORITHM, DataKey, WrapAlgorithm
from shared.errors import KeywardError, ServiceError
from shared.rewrap._deadline import SliceDeadlineError
from shared.rewrap._errors import RewrapTargetError
from shared.rewrap._ports import KeyVersionSource, KeyVersionView
from shared.rewrap._retry import VaultCaller
from shared.rewrap._target import RewrapPlan, unusable_reason

#: Key types keyward wraps *in the vault* (the SDK must not wrap them locally).
VAULT_WRAPPED_TYPES = frozenset({"oct", "oct-HSM"})


def _refuse(plan: RewrapPlan, reason: str) -> RewrapTargetError:
    return RewrapTargetError(
        f"target {plan.target_key_id} {reason}; refusing to rewrap to it",
        key_ref=plan.key_ref,
        version=plan.target_version,
    )


def check_target_facts(plan: RewrapPlan, view: KeyVersionView, now: datetime) -> None:
    """Refuse a target whose attributes or ``key_ops`` cannot carry DEKs.

    Raises:
        RewrapTargetError: disabled, not yet valid, expired, or an operation missing.
    """
    reason = unusable_reason(view, now)
    if reason is not None:
        raise _refuse(plan, f"is {reason}")
    ops = view.key_ops
    if ops is None:
        return  # the source does not say: the round trip decides
    if "unwrapKey" not in ops:
        raise _refuse(
            plan, f"has key_ops {list(ops)} without unwrapKey: nothing wrapped under it is readable"
        )
    if view.key_type in VAULT_WRAPPED_TYPES and "wrapKey" not in ops:
        raise _refuse(plan, f"has key_ops {list(ops)} without wrapKey, and it wraps in the vault")


def probe_algorithm(view: KeyVersionView) -> WrapAlgorithm:
    """The algorithm the engine would wrap with under this key type."""
    if view.key_type in VAULT_WRAPPED_TYPES:
        return WrapAlgorithm.A256KW
    return DEFAULT_WRAP_ALGORITHM


async def confirm_target(
    keys: KeyVersionSource, plan: RewrapPlan, caller: VaultCaller, *, now: datetime
) -> None:
    """Check the target's facts, then prove one wrap/unwrap round trip through the vault.

    Raises:
        RewrapTargetError: the target is refused (the reason says why).
        ServiceError: the vault could not be asked (transient; the job resumes later).
        SliceDeadlineError: the slice ended while waiting on the vault.
    """
    try:
        view = await caller.call(lambda: keys.key_version(plan.target_key_id))
    except ServiceError as error:
        if error.transient:
            raise
        raise _refuse(plan, f"could not be read ({_name(error)})") from None
    check_target_facts(plan, view, now)
    algorithm = probe_algorithm(view)
    probe = DataKey.generate()
    try:
        expected = probe.kcv
        try:
            wrapper = await keys.wrapper(plan.target_key_id, algorithm)
            wrapped = await caller.call(lambda: wrapper.wrap(probe))
            returned = await caller.call(lambda: wrapper.unwrap(wrapped))
        except ServiceError as error:
            if error.transient:
                raise
            raise _refuse(plan, f"failed the round-trip probe ({_name(error)})") from None
        except SliceDeadlineError:
            raise
        except KeywardError as error:
            raise _refuse(plan, f"failed the round-trip probe ({_name(error)})") from None
        try:
            same = hmac.compare_digest(returned.kcv, expected)
        finally:
            returned.wipe()
    finally:
        probe.wipe()
    if not same:
        raise _refuse(plan, "failed the round-trip probe (the vault unwrapped another key)")


def _name(error: KeywardError) -> str:
    parts = [type(error).__name__]
    if isinstance(error, ServiceError):
        parts.extend(str(p) for p in (error.status, error.code) if p)
    return " ".join(parts)
