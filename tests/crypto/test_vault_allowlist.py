"""VaultAllowList: names, URLs, clouds, Managed HSM, and explicit development origins."""

from __future__ import annotations

import pytest

from shared.crypto import AllowedVault, VaultAllowList
from shared.errors import KeyIdError, VaultNotAllowedError

V = "0123456789abcdef0123456789abcdef"


def test_plain_names_mean_the_public_cloud() -> None:
    allow = VaultAllowList.parse("Contoso-KV, fabrikam-kv ,,")
    assert allow.vaults == (
        AllowedVault("contoso-kv", "https://contoso-kv.vault.azure.net"),
        AllowedVault("fabrikam-kv", "https://fabrikam-kv.vault.azure.net"),
    )
    assert allow
    assert allow.check_key_id(f"https://contoso-kv.vault.azure.net/keys/k/{V}").name == "k"
    assert allow.by_name(" CONTOSO-KV ").url == "https://contoso-kv.vault.azure.net"
    assert allow.allows_name("fabrikam-kv")
    assert not allow.allows_name("other-kv")


def test_urls_for_other_clouds_and_hsm() -> None:
    allow = VaultAllowList.parse(
        [
            "https://cn-kv.vault.azure.cn/",
            "https://gov-kv.vault.usgovcloudapi.net",
            "https://hsm1.managedhsm.azure.net",
        ]
    )
    assert allow.check_key_id(f"https://cn-kv.vault.azure.cn/keys/k/{V}").vault_name == "cn-kv"
    assert allow.check_key_id(f"https://gov-kv.vault.usgovcloudapi.net/keys/k/{V}")
    assert allow.check_key_id(f"https://hsm1.managedhsm.azure.net/keys/k/{V}").managed_hsm
    assert allow.by_name("hsm1").managed_hsm
    # The same name in another cloud is another vault.
    with pytest.raises(VaultNotAllowedError):
        allow.check_key_id(f"https://cn-kv.vault.azure.net/keys/k/{V}")


def test_foreign_vaults_refused() -> None:
    allow = VaultAllowList.parse("contoso-kv")
    with pytest.raises(VaultNotAllowedError):
        allow.check_key_id(f"https://fabrikam-kv.vault.azure.net/keys/k/{V}")
    with pytest.raises(VaultNotAllowedError):
        allow.by_name("fabrikam-kv")
    # Malformed ids are KeyIdError (VaultNotAllowedError is a KeyIdError too).
    with pytest.raises(KeyIdError):
        allow.check_key_id(f"https://contoso-kv.vault.azure.net.evil.com/keys/k/{V}")
    with pytest.raises(KeyIdError):
        allow.check_key_id(f"http://contoso-kv.vault.azure.net/keys/k/{V}")


def test_versions_required_unless_told() -> None:
    allow = VaultAllowList.parse("contoso-kv")
    with pytest.raises(KeyIdError):
        allow.check_key_id("https://contoso-kv.vault.azure.net/keys/k")
    key_id = allow.check_key_id("https://contoso-kv.vault.azure.net/keys/k", require_version=False)
    assert key_id.version is None


def test_empty_list_allows_nothing() -> None:
    allow = VaultAllowList.parse("")
    assert not allow
    with pytest.raises(VaultNotAllowedError):
        allow.check_key_id(f"https://contoso-kv.vault.azure.net/keys/k/{V}")


def test_dev_origin_entries() -> None:
    allow = VaultAllowList.parse(
        "emu-kv=https://127.0.0.1:8443, emu-hsm=hsm:https://127.0.0.1:8444/"
    )
    key_id = allow.check_key_id(f"https://127.0.0.1:8443/keys/k/{V}")
    assert (key_id.vault_url, key_id.vault_name, key_id.managed_hsm) == (
        "https://127.0.0.1:8443",
        "emu-kv",
        False,
    )
    hsm = allow.check_key_id(f"https://127.0.0.1:8444/keys/k/{V}")
    assert hsm.managed_hsm
    assert hsm.vault_name == "emu-hsm"
    assert set(allow.dev_origins) == {"https://127.0.0.1:8443", "https://127.0.0.1:8444"}
    # Another port on loopback is not admitted, nor is plain http, nor user info.
    for bad in (
        f"https://127.0.0.1:8445/keys/k/{V}",
        f"http://127.0.0.1:8443/keys/k/{V}",
        f"https://a@127.0.0.1:8443/keys/k/{V}",
        f"https://localhost:8443/keys/k/{V}",
    ):
        with pytest.raises(KeyIdError):
            allow.check_key_id(bad)


def test_dev_origins_are_read_only() -> None:
    allow = VaultAllowList.parse("emu-kv=https://127.0.0.1:8443")
    with pytest.raises(TypeError):
        allow.dev_origins["https://evil.example:443"] = allow.dev_origins[  # type: ignore[index]
            "https://127.0.0.1:8443"
        ]


def test_no_dev_origin_without_an_explicit_entry() -> None:
    """Production lists never admit loopback, whatever the key id says."""
    allow = VaultAllowList.parse("contoso-kv, https://hsm1.managedhsm.azure.net")
    assert not allow.dev_origins
    with pytest.raises(KeyIdError):
        allow.check_key_id(f"https://127.0.0.1:8443/keys/k/{V}")


@pytest.mark.parametrize(
    "entry",
    [
        "kv",  # too short
        "1kv",
        "kv_1",
        "contoso-kv.vault.azure.net",  # a host without scheme
        "http://contoso-kv.vault.azure.net",
        "https://contoso-kv.vault.azure.net/keys",
        "https://contoso-kv.vault.azure.net.evil.com",
        "https://evilvault.azure.net",
        "kv=https://127.0.0.1:8443",  # dev entry with an invalid vault name
        "emu-kv=http://127.0.0.1:8443",
        "emu-kv=127.0.0.1:8443",
        "emu-kv=https://127.0.0.1:8443/path",
        "emu-kv=https://u@127.0.0.1:8443",
        "emu-kv=https://127.0.0.1:8443?x=1",
        "emu-kv=https://127.0.0.1:8443#f",
        "emu-kv=https://127.0.0.1:99999",
        "emu-kv=https://127.0.0.1:8443 extra",
        "emu-kv=",
    ],
)
def test_bad_entries_refused(entry: str) -> None:
    with pytest.raises(KeyIdError):
        VaultAllowList.parse(entry)
