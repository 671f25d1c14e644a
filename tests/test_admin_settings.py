"""The admin API's settings: the authority is an Entra ID login host (or loopback), https
only; the audience is a client id or an application ID URI; the tenant a GUID."""

from __future__ import annotations

import pytest

from shared.errors import SettingError
from shared.settings import PUBLIC_LOGIN_AUTHORITY, Settings

BASE = {
    "KEYWARD_VAULT_ALLOWLIST": "kv-a",
    "KEYWARD_STORAGE_ACCOUNT_URL": "https://acct.blob.core.windows.net",
}


def test_unset_means_not_configured_and_the_public_cloud_by_default() -> None:
    settings = Settings.from_env(BASE)
    assert (settings.admin_tenant_id, settings.admin_audience) == (None, None)
    assert settings.admin_authority == PUBLIC_LOGIN_AUTHORITY


def test_a_configured_admin_api() -> None:
    settings = Settings.from_env({
        **BASE, "KEYWARD_ADMIN_TENANT_ID": "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
        "KEYWARD_ADMIN_AUDIENCE": "5E3C0D2A-7B1F-4C8E-9A6D-00000000AD17, api://keyward-admin",
        "KEYWARD_ADMIN_AUTHORITY": "https://login.microsoftonline.us/",
    })  # fmt: skip
    assert settings.admin_tenant_id == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert settings.admin_audience == (
        "5e3c0d2a-7b1f-4c8e-9a6d-00000000ad17",
        "api://keyward-admin",
    )
    assert settings.admin_authority == "https://login.microsoftonline.us"
    loopback = Settings.from_env({**BASE, "KEYWARD_ADMIN_AUTHORITY": "https://127.0.0.1:8443"})
    assert loopback.admin_authority == "https://127.0.0.1:8443"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KEYWARD_ADMIN_AUTHORITY", "http://login.microsoftonline.com"),
        ("KEYWARD_ADMIN_AUTHORITY", "https://login.evil.example"),
        ("KEYWARD_ADMIN_AUTHORITY", "https://login.microsoftonline.com/tenant"),
        ("KEYWARD_ADMIN_AUTHORITY", "https://sts.windows.net"),
        ("KEYWARD_ADMIN_TENANT_ID", "contoso.onmicrosoft.com"),
        ("KEYWARD_ADMIN_AUDIENCE", "keyward"),
        ("KEYWARD_ADMIN_AUDIENCE", " , "),
    ],
)
def test_refused_values_name_the_setting(name: str, value: str) -> None:
    with pytest.raises(SettingError) as caught:
        Settings.from_env({**BASE, name: value})
    assert caught.value.setting == name
