"""What a connected vault must have: keyward's event subscriptions and its identity's access.

The one home of these facts. ``keyward connect-vault`` creates them, ``disconnect-vault``
removes what it created, ``keyward doctor`` compares a deployment against them, and the
README's manual ``az`` commands spell out the same values (docs/onboarding.md).

* Each allow-listed vault's Event Grid **system topic** (``microsoft.keyvault.vaults``)
  carries the event subscription :data:`VAULT_SUBSCRIPTION` with the Key Vault event types
  keyward acts on.
* The vault's Azure subscription's system topic (``microsoft.resources.subscriptions``)
  carries :data:`ACCESS_SUBSCRIPTION`: resource writes and deletes, narrowed by an advanced
  filter on ``data.operationName`` to the operations that can change who reaches a key (Key
  Vault emits no event for role assignments).
* Both deliver to the Function App's ``on_key_vault_event`` function (an ``AzureFunction``
  destination: no webhook key in the subscription), retry for Event Grid's maximum (30
  attempts, 1,440 minutes: keyward is idempotent, so a late delivery is harmless), and
  dead-letter to ``KEYWARD_DEADLETTER_CONTAINER`` when it is set.
* keyward's identity gets, per vault, least privilege: :data:`CRYPTO_SERVICE_ENCRYPTION_USER`
  (RBAC vaults) or the access policy :data:`ACCESS_POLICY_KEY_PERMISSIONS` (access-policy
  vaults); :data:`KEY_VAULT_READER` too only when dependent verdicts are on (any kind of
  ``KEYWARD_DEPENDENT_KINDS`` with subscriptions). It never grants a role that can change
  keys or access (:data:`NEVER_GRANTED`).
* Event subscriptions are named per deployment (:func:`subscription_name`:
  ``keyward-<function app>``, ``keyward-access-<function app>``), so two deployments
  connected to one vault each keep their own; one that delivers to another Function App is
  never rewritten or deleted (:func:`delivers_to_app`).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from shared.events import (
    KEY_EXPIRED,
    KEY_NEAR_EXPIRY,
    KEY_NEW_VERSION_CREATED,
    RESOURCE_DELETE_SUCCESS,
    RESOURCE_WRITE_SUCCESS,
    VAULT_ACCESS_POLICY_CHANGED,
)

VAULT_TOPIC_TYPE = "microsoft.keyvault.vaults"
SUBSCRIPTION_TOPIC_TYPE = "microsoft.resources.subscriptions"
#: The Event Grid trigger every subscription delivers to.
EVENT_FUNCTION = "on_key_vault_event"
#: Tag on a system topic connect-vault created (so disconnect-vault deletes only those).
MANAGED_TAG = ("keyward", "connect-vault")
#: Event Grid's maximum retry policy (its defaults too): 30 attempts within 24 hours.
MAX_DELIVERY_ATTEMPTS = 30
EVENT_TTL_MINUTES = 1440

#: ``data.operationName`` values of resource events that can change who reaches a key.
ACCESS_OPERATIONS = (
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleAssignments/delete",
    "Microsoft.KeyVault/vaults/write",
)


@dataclass(frozen=True)
class StringInFilter:
    """An Event Grid ``StringIn`` advanced filter: ``key`` must be one of ``values``."""

    key: str
    values: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.key} StringIn {' '.join(self.values)}"


@dataclass(frozen=True)
class SubscriptionTemplate:
    """An event subscription keyward needs, before the deployment fills in its targets.

    ``name`` is the base of its name; each deployment's is :func:`subscription_name`."""

    name: str
    topic_type: str
    included_event_types: tuple[str, ...]
    advanced_filters: tuple[StringInFilter, ...] = ()


VAULT_SUBSCRIPTION = SubscriptionTemplate(
    name="keyward",
    topic_type=VAULT_TOPIC_TYPE,
    included_event_types=(
        KEY_NEW_VERSION_CREATED,
        KEY_NEAR_EXPIRY,
        KEY_EXPIRED,
        VAULT_ACCESS_POLICY_CHANGED,
    ),
)
ACCESS_SUBSCRIPTION = SubscriptionTemplate(
    name="keyward-access",
    topic_type=SUBSCRIPTION_TOPIC_TYPE,
    included_event_types=(RESOURCE_WRITE_SUCCESS, RESOURCE_DELETE_SUCCESS),
    advanced_filters=(StringInFilter("data.operationName", ACCESS_OPERATIONS),),
)


@dataclass(frozen=True)
class DeadLetterTarget:
    """A Storage blob container, by storage account resource id and container name."""

    account_id: str
    container: str

    def describe(self) -> str:
        return f"{self.account_id}/blobServices/default/containers/{self.container}"


@dataclass(frozen=True)
class SubscriptionSpec:
    """One event subscription as keyward wants it on one topic."""

    template: SubscriptionTemplate
    function_id: str
    dead_letter: DeadLetterTarget | None
    max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS
    event_ttl_minutes: int = EVENT_TTL_MINUTES

    @property
    def name(self) -> str:
        """This deployment's name for the subscription (:func:`subscription_name`)."""
        return subscription_name(self.template, function_app_of(self.function_id))


