"""Vault onboarding: connect a vault, disconnect it, and inspect a deployment (``doctor``).

Works over two ports (:class:`OnboardingArm`, :class:`StorageNames`) and the pure
requirements in :mod:`shared.onboarding`; no adapter, no ``azure`` import. Every write is
preceded by a read that decides it, so running ``connect`` twice writes nothing the second
time and reports each item ``unchanged``; ``disconnect`` removes only what ``connect``
creates (its event subscriptions, its tagged system topics, role assignments under its
deterministic names; the access-policy permissions it adds only when asked, as access
policies carry no author). Event subscriptions carry this deployment's name
(``shared.onboarding.subscription_name``), and one that delivers to another Function App is
never rewritten or deleted: ``connect`` reports it as a ``conflict``, ``disconnect`` keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.errors import ConfigurationError, ServiceError
from shared.onboarding import (
    ACCESS_POLICY_KEY_PERMISSIONS,
    ACCESS_SUBSCRIPTION,
    SUBSCRIPTION_TOPIC_TYPE,
    VAULT_SUBSCRIPTION,
    VAULT_TOPIC_TYPE,
    DeadLetterTarget,
    FoundAssignment,
    FoundSubscription,
    Role,
    SubscriptionSpec,
    SubscriptionTemplate,
    TopicRef,
    VaultRef,
    assignment_name,
    delivers_to_app,
    function_resource_id,
    roles_for,
    subscription_findings,
    subscription_topic_name,
    vault_topic_name,
)

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
REMOVED = "removed"
ABSENT = "absent"
KEPT = "kept"
#: An event subscription under this deployment's name that delivers elsewhere: left alone.
CONFLICT = "conflict"
#: What to do about a conflict (connect-vault's step, doctor's fix).
CONFLICT_FIX = (
    "it is another deployment's or someone's own: keyward leaves it. If that deployment is "
    "gone, delete it (az eventgrid system-topic event-subscription delete -g {group} "
    "--system-topic-name {topic} -n {name}) and run connect-vault again"
)
#: What doctor tells to run for anything connect-vault sets.
FIX = "keyward connect-vault --vault {vault} (with the same flags)"
#: What doctor tells when it could not read something.
READ_FIX = "give the operator's identity Reader on the subscription and storage, then run again"


class OnboardingArm(Protocol):
    """What onboarding asks of Azure Resource Manager."""

    async def find_vault(self, subscription_id: str, name: str) -> VaultRef | None: ...

    async def find_topic(
        self, subscription_id: str, source: str, topic_type: str
    ) -> TopicRef | None: ...

    async def create_topic(self, topic: TopicRef, location: str) -> TopicRef: ...

    async def delete_topic(self, topic: TopicRef) -> None: ...

    async def vault_topics(self, subscription_id: str) -> list[TopicRef]:
        """Every Key Vault system topic of the subscription."""
        ...

    async def event_subscription(self, topic: TopicRef, name: str) -> FoundSubscription | None: ...

    async def event_subscription_names(self, topic: TopicRef) -> list[str]: ...

    async def put_event_subscription(self, topic: TopicRef, spec: SubscriptionSpec) -> None: ...

    async def delete_event_subscription(self, topic: TopicRef, name: str) -> None: ...

    async def role_assignments(self, scope: str, principal_id: str) -> list[FoundAssignment]: ...

    async def create_role_assignment(
        self, scope: str, name: str, role: Role, principal_id: str
    ) -> None: ...

    async def delete_role_assignment(self, scope: str, name: str) -> None: ...

    async def key_permissions(self, vault: VaultRef, principal_id: str) -> set[str]: ...

    async def change_key_permissions(
        self, vault: VaultRef, principal_id: str, permissions: Sequence[str], *, add: bool
    ) -> None: ...


class StorageNames(Protocol):
    """Whether keyward's tables, queue and container exist (read only)."""

    async def table_exists(self, name: str) -> bool: ...

    async def queue_exists(self, name: str) -> bool: ...

    async def container_exists(self, name: str) -> bool: ...


