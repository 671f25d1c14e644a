"""Comparing an event subscription as found against keyward's: one finding per aspect.

Each aspect (destination, event types, each advanced filter, retry policy, dead-letter
destination) is judged on its own, so a deployment that lost one filter is told exactly
that, and ``connect-vault`` rewrites a subscription only when some aspect is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.onboarding._requirements import DeadLetterTarget, StringInFilter, SubscriptionSpec


@dataclass(frozen=True)
class AdvancedFilter:
    """Any advanced filter as found: its operator type (``StringIn``...), key and values."""

    operator: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class FoundSubscription:
    """An event subscription as ARM returned it (only what keyward judges)."""

    name: str
    endpoint_type: str
    function_id: str | None
    included_event_types: tuple[str, ...] | None
    advanced_filters: tuple[AdvancedFilter, ...]
    max_delivery_attempts: int | None
    event_ttl_minutes: int | None
    dead_letter: DeadLetterTarget | None


@dataclass(frozen=True)
class Finding:
    """One aspect of one subscription: right (``ok``) or what is wrong (``detail``)."""

    aspect: str
    ok: bool
    detail: str


def _same_id(a: str | None, b: str | None) -> bool:
    return (a or "").rstrip("/").lower() == (b or "").rstrip("/").lower()


def subscription_findings(want: SubscriptionSpec, found: FoundSubscription) -> list[Finding]:
    """Every aspect of ``found`` against ``want``, in a fixed order."""
    findings = [_destination(want, found), _event_types(want, found)]
    findings.extend(_filter(wanted, found) for wanted in want.template.advanced_filters)
    wanted_keys = {f.key.lower() for f in want.template.advanced_filters}
    for extra in found.advanced_filters:
        if extra.key.lower() not in wanted_keys:
            findings.append(
                Finding(f"filter {extra.key}", False, "an advanced filter keyward does not set")
            )
    findings.append(_retry(want, found))
    findings.append(_dead_letter(want, found))
    return findings


def _destination(want: SubscriptionSpec, found: FoundSubscription) -> Finding:
    if found.endpoint_type.lower() != "azurefunction":
        return Finding(
            "destination", False, f"endpoint type {found.endpoint_type}, not AzureFunction"
        )
    if not _same_id(found.function_id, want.function_id):
        return Finding("destination", False, f"delivers to {found.function_id}")
    return Finding("destination", True, want.function_id)


def _event_types(want: SubscriptionSpec, found: FoundSubscription) -> Finding:
    wanted = want.template.included_event_types
    if found.included_event_types is None:
        return Finding("event types", False, "every event type (no includedEventTypes)")
    have = {t.lower() for t in found.included_event_types}
    missing = [t for t in wanted if t.lower() not in have]
    if missing:
        return Finding("event types", False, "missing " + ", ".join(missing))
    return Finding("event types", True, ", ".join(wanted))


def _filter(wanted: StringInFilter, found: FoundSubscription) -> Finding:
    aspect = f"filter {wanted.key}"
    same_key = [f for f in found.advanced_filters if f.key.lower() == wanted.key.lower()]
    if not same_key:
        return Finding(aspect, False, f"missing: {wanted.describe()}")
    if len(same_key) > 1 or same_key[0].operator.lower() != "stringin":
        shown = ", ".join(f"{f.operator} {' '.join(f.values)}" for f in same_key)
        return Finding(aspect, False, f"found {shown}, want {wanted.describe()}")
    have = {v.lower() for v in same_key[0].values}
    missing = [v for v in wanted.values if v.lower() not in have]
    if missing:
        return Finding(aspect, False, "missing values " + ", ".join(missing))
    return Finding(aspect, True, wanted.describe())


def _retry(want: SubscriptionSpec, found: FoundSubscription) -> Finding:
    have = (found.max_delivery_attempts, found.event_ttl_minutes)
    wanted = (want.max_delivery_attempts, want.event_ttl_minutes)
    text = f"max delivery attempts {have[0]}, event TTL {have[1]} min"
    if have != wanted:
        return Finding("retry policy", False, f"{text}; want {wanted[0]}, {wanted[1]} min")
    return Finding("retry policy", True, text)


def _dead_letter(want: SubscriptionSpec, found: FoundSubscription) -> Finding:
    wanted, have = want.dead_letter, found.dead_letter
    if wanted is None:
        shown = have.describe() if have else "none (KEYWARD_DEADLETTER_CONTAINER unset)"
        return Finding("dead-letter destination", True, shown)
    if have is None:
        return Finding("dead-letter destination", False, f"none; want {wanted.describe()}")
    if not _same_id(have.account_id, wanted.account_id) or have.container != wanted.container:
        return Finding(
            "dead-letter destination", False, f"{have.describe()}; want {wanted.describe()}"
        )
    return Finding("dead-letter destination", True, wanted.describe())
