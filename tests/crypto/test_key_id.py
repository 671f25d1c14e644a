"""Key id parsing: every cloud and Managed HSM accepted; a long list of bad ids refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.crypto import (
    KEY_VAULT_SUFFIXES,
    MANAGED_HSM_SUFFIXES,
    DevVaultEndpoint,
    KeyId,
    is_valid_key_name,
    is_valid_key_version,
    is_valid_vault_name,
    parse_key_id,
    parse_vault_url,
)
from shared.errors import KeyIdError

V = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("suffix", KEY_VAULT_SUFFIXES + MANAGED_HSM_SUFFIXES)
def test_valid_ids_parse_for_every_cloud(suffix: str) -> None:
    key_id = parse_key_id(f"https://contoso-kv1.{suffix}/keys/dek-kek/{V}")
    assert key_id == KeyId(
        f"https://contoso-kv1.{suffix}", "contoso-kv1", "dek-kek", V, suffix in MANAGED_HSM_SUFFIXES
    )
    assert key_id.id == f"https://contoso-kv1.{suffix}/keys/dek-kek/{V}"
    assert str(key_id) == key_id.id
    assert key_id.key_ref == f"https://contoso-kv1.{suffix}/keys/dek-kek"
    assert key_id.unversioned.version is None


def test_managed_hsm_flag() -> None:
    assert parse_key_id(f"https://hsm1.managedhsm.azure.net/keys/k/{V}").managed_hsm
    assert not parse_key_id(f"https://kv1.vault.azure.net/keys/k/{V}").managed_hsm


def test_canonicalisation() -> None:
    key_id = parse_key_id(f"HTTPS://Contoso.Vault.Azure.NET:443/keys/Key-1/{V.upper()}")
    assert key_id.id == f"https://contoso.vault.azure.net/keys/Key-1/{V}"
    assert parse_key_id(f"  https://kv1.vault.azure.net/keys/k/{V}  ").version == V


def test_unversioned_ids() -> None:
    with pytest.raises(KeyIdError):
        parse_key_id("https://kv1.vault.azure.net/keys/k")
    assert parse_key_id("https://kv1.vault.azure.net/keys/k", require_version=False).version is None
    assert (
        parse_key_id("https://kv1.vault.azure.net/keys/k/", require_version=False).version is None
    )


def test_with_version_and_same_key() -> None:
    base = parse_key_id("https://kv1.vault.azure.net/keys/k", require_version=False)
    versioned = base.with_version(V.upper())
    assert versioned.version == V
    assert versioned.same_key(base)
    assert not versioned.same_key(parse_key_id(f"https://kv1.vault.azure.net/keys/k2/{V}"))
    # Key Vault compares object identifiers case-insensitively.
    mixed = parse_key_id(f"https://KV1.vault.azure.net/keys/K/{V}")
    assert mixed.same_key(versioned)
    assert versioned.same_key(mixed)
    assert not mixed.same_key(parse_key_id(f"https://kv2.vault.azure.net/keys/K/{V}"))
    for bad in ("", V[:-1], V + "0", V[:-1] + "g", V + "\n", " " + V):
        with pytest.raises(KeyIdError):
            base.with_version(bad)


K = f"/keys/k/{V}"
BAD_IDS = {
    "empty": "",
    "blank": "   ",
    "http": f"http://kv1.vault.azure.net{K}",
    "no scheme": f"kv1.vault.azure.net{K}",
    "ftp": f"ftp://kv1.vault.azure.net{K}",
    "port 8443": f"https://kv1.vault.azure.net:8443{K}",
    "port 80": f"https://kv1.vault.azure.net:80{K}",
    "empty port": f"https://kv1.vault.azure.net:{K}",
    "hsm port": f"https://hsm1.managedhsm.azure.net:444{K}",
    "user@host": f"https://user@kv1.vault.azure.net{K}",
    "user:pass@host": f"https://u:p@kv1.vault.azure.net{K}",
    "evil@vault": f"https://kv1.vault.azure.net@evil.com{K}",
    "lookalike suffix": f"https://kv1.vault.azure.net.evil.com{K}",
    "glued suffix": f"https://evilvault.azure.net{K}",
    "bare suffix": f"https://vault.azure.net{K}",
    "dot suffix": f"https://.vault.azure.net{K}",
    "trailing dot": f"https://kv1.vault.azure.net.{K}",
    "subdomain": f"https://a.kv1.vault.azure.net{K}",
    "other azure host": f"https://kv1.blob.core.windows.net{K}",
    "wrong cloud": f"https://kv1.vault.azure.de{K}",
    "ip": f"https://127.0.0.1:8443{K}",
    "localhost": f"https://localhost{K}",
    "vault name too short": f"https://kv.vault.azure.net{K}",
    "vault name too long": f"https://{'a' * 25}.vault.azure.net{K}",
    "vault name digit first": f"https://1kv.vault.azure.net{K}",
    "vault name hyphen last": f"https://kv1-.vault.azure.net{K}",
    "vault name double hyphen": f"https://kv--1.vault.azure.net{K}",
    "vault name underscore": f"https://kv_1.vault.azure.net{K}",
    "secrets path": f"https://kv1.vault.azure.net/secrets/k/{V}",
    "certificates path": f"https://kv1.vault.azure.net/certificates/k/{V}",
    "deletedkeys path": f"https://kv1.vault.azure.net/deletedkeys/k/{V}",
    "no path": "https://kv1.vault.azure.net",
    "keys only": "https://kv1.vault.azure.net/keys",
    "double slash": f"https://kv1.vault.azure.net//keys/k/{V}",
    "extra segment": f"https://kv1.vault.azure.net/keys/k/{V}/wrapkey",
    "trailing slash": f"https://kv1.vault.azure.net/keys/k/{V}/",
    "prefix path": f"https://kv1.vault.azure.net/x/keys/k/{V}",
    "dot segment": f"https://kv1.vault.azure.net/keys/../keys/k/{V}",
    "key name underscore": f"https://kv1.vault.azure.net/keys/k_1/{V}",
    "key name dot": f"https://kv1.vault.azure.net/keys/k.1/{V}",
    "key name space": f"https://kv1.vault.azure.net/keys/k 1/{V}",
    "key name encoded": f"https://kv1.vault.azure.net/keys/k%2F1/{V}",
    "key name too long": f"https://kv1.vault.azure.net/keys/{'k' * 128}/{V}",
    "key name unicode": f"https://kv1.vault.azure.net/keys/kéy/{V}",
    "version short": f"https://kv1.vault.azure.net/keys/k/{V[:-1]}",
    "version long": f"https://kv1.vault.azure.net/keys/k/{V}0",
    "version non-hex": f"https://kv1.vault.azure.net/keys/k/{V[:-1]}g",
    "version uuid": "https://kv1.vault.azure.net/keys/k/01234567-89ab-cdef-0123-456789abcdef",
    "query": f"https://kv1.vault.azure.net{K}?api-version=7.4",
    "empty query": f"https://kv1.vault.azure.net{K}?",
    "fragment": f"https://kv1.vault.azure.net{K}#x",
    "newline in name": f"https://kv1.vault.azure.net/keys/my\nkey/{V}",
    "tab in host": f"https://k\tv1.vault.azure.net{K}",
    "newline before version": f"https://kv1.vault.azure.net/keys/k/\n{V}",
    "nul": f"https://kv1.vault.azure.net{K}\x00",
    "backslash host": f"https://evil.com\\.vault.azure.net{K}",
    "too long": f"https://kv1.vault.azure.net/keys/k/{V}" + "a" * 3000,
}


@pytest.mark.parametrize("value", list(BAD_IDS.values()), ids=list(BAD_IDS))
def test_bad_ids_are_refused(value: str) -> None:
    with pytest.raises(KeyIdError):
        parse_key_id(value)


def test_non_string_is_refused() -> None:
    with pytest.raises(KeyIdError):
        parse_key_id(None)  # type: ignore[arg-type]


@given(st.text(max_size=120))
def test_arbitrary_text_raises_only_key_id_error(value: str) -> None:
    try:
        key_id = parse_key_id(value)
    except KeyIdError:
        return
    # Anything accepted is on an Azure suffix and round-trips to itself.
    assert parse_key_id(key_id.id) == key_id


def test_dev_origins_only_when_passed() -> None:
    dev = {"https://127.0.0.1:8443": DevVaultEndpoint("emu-kv")}
    value = f"https://127.0.0.1:8443{K}"
    with pytest.raises(KeyIdError):
        parse_key_id(value)
    key_id = parse_key_id(value, dev_origins=dev)
    assert (key_id.vault_url, key_id.vault_name, key_id.managed_hsm) == (
        "https://127.0.0.1:8443",
        "emu-kv",
        False,
    )
    with pytest.raises(KeyIdError):
        parse_key_id(f"https://127.0.0.1:8444{K}", dev_origins=dev)
    with pytest.raises(KeyIdError):
        parse_key_id(f"http://127.0.0.1:8443{K}", dev_origins=dev)
    with pytest.raises(KeyIdError):
        parse_key_id(f"https://x@127.0.0.1:8443{K}", dev_origins=dev)


def test_parse_vault_url() -> None:
    assert parse_vault_url("https://kv1.vault.azure.net") == (
        "https://kv1.vault.azure.net",
        "kv1",
        False,
    )
    assert parse_vault_url("https://hsm1.managedhsm.azure.net/")[2]
    for bad in (
        "",
        "http://kv1.vault.azure.net",
        "https://kv1.vault.azure.net/keys",
        "https://kv1.vault.azure.net?x",
        "https://kv1.vault.azure.net.evil.com",
        "https://kv1.vault.azure.net?",
        "https://k\nv1.vault.azure.net",
    ):
        with pytest.raises(KeyIdError):
            parse_vault_url(bad)


def test_name_predicates_are_anchored() -> None:
    assert is_valid_vault_name("kv1")
    assert is_valid_key_name("k")
    assert is_valid_key_version(V)
    for predicate, good in (
        (is_valid_vault_name, "kv1"),
        (is_valid_key_name, "k"),
        (is_valid_key_version, V),
    ):
        assert not predicate(good + "\n")
        assert not predicate("\n" + good)
        assert not predicate(good + " ")


vault_names = st.from_regex(r"\A[a-z][a-z0-9]{1,21}[a-z0-9]\Z")
key_names = st.from_regex(r"\A[a-zA-Z0-9-]{1,127}\Z")
versions = st.from_regex(r"\A[0-9a-fA-F]{32}\Z")


@given(vault_names, st.sampled_from(KEY_VAULT_SUFFIXES + MANAGED_HSM_SUFFIXES), key_names, versions)
def test_generated_valid_ids_parse_and_round_trip(
    vault: str, suffix: str, name: str, version: str
) -> None:
    value = f"https://{vault}.{suffix}/keys/{name}/{version}"
    key_id = parse_key_id(value)
    assert key_id.vault_name == vault
    assert key_id.name == name
    assert key_id.version == version.lower()
    assert key_id.managed_hsm == (suffix in MANAGED_HSM_SUFFIXES)
    assert parse_key_id(key_id.id) == key_id
    assert key_id.id == f"https://{vault}.{suffix}/keys/{name}/{version.lower()}"