@dataclass(frozen=True)
class Deployment:
    """The Function App a vault is connected to, and what its settings imply."""

    function_app_id: str
    principal_id: str
    #: Azure subscriptions searched for the allow-listed vaults, in order.
    subscription_ids: tuple[str, ...]
    dead_letter: DeadLetterTarget | None
    #: Some watched kind of key-dependent resource has subscriptions: its verdicts read the
    #: vault, so keyward's identity needs Key Vault Reader there too.
    dependent_verdicts: bool

    def spec(self, template: SubscriptionTemplate) -> SubscriptionSpec:
        return SubscriptionSpec(
            template, function_resource_id(self.function_app_id), self.dead_letter
        )


@dataclass(frozen=True)
class Step:
    """One item connect-vault or disconnect-vault looked at, and what it did."""

    item: str
    action: str
    detail: str = ""


@dataclass(frozen=True)
class Check:
    """One doctor check: ``ok``, or what is wrong and what to run."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class StorageNeeds:
    """keyward's storage names from its settings (tables, queue, dead-letter container)."""

    tables: tuple[str, ...]
    queue: str
    container: str | None = None


def _covers(outer: str, inner: str) -> bool:
    outer, inner = outer.rstrip("/").lower(), inner.rstrip("/").lower()
    return inner == outer or inner.startswith(outer + "/")


