"""Whether a vault's network rules let the service holding a key-dependent resource reach it.

Pure (no azure import). The facts are the vault's ARM properties (``publicNetworkAccess``,
``networkAcls.defaultAction``, ``bypass``, ``ipRules``, ``virtualNetworkRules``,
``privateEndpointConnections``); what they mean for a customer-managed key:

* The service (Azure AI services, Storage...) calls the vault from Microsoft's own network,
  not from the customer's virtual network. Through a closed firewall (public access
  disabled, or default action ``Deny``) it passes only as a *trusted Microsoft service*
  (``bypass: AzureServices``), and only kinds on Key Vault's trusted-services list do
  (:attr:`VerdictRules.trusted_service`). Access that rests on that exception is AT_RISK:
  one "tidy-up" of the firewall's exception box ends it.
* A closed firewall with no bypass is positive evidence (ACCESS_LOST,
  ``VAULT_FIREWALL_BLOCKS_SERVICE``) only where nothing else could let the service in:
  an approved private endpoint, or IP / virtual-network rules, might carry the service's
  traffic in setups keyward cannot see (it does not know the service's egress path), so
  those make the answer UNKNOWN with a reason naming what was not checked. Pending,
  rejected or disconnected private endpoints carry no traffic and do not count.

See docs/face.md ("Network reachability") for the Azure documentation behind each rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.dependents._reasons import Finding, Reason

APPROVED = "approved"


@dataclass(frozen=True)
class VaultNetworkFacts:
    """A vault's network settings as ARM reports them.

    Attributes:
        public_network_access: ``Enabled`` / ``Disabled``; ``None`` when ARM omits it
            (older vaults: enabled).
        default_action: ``networkAcls.defaultAction`` (``Allow`` / ``Deny``); ``None``
            when the vault has no ``networkAcls`` (allow).
        bypass: ``networkAcls.bypass`` (``AzureServices`` / ``None``).
        ip_rules: how many ``ipRules`` the vault lists.
        virtual_network_rules: how many ``virtualNetworkRules``.
        private_endpoints: the ``privateLinkServiceConnectionState.status`` of each
            private endpoint connection (``Approved``, ``Pending``...).
    """

    public_network_access: str | None = None
    default_action: str | None = None
    bypass: str | None = None
    ip_rules: int = 0
    virtual_network_rules: int = 0
    private_endpoints: tuple[str, ...] = ()

    @property
    def public_disabled(self) -> bool:
        return (self.public_network_access or "").strip().lower() == "disabled"

    @property
    def default_deny(self) -> bool:
        return (self.default_action or "").strip().lower() == "deny"

    @property
    def trusted_bypass(self) -> bool:
        return "azureservices" in (self.bypass or "").replace(" ", "").lower().split(",")

    @property
    def approved_private_endpoints(self) -> int:
        return sum(1 for s in self.private_endpoints if s.strip().lower() == APPROVED)


def network_findings(network: VaultNetworkFacts, *, trusted_service: bool) -> list[Finding]:
    """The findings of the vault's network rules for a service (trusted or not)."""
    if not network.public_disabled and not network.default_deny:
        return []
    closed = (
        "public network access is disabled"
        if network.public_disabled
        else "the firewall denies by default"
    )
    if network.trusted_bypass and trusted_service:
        return [
            Finding(
                Reason.VAULT_ACCESS_VIA_TRUSTED_SERVICE,
                f"{closed}; the service reaches the vault only through the trusted-services "
                "exception (bypass: AzureServices)",
            )
        ]
    why = "no AzureServices bypass" if trusted_service else "the service is not a trusted service"
    if network.approved_private_endpoints:
        return [
            Finding(
                Reason.PRIVATE_ENDPOINT_UNEVALUATED,
                f"{closed}, {why}; {network.approved_private_endpoints} approved private "
                "endpoint(s) may or may not carry the service's traffic",
            )
        ]
    if not network.public_disabled and (network.ip_rules or network.virtual_network_rules):
        return [
            Finding(
                Reason.NETWORK_RULES_UNEVALUATED,
                f"{closed}, {why}; {network.ip_rules} IP rule(s) and "
                f"{network.virtual_network_rules} virtual network rule(s) keyward cannot "
                "match to the service's traffic",
            )
        ]
    pending = len(network.private_endpoints)
    tail = f" ({pending} private endpoint(s), none approved)" if pending else ""
    return [Finding(Reason.VAULT_FIREWALL_BLOCKS_SERVICE, f"{closed}, {why}{tail}")]


def network_from_arm(properties: Mapping[str, object]) -> VaultNetworkFacts:
    """A vault's ``properties`` (REST JSON, Microsoft.KeyVault 2023-07-01+) as facts."""
    acls = properties.get("networkAcls")
    acls = acls if isinstance(acls, Mapping) else {}
    statuses: list[str] = []
    for item in _list(properties.get("privateEndpointConnections")):
        props = item.get("properties") if isinstance(item, Mapping) else None
        state = (
            props.get("privateLinkServiceConnectionState") if isinstance(props, Mapping) else None
        )
        status = state.get("status") if isinstance(state, Mapping) else None
        statuses.append(str(status) if status else "Unknown")
    return VaultNetworkFacts(
        public_network_access=_text(properties.get("publicNetworkAccess")),
        default_action=_text(acls.get("defaultAction")),
        bypass=_text(acls.get("bypass")),
        ip_rules=len(_list(acls.get("ipRules"))),
        virtual_network_rules=len(_list(acls.get("virtualNetworkRules"))),
        private_endpoints=tuple(statuses),
    )


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
