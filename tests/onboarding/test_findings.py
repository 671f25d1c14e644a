"""The pure onboarding domain: what keyward requires, and how a found subscription compares.

Each aspect is judged on its own (doctor must name exactly what is wrong); the requirements
agree with the event types keyward's parser acts on; assignment names are deterministic.
"""

from __future__ import annotations

import dataclasses
import re
import uuid

import pytest

from shared.events import KNOWN_EVENT_TYPES
from shared.onboarding import (
    ACCESS_SUBSCRIPTION,
    CRYPTO_SERVICE_ENCRYPTION_USER,
    KEY_VAULT_READER,
    NEVER_GRANTED,
    SUBSCRIPTION_NAME_MAX,
    VAULT_SUBSCRIPTION,
    AdvancedFilter,
    DeadLetterTarget,
    FoundSubscription,
    SubscriptionSpec,
    assignment_name,
    delivers_to_app,
    function_resource_id,
    roles_for,
    subscription_findings,
    subscription_name,
)

APP = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app"
DEAD = DeadLetterTarget(
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
    "deadletters",
)
SPEC = SubscriptionSpec(ACCESS_SUBSCRIPTION, function_resource_id(APP), DEAD)


def _as_wanted() -> FoundSubscription:
    return FoundSubscription(
        name=SPEC.name,
        endpoint_type="AzureFunction",
        function_id=SPEC.function_id.upper(),  # ARM ids ignore case
        included_event_types=ACCESS_SUBSCRIPTION.included_event_types,
        advanced_filters=tuple(
            AdvancedFilter("StringIn", f.key, f.values)
            for f in ACCESS_SUBSCRIPTION.advanced_filters
        ),
        max_delivery_attempts=30,
        event_ttl_minutes=1440,
        dead_letter=DEAD,
    )


def test_a_subscription_as_wanted_has_every_aspect_right() -> None:
    findings = subscription_findings(SPEC, _as_wanted())
    assert [f.aspect for f in findings] == [
        "destination",
        "event types",
        "filter data.operationName",
        "retry policy",
        "dead-letter destination",
    ]
    assert all(f.ok for f in findings)


@pytest.mark.parametrize(
    ("change", "aspect"),
    [
        ({"function_id": APP + "/functions/other"}, "destination"),
        ({"endpoint_type": "WebHook"}, "destination"),
        ({"included_event_types": ACCESS_SUBSCRIPTION.included_event_types[:1]}, "event types"),
        ({"included_event_types": None}, "event types"),
        ({"advanced_filters": ()}, "filter data.operationName"),
        ({"max_delivery_attempts": 10}, "retry policy"),
        ({"event_ttl_minutes": 60}, "retry policy"),
        ({"dead_letter": None}, "dead-letter destination"),
        ({"dead_letter": DeadLetterTarget(DEAD.account_id, "other")}, "dead-letter destination"),
    ],
)
def test_one_change_is_one_wrong_aspect(change: dict[str, object], aspect: str) -> None:
    found = dataclasses.replace(_as_wanted(), **change)  # type: ignore[arg-type]
    wrong = [f.aspect for f in subscription_findings(SPEC, found) if not f.ok]
    assert wrong == [aspect]


def test_a_narrowed_filter_names_the_operations_it_lost() -> None:
    narrowed = (
        AdvancedFilter("StringIn", "data.operationName", ("Microsoft.KeyVault/vaults/write",)),
    )
    found = dataclasses.replace(_as_wanted(), advanced_filters=narrowed)
    (wrong,) = [f for f in subscription_findings(SPEC, found) if not f.ok]
    assert "roleAssignments/write" in wrong.detail
    assert "roleAssignments/delete" in wrong.detail


def test_the_event_types_required_are_ones_keyward_parses() -> None:
    for template in (VAULT_SUBSCRIPTION, ACCESS_SUBSCRIPTION):
        assert set(template.included_event_types) <= set(KNOWN_EVENT_TYPES)


def test_roles_are_least_privilege() -> None:
    assert roles_for(dependent_verdicts=False) == (CRYPTO_SERVICE_ENCRYPTION_USER,)
    assert roles_for(dependent_verdicts=True) == (CRYPTO_SERVICE_ENCRYPTION_USER, KEY_VAULT_READER)
    never = {r.guid for r in NEVER_GRANTED}
    assert not never & {r.guid for r in roles_for(dependent_verdicts=True)}


def test_assignment_names_are_deterministic_guids() -> None:
    scope = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
    name = assignment_name(scope, "P", CRYPTO_SERVICE_ENCRYPTION_USER)
    assert uuid.UUID(name).version == 5
    assert name == assignment_name(scope.upper() + "/", "p", CRYPTO_SERVICE_ENCRYPTION_USER)
    assert name != assignment_name(scope, "p", KEY_VAULT_READER)
    assert name != assignment_name(scope + "2", "p", CRYPTO_SERVICE_ENCRYPTION_USER)


def test_subscription_names_are_per_deployment_and_follow_event_grids_rules() -> None:
    """Two Function Apps on one vault each get their own names (3-64 of a-z, 0-9, "-")."""
    other = APP.replace("/sites/app", "/sites/app2")
    assert SPEC.name == "keyward-access-app"
    assert subscription_name(VAULT_SUBSCRIPTION, APP) == "keyward-app"
    assert subscription_name(VAULT_SUBSCRIPTION, other) != subscription_name(
        VAULT_SUBSCRIPTION, APP
    )
    long_app = APP.replace("/sites/app", "/sites/" + "a" * 55 + "-x")
    long_twin = APP.replace("/sites/app", "/sites/" + "a" * 55 + "-y")
    names = [subscription_name(t, a) for t in (VAULT_SUBSCRIPTION, ACCESS_SUBSCRIPTION)
             for a in (APP, other, long_app, long_twin)]  # fmt: skip
    assert len(set(names)) == len(names)
    for name in names:
        assert 3 <= len(name) <= SUBSCRIPTION_NAME_MAX
        assert re.fullmatch(r"[a-z0-9-]+", name), name
        assert not name.endswith("-")


def test_only_a_subscription_delivering_to_this_function_app_is_its_own() -> None:
    mine = function_resource_id(APP)
    assert delivers_to_app("AzureFunction", mine.upper(), APP)
    assert delivers_to_app("AzureFunction", APP + "/functions/other", APP)
    assert not delivers_to_app("AzureFunction", function_resource_id(APP + "2"), APP)
    assert not delivers_to_app("WebHook", None, APP)
    assert not delivers_to_app("AzureFunction", None, APP)