@dataclass
class Onboarding:
    """connect / disconnect / doctor for one deployment."""

    arm: OnboardingArm
    deployment: Deployment
    storage: StorageNames | None = None

    # --- connect ----------------------------------------------------------------------------

    async def connect(self, vault_name: str) -> list[Step]:
        """Create what is missing or wrong; write nothing that is already right.

        Raises:
            ConfigurationError: the vault is not in the deployment's subscription.
            ServiceError: ARM refused or failed (translated by the adapter).
        """
        vault = await self._vault(vault_name)
        steps: list[Step] = []
        topic = await self._ensure_topic(
            steps, vault.arm_id, VAULT_TOPIC_TYPE, vault_topic_name(vault.name), vault
        )
        await self._ensure_subscription(steps, topic, VAULT_SUBSCRIPTION)
        source = f"/subscriptions/{vault.subscription_id}"
        sub_topic = await self._ensure_topic(
            steps,
            source,
            SUBSCRIPTION_TOPIC_TYPE,
            subscription_topic_name(vault.subscription_id),
            vault,
            location="global",
        )
        await self._ensure_subscription(steps, sub_topic, ACCESS_SUBSCRIPTION)
        await self._ensure_access(steps, vault)
        return steps

    async def _vault(self, vault_name: str) -> VaultRef:
        vault = await self._find(vault_name)
        if vault is None:
            raise ConfigurationError(
                f"vault {vault_name!r} not found in subscription(s) {self._searched()}"
            )
        return vault

    async def _find(self, vault_name: str) -> VaultRef | None:
        for subscription_id in self.deployment.subscription_ids:
            vault = await self.arm.find_vault(subscription_id, vault_name)
            if vault is not None:
                return vault
        return None

    def _searched(self) -> str:
        return ", ".join(self.deployment.subscription_ids)

    async def _ensure_topic(
        self,
        steps: list[Step],
        source: str,
        topic_type: str,
        name: str,
        vault: VaultRef,
        *,
        location: str | None = None,
    ) -> TopicRef:
        item = f"system topic ({topic_type}) for {source}"
        found = await self.arm.find_topic(vault.subscription_id, source, topic_type)
        if found is not None:
            steps.append(Step(item, UNCHANGED, found.name))
            return found
        wanted = TopicRef(
            name, vault.subscription_id, vault.resource_group, source, topic_type, managed=True
        )
        created = await self.arm.create_topic(wanted, location or vault.location)
        steps.append(Step(item, CREATED, created.name))
        return created

    def _ours(self, found: FoundSubscription) -> bool:
        return delivers_to_app(
            found.endpoint_type, found.function_id, self.deployment.function_app_id
        )

    async def _ensure_subscription(
        self, steps: list[Step], topic: TopicRef, template: SubscriptionTemplate
    ) -> None:
        spec = self.deployment.spec(template)
        item = f"event subscription {spec.name} on {topic.name}"
        found = await self.arm.event_subscription(topic, spec.name)
        if found is None:
            await self.arm.put_event_subscription(topic, spec)
            steps.append(Step(item, CREATED))
            return
        if not self._ours(found):
            steps.append(Step(item, CONFLICT, _conflict(found, topic, spec.name)))
            return
        wrong = [f for f in subscription_findings(spec, found) if not f.ok]
        if not wrong:
            steps.append(Step(item, UNCHANGED))
            return
        await self.arm.put_event_subscription(topic, spec)
        steps.append(Step(item, UPDATED, "; ".join(f"{f.aspect}: {f.detail}" for f in wrong)))

    async def _ensure_access(self, steps: list[Step], vault: VaultRef) -> None:
        principal = self.deployment.principal_id
        if not vault.rbac:
            have = await self.arm.key_permissions(vault, principal)
            missing = [p for p in ACCESS_POLICY_KEY_PERMISSIONS if p.lower() not in have]
            item = f"access policy keys {','.join(ACCESS_POLICY_KEY_PERMISSIONS)} on {vault.name}"
            if missing:
                await self.arm.change_key_permissions(vault, principal, missing, add=True)
                steps.append(Step(item, UPDATED if have else CREATED, "added " + ",".join(missing)))
            else:
                steps.append(Step(item, UNCHANGED))
            return
        found = await self.arm.role_assignments(vault.arm_id, principal)
        for role in roles_for(dependent_verdicts=self.deployment.dependent_verdicts):
            item = f"role {role.name} on {vault.name}"
            if _has_role(found, role, vault.arm_id):
                steps.append(Step(item, UNCHANGED))
                continue
            name = assignment_name(vault.arm_id, principal, role)
            await self.arm.create_role_assignment(vault.arm_id, name, role, principal)
            steps.append(Step(item, CREATED, name))

    # --- disconnect -------------------------------------------------------------------------

    async def disconnect(
        self, vault_name: str, *, remove_access_policy: bool = False
    ) -> list[Step]:
        """Remove what :meth:`connect` creates for ``vault_name``, and nothing else.

        This deployment's access subscription on the subscription topic serves every vault of
        the Azure subscription: it is removed only when no other vault there keeps this
        deployment's vault subscription. An event subscription under this deployment's name
        that delivers to another Function App is kept. On an access-policy vault the four key
        permissions are removed only with ``remove_access_policy`` (access policies carry no
        author: keyward cannot tell whether connect-vault added them).
        """
        vault = await self._vault(vault_name)
        steps: list[Step] = []
        await self._remove_access(steps, vault, remove_access_policy=remove_access_policy)
        topic = await self.arm.find_topic(vault.subscription_id, vault.arm_id, VAULT_TOPIC_TYPE)
        if topic is not None:
            await self._remove_subscription(steps, topic, VAULT_SUBSCRIPTION)
        source = f"/subscriptions/{vault.subscription_id}"
        sub_topic = await self.arm.find_topic(
            vault.subscription_id, source, SUBSCRIPTION_TOPIC_TYPE
        )
        if sub_topic is not None:
            others = await self._other_connected_vaults(vault)
            if others:
                name = self.deployment.spec(ACCESS_SUBSCRIPTION).name
                steps.append(
                    Step(
                        f"event subscription {name} on {sub_topic.name}",
                        KEPT,
                        "also serves " + ", ".join(others),
                    )
                )
            else:
                await self._remove_subscription(steps, sub_topic, ACCESS_SUBSCRIPTION)
        return steps

    async def _other_connected_vaults(self, vault: VaultRef) -> list[str]:
        """Other vaults of the Azure subscription connected to this deployment (its vault
        subscription, delivering to its Function App)."""
        name = self.deployment.spec(VAULT_SUBSCRIPTION).name
        names = []
        for topic in await self.arm.vault_topics(vault.subscription_id):
            if topic.source.lower() == vault.arm_id.lower():
                continue
            found = await self.arm.event_subscription(topic, name)
            if found is not None and self._ours(found):
                names.append(topic.source.rsplit("/", 1)[-1])
        return names

    async def _remove_subscription(
        self, steps: list[Step], topic: TopicRef, template: SubscriptionTemplate
    ) -> None:
        name = self.deployment.spec(template).name
        item = f"event subscription {name} on {topic.name}"
        found = await self.arm.event_subscription(topic, name)
        if found is None:
            steps.append(Step(item, ABSENT))
        elif not self._ours(found):
            steps.append(Step(item, KEPT, _conflict(found, topic, name)))
        else:
            await self.arm.delete_event_subscription(topic, name)
            steps.append(Step(item, REMOVED))
        topic_item = f"system topic ({topic.topic_type}) for {topic.source}"
        if not topic.managed:
            steps.append(Step(topic_item, KEPT, "not created by connect-vault"))
        elif await self.arm.event_subscription_names(topic):
            steps.append(Step(topic_item, KEPT, "other event subscriptions use it"))
        else:
            await self.arm.delete_topic(topic)
            steps.append(Step(topic_item, REMOVED, topic.name))

    async def _remove_access(
        self, steps: list[Step], vault: VaultRef, *, remove_access_policy: bool
    ) -> None:
        principal = self.deployment.principal_id
        if not vault.rbac:
            have = await self.arm.key_permissions(vault, principal)
            ours = [p for p in ACCESS_POLICY_KEY_PERMISSIONS if p.lower() in have]
            item = f"access policy keys {','.join(ACCESS_POLICY_KEY_PERMISSIONS)} on {vault.name}"
            if ours and not remove_access_policy:
                detail = (
                    f"left {','.join(ours)} (access policies carry no author: they may predate "
                    "connect-vault); to remove them, run disconnect-vault again with "
                    "--remove-access-policy"
                )
                steps.append(Step(item, KEPT, detail))
            elif ours:
                await self.arm.change_key_permissions(vault, principal, ours, add=False)
                steps.append(Step(item, REMOVED, ",".join(ours)))
            else:
                steps.append(Step(item, ABSENT))
            return
        found = {a.name.lower() for a in await self.arm.role_assignments(vault.arm_id, principal)}
        for role in roles_for(dependent_verdicts=True):  # whatever connect may have granted
            name = assignment_name(vault.arm_id, principal, role)
            item = f"role {role.name} on {vault.name}"
            if name.lower() in found:
                await self.arm.delete_role_assignment(vault.arm_id, name)
                steps.append(Step(item, REMOVED, name))
            else:
                steps.append(Step(item, ABSENT))

    # --- doctor -----------------------------------------------------------------------------

    async def doctor(self, vault_names: Sequence[str], needs: StorageNeeds) -> list[Check]:
        """Every check, in a fixed order; each names what is wrong and what to run."""
        checks = await storage_checks(self.storage, needs)
        subscriptions_seen: set[str] = set()
        for name in vault_names:
            try:
                checks.extend(await self._vault_checks(name, subscriptions_seen))
            except ServiceError as error:
                checks.append(Check(f"vault {name}: readable in ARM", False, str(error), READ_FIX))
        return checks

    async def _vault_checks(self, vault_name: str, seen: set[str]) -> list[Check]:
        fix = FIX.format(vault=vault_name)
        prefix = f"vault {vault_name}"
        vault = await self._find(vault_name)
        if vault is None:
            return [
                Check(
                    f"{prefix}: found in ARM",
                    False,
                    f"not in subscription(s) {self._searched()}",
                    "check KEYWARD_VAULT_ALLOWLIST and --subscription",
                )
            ]
        checks = [Check(f"{prefix}: found in ARM", True, vault.arm_id)]
        topic = await self.arm.find_topic(vault.subscription_id, vault.arm_id, VAULT_TOPIC_TYPE)
        checks.extend(await self._topic_checks(prefix, topic, VAULT_SUBSCRIPTION, fix))
        checks.extend(await self._access_checks(prefix, vault, fix))
        if vault.subscription_id.lower() not in seen:
            seen.add(vault.subscription_id.lower())
            source = f"/subscriptions/{vault.subscription_id}"
            sub_topic = await self.arm.find_topic(
                vault.subscription_id, source, SUBSCRIPTION_TOPIC_TYPE
            )
            checks.extend(
                await self._topic_checks(
                    f"subscription {vault.subscription_id}", sub_topic, ACCESS_SUBSCRIPTION, fix
                )
            )
        return checks

    async def _topic_checks(
        self, prefix: str, topic: TopicRef | None, template: SubscriptionTemplate, fix: str
    ) -> list[Check]:
        if topic is None:
            return [Check(f"{prefix}: system topic ({template.topic_type})", False, "missing", fix)]
        checks = [Check(f"{prefix}: system topic ({template.topic_type})", True, topic.name)]
        spec = self.deployment.spec(template)
        found = await self.arm.event_subscription(topic, spec.name)
        base = f"{prefix}: event subscription {spec.name}"
        if found is None:
            checks.append(Check(base, False, f"missing on {topic.name}", fix))
            return checks
        if not self._ours(found):
            detail = _conflict(found, topic, spec.name)
            checks.append(Check(base, False, detail, "see the detail: connect-vault leaves it"))
            return checks
        checks.append(Check(base, True, f"on {topic.name}"))
        for finding in subscription_findings(spec, found):
            checks.append(
                Check(
                    f"{base}: {finding.aspect}",
                    finding.ok,
                    finding.detail,
                    "" if finding.ok else fix,
                )
            )
        return checks

    async def _access_checks(self, prefix: str, vault: VaultRef, fix: str) -> list[Check]:
        principal = self.deployment.principal_id
        if not vault.rbac:
            have = await self.arm.key_permissions(vault, principal)
            missing = [p for p in ACCESS_POLICY_KEY_PERMISSIONS if p.lower() not in have]
            name = f"{prefix}: access policy keys {','.join(ACCESS_POLICY_KEY_PERMISSIONS)}"
            if missing:
                return [Check(name, False, "missing " + ",".join(missing), fix)]
            return [Check(name, True, f"granted to {principal}")]
        found = await self.arm.role_assignments(vault.arm_id, principal)
        checks = []
        for role in roles_for(dependent_verdicts=self.deployment.dependent_verdicts):
            ok = _has_role(found, role, vault.arm_id)
            detail = f"{principal}: {role.why}" if ok else f"not assigned to {principal}"
            checks.append(Check(f"{prefix}: role {role.name}", ok, detail, "" if ok else fix))
        return checks