def function_resource_id(function_app_id: str) -> str:
    """The ``AzureFunction`` destination: ``{app id}/functions/on_key_vault_event``."""
    return f"{function_app_id.rstrip('/')}/functions/{EVENT_FUNCTION}"


def function_app_of(function_id: str) -> str:
    """The Function App of an ``AzureFunction`` destination (``{app id}/functions/{fn}``)."""
    trimmed = function_id.rstrip("/")
    at = trimmed.lower().rfind("/functions/")  # ARM ids ignore case
    return trimmed if at < 0 else trimmed[:at]


#: Event Grid's rule for event subscription names: 3 to 64 of a-z, A-Z, 0-9 and "-"
#: (learn.microsoft.com/azure/event-grid/subscription-creation-schema).
SUBSCRIPTION_NAME_MAX = 64
_NAME_CHARS = re.compile(r"[^a-z0-9-]")


def subscription_name(template: SubscriptionTemplate, function_app_id: str) -> str:
    """This deployment's event subscription name: ``{template.name}-{function app name}``,
    lower case. Function App names are globally unique (they are the app's host name), so two
    deployments connected to one vault never share a name; a name longer than Event Grid's 64
    characters keeps a prefix of the app name and 8 hex digits of a hash of the app's
    resource id, which still tells two apps with the same prefix apart."""
    app = function_app_id.rstrip("/").rsplit("/", 1)[-1].lower()
    app = _NAME_CHARS.sub("", app) or "app"
    name = f"{template.name}-{app}"
    if len(name) <= SUBSCRIPTION_NAME_MAX:
        return name
    digest = hashlib.sha256(function_app_id.rstrip("/").lower().encode()).hexdigest()[:8]
    room = SUBSCRIPTION_NAME_MAX - len(template.name) - len(digest) - 2
    return f"{template.name}-{app[:room].rstrip('-')}-{digest}"


def delivers_to_app(endpoint_type: str, function_id: str | None, function_app_id: str) -> bool:
    """Whether a found subscription delivers to this Function App (any of its functions).

    One that does not (another app's function, a webhook, a queue) is another deployment's or
    someone's own: connect-vault never rewrites it and disconnect-vault never deletes it."""
    if endpoint_type.lower() != "azurefunction" or not function_id:
        return False
    return function_app_of(function_id).lower() == function_app_id.rstrip("/").lower()


@dataclass(frozen=True)
class Role:
    """A built-in Azure role (its fixed GUID) and why keyward needs it."""

    name: str
    guid: str
    why: str


CRYPTO_SERVICE_ENCRYPTION_USER = Role(
    "Key Vault Crypto Service Encryption User",
    "e147488a-f6f5-4113-8e2d-b22465e65bf6",
    "read keys and versions, wrap, unwrap",
)
KEY_VAULT_READER = Role(
    "Key Vault Reader",
    "21090545-7ca7-4776-b22c-e363652d74d2",
    "tell a soft-deleted key from a missing one in key-dependent resource verdicts",
)
#: Roles connect-vault never grants: they change keys, access or the vault. Rotating on near
#: expiry (Key Vault Crypto Officer at key scope) is the operator's own decision.
NEVER_GRANTED = (
    Role("Key Vault Administrator", "00482a5a-887f-4fb3-b363-3b7fe8e74483", "manages the vault"),
    Role("Key Vault Crypto Officer", "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "changes keys"),
    Role("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "grants access"),
    Role("Contributor", "b24988ac-6180-42dd-ab85-69b857b0d0f1", "changes resources"),
)
#: Access-policy vaults: the same least privilege as the RBAC role.
ACCESS_POLICY_KEY_PERMISSIONS = ("get", "list", "wrapKey", "unwrapKey")
#: uuid5 namespace of keyward's role assignment names (scope, principal and role decide it).
_ASSIGNMENT_NAMESPACE = uuid.UUID("5d7a1c52-6b8e-4c55-9a51-6b6579776172")


def roles_for(*, dependent_verdicts: bool) -> tuple[Role, ...]:
    """The roles keyward's identity needs on each RBAC vault: Key Vault Reader too when any
    watched kind of key-dependent resource has subscriptions (its verdicts read vaults)."""
    if dependent_verdicts:
        return (CRYPTO_SERVICE_ENCRYPTION_USER, KEY_VAULT_READER)
    return (CRYPTO_SERVICE_ENCRYPTION_USER,)


def assignment_name(scope: str, principal_id: str, role: Role) -> str:
    """connect-vault's name for a role assignment: the same inputs always give the same GUID,
    so a rerun finds its own assignment and disconnect-vault removes only that one."""
    text = f"{scope.rstrip('/').lower()}|{principal_id.lower()}|{role.guid}"
    return str(uuid.uuid5(_ASSIGNMENT_NAMESPACE, text))


def vault_topic_name(vault_name: str) -> str:
    """The name connect-vault gives a vault's system topic when the vault has none."""
    return f"{vault_name}-events"


def subscription_topic_name(subscription_id: str) -> str:
    """The name of the Azure subscription's system topic when it has none."""
    return f"keyward-sub-{subscription_id[:8]}-events"
