"""Which kinds are watched is one setting; a kind's subscriptions without the kind is refused."""

from __future__ import annotations

import pytest

from shared.errors import SettingError
from shared.settings import Settings

SUB = "0f5a3c2e-1111-4222-8333-944455556666"
BASE = {
    "KEYWARD_VAULT_ALLOWLIST": "contoso-kv",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def test_face_is_the_default_kind_and_the_others_are_off() -> None:
    settings = Settings.from_env({**BASE, "KEYWARD_FACE_SUBSCRIPTIONS": SUB})
    assert settings.dependent("face").subscriptions == (SUB,)
    assert not settings.dependent("cognitive").enabled
    assert not settings.dependent("storage").enabled
    assert (settings.resource_graph, settings.inventory_cache_seconds) == (True, 120)
    assert settings.arm_requests_per_second == 20


def test_listed_kinds_are_watched_each_in_its_own_subscriptions() -> None:
    settings = Settings.from_env({
        **BASE, "KEYWARD_DEPENDENT_KINDS": "storage, cognitive",
        "KEYWARD_STORAGE_ACCOUNTS_SUBSCRIPTIONS": SUB,
        "KEYWARD_STORAGE_ACCOUNTS_REPOINT": "true",
        "KEYWARD_COGNITIVE_SUBSCRIPTIONS": SUB,
    })  # fmt: skip
    assert settings.dependent("storage").repoint
    assert settings.dependent("storage").repoint_setting == "KEYWARD_STORAGE_ACCOUNTS_REPOINT"
    assert settings.dependent("cognitive").enabled
    assert not settings.dependent("face").enabled


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"KEYWARD_DEPENDENT_KINDS": "face,keyvault"}, "KEYWARD_DEPENDENT_KINDS"),
        ({"KEYWARD_STORAGE_ACCOUNTS_SUBSCRIPTIONS": SUB}, "KEYWARD_STORAGE_ACCOUNTS_SUBSCRIPTIONS"),
        ({"KEYWARD_ARM_REQUESTS_PER_SECOND": "0"}, "KEYWARD_ARM_REQUESTS_PER_SECOND"),
        ({"KEYWARD_INVENTORY_CACHE_SECONDS": "3601"}, "KEYWARD_INVENTORY_CACHE_SECONDS"),
    ],
)
def test_a_setting_that_would_silently_do_nothing_or_harm_is_refused(
    extra: dict[str, str], setting: str
) -> None:
    with pytest.raises(SettingError) as refused:
        Settings.from_env({**BASE, **extra})
    assert refused.value.setting == setting