async def storage_checks(storage: StorageNames | None, needs: StorageNeeds) -> list[Check]:
    """doctor's storage checks; they need the settings only (not the Function App or the
    identity), so doctor runs them even when ``--function-app`` is wrong. Storage that cannot
    be read is itself a wrong ``storage`` check, not a crash."""
    if storage is None:
        return []
    try:
        return await _storage_name_checks(storage, needs)
    except ServiceError as error:
        return [Check("storage", False, str(error), READ_FIX)]


async def _storage_name_checks(storage: StorageNames, needs: StorageNeeds) -> list[Check]:
    checks = []
    create = "start the Function App once (it creates them), or create it"
    for table in needs.tables:
        ok = await storage.table_exists(table)
        checks.append(
            Check(
                f"storage: table {table}",
                ok,
                "exists" if ok else "missing",
                "" if ok else create,
            )
        )
    ok = await storage.queue_exists(needs.queue)
    checks.append(
        Check(
            f"storage: queue {needs.queue}",
            ok,
            "exists" if ok else "missing",
            "" if ok else create,
        )
    )
    if needs.container is not None:
        ok = await storage.container_exists(needs.container)
        fix = f"az storage container create -n {needs.container} --auth-mode login ..."
        checks.append(
            Check(
                f"storage: dead-letter container {needs.container}",
                ok,
                "exists" if ok else "missing",
                "" if ok else fix,
            )
        )
    return checks


def _conflict(found: FoundSubscription, topic: TopicRef, name: str) -> str:
    """What a conflict step or check says: where the subscription delivers, and what to do."""
    where = found.function_id or f"a {found.endpoint_type} endpoint"
    fix = CONFLICT_FIX.format(group=topic.resource_group, topic=topic.name, name=name)
    return f"delivers to {where}, not this Function App; {fix}"


def _has_role(found: list[FoundAssignment], role: Role, scope: str) -> bool:
    """An assignment of ``role`` at ``scope`` or above it (a resource group, the subscription)."""
    return any(a.role_guid.lower() == role.guid and _covers(a.scope, scope) for a in found)
