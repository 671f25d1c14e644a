"""Settings: defaults, validation errors that name the setting, no secrets, documented keys."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from shared.errors import ConfigurationError, SettingError
from shared.records import EnvelopeSettings
from shared.settings import (
    FLEX_DEPRECATED_SETTINGS,
    HOST_SETTINGS,
    LOCAL_ONLY_HOST_SETTINGS,
    SPEC_BY_NAME,
    SPECS,
    Settings,
    render_settings_table,
)

ROOT = Path(__file__).resolve().parent.parent
BASE = {
    "KEYWARD_VAULT_ALLOWLIST": "contoso-kv",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}
SUB = "0f5a3c2e-1111-4222-8333-944455556666"
AZURITE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)


def settings(**overrides: str) -> Settings:
    return Settings.from_env({**BASE, **overrides})


def error_for(**overrides: str) -> SettingError:
    with pytest.raises(SettingError) as info:
        settings(**overrides)
    return info.value


def test_defaults() -> None:
    s = settings()
    assert s.vault_allowlist.allows_name("contoso-kv")
    assert s.dek_table == "keywarddeks"
    assert s.kek_table == "keywardkeks"
    assert (s.cache_size, s.dek_cache_seconds, s.kek_cache_seconds, s.mode_ttl) == (
        10_000,
        300,
        300,
        30,
    )
    assert s.envelope == EnvelopeSettings()
    assert s.blob_containers == ()
    assert s.job_queue == "keyward-rewrap"
    assert s.sweep_schedule == "0 */5 * * * *"
    assert s.dependents_sweep_schedule == "30 */5 * * * *"
    assert s.dependent("face").subscriptions == ()
    assert not s.dependent("face").enabled
    assert s.dependent("face").repoint is False
    assert s.auto_rotate_near_expiry is False
    assert s.expiry_warning_window == timedelta(days=30)
    assert s.eventgrid_topic_endpoint is None
    assert s.arm_endpoint == "https://management.azure.com"
    assert s.ca_bundle is None
    assert s.azure_client_id is None
    assert s.allow_legacy_rsa1_5 is False
    assert s.rewrap_concurrency == 64
    assert s.rewrap_slice_seconds == 240
    assert s.vault_share == 0.5
    assert s.budget_lease_seconds == 15
    assert s.storage.connection_setting == "AzureWebJobsStorage"
    assert s.storage.connection_string == "UseDevelopmentStorage=true"


def test_every_default_in_specs_matches_the_dataclass_default() -> None:
    s = settings()
    for name, attr in [
        ("KEYWARD_DEK_TABLE", s.dek_table),
        ("KEYWARD_KEK_TABLE", s.kek_table),
        ("KEYWARD_CACHE_SIZE", str(s.cache_size)),
        ("KEYWARD_DEK_CACHE_SECONDS", str(s.dek_cache_seconds)),
        ("KEYWARD_KEK_CACHE_SECONDS", str(s.kek_cache_seconds)),
        ("KEYWARD_MODE_TTL", str(s.mode_ttl)),
        ("KEYWARD_KEK_MAX_AGE_DAYS", str(s.kek_max_age_days)),
        ("KEYWARD_JOB_QUEUE", s.job_queue),
        ("KEYWARD_SWEEP_SCHEDULE", s.sweep_schedule),
        ("KEYWARD_DEPENDENTS_SWEEP_SCHEDULE", s.dependents_sweep_schedule),
        ("KEYWARD_VERIFY_INTERVAL_HOURS", str(s.verify_interval_hours)),
        ("KEYWARD_RETENTION_DAYS", str(s.retention_days)),
        ("KEYWARD_RETENTION_SCHEDULE", s.retention_schedule),
        ("KEYWARD_ARM_ENDPOINT", s.arm_endpoint),
        ("KEYWARD_EXPIRY_WARNING_DAYS", str(s.expiry_warning_days)),
        ("KEYWARD_REWRAP_CONCURRENCY", str(s.rewrap_concurrency)),
        ("KEYWARD_REWRAP_SLICE_SECONDS", str(s.rewrap_slice_seconds)),
        ("KEYWARD_VAULT_SHARE", str(s.vault_share)),
        ("KEYWARD_BUDGET_LEASE_SECONDS", str(s.budget_lease_seconds)),
        ("KEYWARD_FACE_REPOINT", str(s.dependent("face").repoint).lower()),
    ]:
        assert SPEC_BY_NAME[name].default == attr


def test_dataclass_defaults_are_the_specs_defaults_parsed() -> None:
    """The dataclass repeats no default: built with only the two fields that have none, it
    equals what ``from_env`` reads from an environment that sets nothing else."""
    s = settings()
    assert Settings(vault_allowlist=s.vault_allowlist, storage=s.storage) == s


def test_values_are_parsed(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    s = settings(
        KEYWARD_VAULT_ALLOWLIST="contoso-kv, emu=https://127.0.0.1:8443",
        KEYWARD_BLOB_CONTAINERS="docs, images,docs",
        KEYWARD_FACE_SUBSCRIPTIONS=f"{SUB.upper()}",
        KEYWARD_FACE_RESOURCE_GROUPS="rg-face,Other_RG",
        KEYWARD_FACE_REPOINT="TRUE",
        KEYWARD_AUTO_ROTATE_NEAR_EXPIRY="yes",
        KEYWARD_EXPIRY_WARNING_DAYS="14",
        KEYWARD_SWEEP_SCHEDULE="0  0 */2 * JAN-dec mon-FRI",
        KEYWARD_EVENTGRID_TOPIC_ENDPOINT="https://t1.westeurope-1.eventgrid.azure.net/api/events",
        KEYWARD_ARM_ENDPOINT="https://127.0.0.1:8443/",
        KEYWARD_CA_BUNDLE=str(ca),
        AZURE_CLIENT_ID=SUB,
        KEYWARD_REWRAP_CONCURRENCY="8",
    )
    assert s.vault_allowlist.allows_name("emu")
    assert s.blob_containers == ("docs", "images")
    assert s.dependent("face").subscriptions == (SUB,)
    assert s.dependent("face").resource_groups == ("rg-face", "Other_RG")
    assert s.dependent("face").repoint
    assert s.dependent("face").repoint_setting == "KEYWARD_FACE_REPOINT"
    assert s.auto_rotate_near_expiry
    assert s.expiry_warning_window == timedelta(days=14)
    assert s.sweep_schedule == "0 0 */2 * JAN-dec mon-FRI"
    assert s.arm_endpoint == "https://127.0.0.1:8443"
    assert s.ca_bundle == str(ca)
    assert s.rewrap_concurrency == 8


BAD = [
    ("KEYWARD_VAULT_ALLOWLIST", ""),
    ("KEYWARD_VAULT_ALLOWLIST", " , "),
    ("KEYWARD_VAULT_ALLOWLIST", "not a vault!"),
    ("KEYWARD_VAULT_ALLOWLIST", "emu=http://127.0.0.1:8443"),
    ("KEYWARD_DEK_TABLE", "dek-table"),
    ("KEYWARD_KEK_TABLE", "kek_table"),
    ("KEYWARD_CACHE_SIZE", "-1"),
    ("KEYWARD_DEK_CACHE_SECONDS", "five"),
    ("KEYWARD_KEK_CACHE_SECONDS", "86401"),
    ("KEYWARD_MODE_TTL", "3601"),
    ("KEYWARD_BLOB_CONTAINERS", "Docs"),
    ("KEYWARD_JOB_QUEUE", "a--b"),
    ("KEYWARD_SWEEP_SCHEDULE", "*/5 * * * *"),
    ("KEYWARD_SWEEP_SCHEDULE", "0 60 * * * *"),
    ("KEYWARD_SWEEP_SCHEDULE", "0 */0 * * * *"),
    ("KEYWARD_SWEEP_SCHEDULE", "0 * * * FOO *"),
    ("KEYWARD_SWEEP_SCHEDULE", "0 1-2-3 * * * *"),
    ("KEYWARD_DEPENDENTS_SWEEP_SCHEDULE", "*/5 * * * *"),
    ("KEYWARD_DEPENDENTS_SWEEP_SCHEDULE", "0 60 * * * *"),
    ("KEYWARD_VERIFY_INTERVAL_HOURS", "-1"),
    ("KEYWARD_VERIFY_INTERVAL_HOURS", "8761"),
    ("KEYWARD_VERIFY_INTERVAL_HOURS", "daily"),
    ("KEYWARD_RETENTION_DAYS", "1"),
    ("KEYWARD_RETENTION_DAYS", "3651"),
    ("KEYWARD_RETENTION_DAYS", "1.5"),
    ("KEYWARD_RETENTION_SCHEDULE", "30 3 * * *"),
    ("KEYWARD_RETENTION_SCHEDULE", "0 30 25 * * *"),
    ("KEYWARD_FACE_SUBSCRIPTIONS", "my-subscription"),
    ("KEYWARD_FACE_RESOURCE_GROUPS", "ends-with-dot."),
    ("KEYWARD_FACE_REPOINT", "maybe"),
    ("KEYWARD_AUTO_ROTATE_NEAR_EXPIRY", "2"),
    ("KEYWARD_EXPIRY_WARNING_DAYS", "0"),
    ("KEYWARD_EXPIRY_WARNING_DAYS", "thirty"),
    ("KEYWARD_EVENTGRID_TOPIC_ENDPOINT", "https://evil.example/api/events"),
    ("KEYWARD_EVENTGRID_TOPIC_ENDPOINT", "http://t1.westeurope-1.eventgrid.azure.net/api/events"),
    ("KEYWARD_ARM_ENDPOINT", "https://management.azure.com.evil.example"),
    ("KEYWARD_ARM_ENDPOINT", "https://user:pw@management.azure.com"),
    ("KEYWARD_ARM_ENDPOINT", "https://management.azure.com/subscriptions"),
    ("KEYWARD_ARM_ENDPOINT", "https://[::1"),
    ("KEYWARD_CA_BUNDLE", "/nonexistent/ca.pem"),
    ("AZURE_CLIENT_ID", "not-a-guid"),
    ("KEYWARD_ALLOW_LEGACY_RSA1_5", "perhaps"),
    ("KEYWARD_REWRAP_CONCURRENCY", "0"),
    ("KEYWARD_REWRAP_SLICE_SECONDS", "99999"),
    ("KEYWARD_VAULT_SHARE", "0"),
    ("KEYWARD_VAULT_SHARE", "1.5"),
    ("KEYWARD_VAULT_SHARE", "-0.5"),
    ("KEYWARD_VAULT_SHARE", "half"),
    ("KEYWARD_VAULT_SHARE", "nan"),
    ("KEYWARD_BUDGET_LEASE_SECONDS", "4"),
    ("KEYWARD_BUDGET_LEASE_SECONDS", "61"),
    ("KEYWARD_BUDGET_LEASE_SECONDS", "15.5"),
    ("KEYWARD_STORAGE_ACCOUNT_URL", "https://evil.example"),
    ("KEYWARD_STORAGE_CONNECTION", "DefaultEndpointsProtocol=https;AccountName=x"),
    ("KEYWARD_FACE_REPION", "true"),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v}" for n, v in BAD])
def test_bad_values_name_the_setting(name: str, value: str) -> None:
    error = error_for(**{name: value})
    assert error.setting == name
    assert name in str(error)
    assert isinstance(error, ConfigurationError)


def test_verification_and_retention_settings() -> None:
    """Issue 12: verification every 24 hours and 30 days of retention by default; 0 turns
    verification off; a retention shorter than Event Grid's redelivery window is refused
    with the reason."""
    s = settings()
    assert s.verify_interval == timedelta(hours=24)
    assert s.retention_days == 30
    assert s.retention_schedule == "0 30 3 * * *"
    off = settings(KEYWARD_VERIFY_INTERVAL_HOURS="0", KEYWARD_RETENTION_DAYS="2")
    assert off.verify_interval == timedelta(0)
    assert off.retention_days == 2
    assert "redelivers for up to 24 hours" in str(error_for(KEYWARD_RETENTION_DAYS="1"))
    assert "0 turns verification off" in str(error_for(KEYWARD_VERIFY_INTERVAL_HOURS="9000"))
    assert "not a whole number" in str(error_for(KEYWARD_RETENTION_DAYS="thirty"))


def test_missing_allow_list_is_named() -> None:
    with pytest.raises(SettingError) as info:
        Settings.from_env({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert info.value.setting == "KEYWARD_VAULT_ALLOWLIST"
    assert "required" in str(info.value)


def test_account_url_uses_identity_and_wins_over_the_connection() -> None:
    s = settings(
        AzureWebJobsStorage="DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=c2VjcmV0",
        KEYWARD_STORAGE_ACCOUNT_URL="https://prodacct.blob.core.windows.net/",
    )
    assert s.storage.uses_identity
    assert s.storage.blob_url == "https://prodacct.blob.core.windows.net"
    assert s.storage.queue_url == "https://prodacct.queue.core.windows.net"
    assert s.storage.table_url == "https://prodacct.table.core.windows.net"


def test_identity_based_connection_by_account_name() -> None:
    s = Settings.from_env(
        {"KEYWARD_VAULT_ALLOWLIST": "contoso-kv", "AzureWebJobsStorage__accountName": "prodacct"}
    )
    assert s.storage.uses_identity
    assert s.storage.table_url == "https://prodacct.table.core.windows.net"


def test_identity_based_connection_by_service_uris() -> None:
    env = {"KEYWARD_VAULT_ALLOWLIST": "contoso-kv", "KEYWARD_STORAGE_CONNECTION": "KeywardStorage"}
    for service in ("blob", "queue", "table"):
        env[f"KeywardStorage__{service}ServiceUri"] = f"https://acct.{service}.core.windows.net/"
    s = Settings.from_env(env)
    assert s.storage.connection_setting == "KeywardStorage"
    assert s.storage.queue_url == "https://acct.queue.core.windows.net"


def test_a_keyed_connection_string_is_refused() -> None:
    error = error_for(
        AzureWebJobsStorage="DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=c2VjcmV0"
    )
    assert error.setting == "AzureWebJobsStorage"
    assert "c2VjcmV0" not in str(error)
    sas = error_for(
        AzureWebJobsStorage="BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=1"
    )
    assert sas.setting == "AzureWebJobsStorage"


def test_azurite_well_known_account_is_allowed_and_not_in_repr() -> None:
    s = settings(AzureWebJobsStorage=AZURITE)
    assert s.storage.connection_string == AZURITE
    assert "Eby8vdM02" not in repr(s)


def test_missing_storage_names_the_connection_setting() -> None:
    with pytest.raises(SettingError) as info:
        Settings.from_env({"KEYWARD_VAULT_ALLOWLIST": "contoso-kv"})
    assert info.value.setting == "AzureWebJobsStorage"
    assert "KEYWARD_STORAGE_ACCOUNT_URL" in str(info.value)


def test_credential_looking_keyward_value_is_refused() -> None:
    error = error_for(KEYWARD_BLOB_CONTAINERS="AccountKey=abc")
    assert error.setting == "KEYWARD_BLOB_CONTAINERS"
    assert "abc" not in str(error)


def test_dev_tool_variables_are_not_settings_and_are_ignored() -> None:
    s = settings(KEYWARD_AZURITE_CONNECTION_STRING=AZURITE, KEYWARD_EMULATOR_READY="1")
    assert s.dek_table == "keywarddeks"


def test_a_typo_suggests_the_setting() -> None:
    assert "KEYWARD_VAULT_ALLOWLIST" in str(error_for(KEYWARD_VAULT_ALLOW_LIST="x"))


def test_settings_are_frozen() -> None:
    s = settings()
    with pytest.raises(AttributeError):
        s.dependents = {}  # type: ignore[misc]


def test_local_settings_example_lists_only_known_settings_and_every_keyward_one() -> None:
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    known = set(SPEC_BY_NAME) | HOST_SETTINGS
    assert set(values) <= known, set(values) - known
    assert set(SPEC_BY_NAME) <= set(values), set(SPEC_BY_NAME) - set(values)
    # The example itself is a valid configuration.
    Settings.from_env({k: v for k, v in values.items() if isinstance(v, str)})


def test_no_setting_keyward_lists_is_deprecated_on_flex_consumption() -> None:
    """Issue 14: on Flex Consumption the runtime, its version and the package are the app's
    ``functionAppConfig``; keyward neither requires nor lists the app settings that set them."""
    assert {"FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE"} <= FLEX_DEPRECATED_SETTINGS
    assert not FLEX_DEPRECATED_SETTINGS & (HOST_SETTINGS | set(SPEC_BY_NAME))
    assert LOCAL_ONLY_HOST_SETTINGS <= HOST_SETTINGS
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    assert not FLEX_DEPRECATED_SETTINGS & set(values)
    # The local host still gets what Core Tools needs.
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"


def _readme_section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else None]


def test_readme_deploys_on_flex_consumption_without_deprecated_settings() -> None:
    deploying = _readme_section("Deploying")
    commands = "\n".join(re.findall(r"```\n(.*?)```", deploying, re.DOTALL))
    assert "--flexconsumption-location" in commands
    assert "az functionapp scale config set" in commands
    # keyward refuses a keyed connection string: the commands make the host's storage identity
    # based, and that configuration is valid.
    assert "AzureWebJobsStorage__accountName=<storage-account>" in commands
    assert "--setting-names AzureWebJobsStorage\n" in commands
    Settings.from_env(
        {"KEYWARD_VAULT_ALLOWLIST": "contoso-kv", "AzureWebJobsStorage__accountName": "acct"}
    )
    for name in FLEX_DEPRECATED_SETTINGS | LOCAL_ONLY_HOST_SETTINGS:
        assert name not in commands, name
    assert "--publish-local-settings" not in commands.replace("never --publish-local-settings", "")
    # Whatever the README names as deprecated is in keyward's list, and the reverse.
    prose = deploying.split("deprecated on Flex")[0].rsplit("do not set", 1)[1]
    assert set(re.findall(r"`([A-Z_]+)`", prose)) == FLEX_DEPRECATED_SETTINGS


def test_readme_instance_memory_and_scale_limit_are_flex_values() -> None:
    deploying = _readme_section("Deploying")
    memory = re.findall(r"--instance-memory (\d+)", deploying)
    assert memory == ["2048"]
    assert f"**Instance memory: {memory[0]} MB" in deploying
    limit = re.findall(r"--maximum-instance-count (\d+)", deploying)
    assert len(set(limit)) == 1, "one limit, in the command and the prose"
    assert f"**Scale limits: `--maximum-instance-count {limit[0]}`.**" in deploying
    assert "**Always ready: none.**" in deploying
    assert "always-ready set" not in deploying


def test_readme_flex_arithmetic_uses_the_current_defaults() -> None:
    """The instance-memory arithmetic starts from the default share and the host.json queue
    settings; if either changes, the README's figures must be worked out again."""
    host = json.loads((ROOT / "host.json").read_text())["extensions"]["queues"]
    per_instance = host["batchSize"] + host["newBatchThreshold"]
    share = float(SPEC_BY_NAME["KEYWARD_VAULT_SHARE"].default or "0")
    part = round((share - 0.02) * 400)
    deploying = _readme_section("Deploying")
    assert per_instance == 2
    assert f"0.48 x 400 = {part} DEKs/s" in deploying
    assert f"{per_instance} x {part}" in deploying or f"two are {per_instance * part}" in deploying


def test_settings_table_lists_every_setting() -> None:
    table = render_settings_table()
    assert table.startswith("| Setting | Default | Meaning |")
    for spec in SPECS:
        assert f"`{spec.name}`" in table
    assert "*(required)*" in table


def test_docs_carry_the_current_settings_table() -> None:
    docs = (ROOT / "docs" / "events.md").read_text()
    assert render_settings_table().strip() in docs


def test_readme_settings_table_matches_when_it_has_one() -> None:
    readme = (ROOT / "README.md").read_text()
    if "| Setting | Default | Meaning |" in readme:
        assert render_settings_table().strip() in readme


@pytest.mark.parametrize("value", ["481", "600", "3600"])
def test_a_slice_that_would_outlive_the_function_timeout_is_refused_at_start(value: str) -> None:
    """Issue 11 item 8: slice + safety margin must end before host.json's functionTimeout."""
    error = error_for(KEYWARD_REWRAP_SLICE_SECONDS=value)
    assert error.setting == "KEYWARD_REWRAP_SLICE_SECONDS"
    assert "functionTimeout" in str(error)
    assert "at most 480" in str(error)


def test_the_longest_allowed_slice_is_accepted() -> None:
    assert settings(KEYWARD_REWRAP_SLICE_SECONDS="480").rewrap_slice_seconds == 480


@pytest.mark.parametrize("value", ["0", "1.01", "-1", "inf", "nan"])
def test_a_vault_share_outside_zero_to_one_is_refused_saying_what_it_is(value: str) -> None:
    error = error_for(KEYWARD_VAULT_SHARE=value)
    assert error.setting == "KEYWARD_VAULT_SHARE"
    assert "(0, 1]" in str(error)


def test_the_vault_share_and_budget_lease_are_read() -> None:
    s = settings(KEYWARD_VAULT_SHARE="1", KEYWARD_BUDGET_LEASE_SECONDS="60")
    assert (s.vault_share, s.budget_lease_seconds) == (1.0, 60)
    assert settings(KEYWARD_VAULT_SHARE="0.05").vault_share == 0.05
    assert settings(KEYWARD_BUDGET_LEASE_SECONDS="5").budget_lease_seconds == 5


def test_vault_subscriptions_default_to_one_group_for_every_vault() -> None:
    s = settings(KEYWARD_VAULT_ALLOWLIST="kv-a,kv-b")
    assert s.vault_subscriptions.group_of("kv-a.vault.azure.net") == "default"
    assert s.vault_subscriptions.group_of("kv-b.vault.azure.net") == "default"


def test_vault_subscriptions_map_allow_listed_vaults_to_groups() -> None:
    s = settings(
        KEYWARD_VAULT_ALLOWLIST="kv-a,kv-b,kv-c,kv-d,local=https://127.0.0.1:8443",
        KEYWARD_VAULT_SUBSCRIPTIONS=" kv-a=sub1; KV-B = Sub1 ;kv-c=sub2;local=dev;",
    )
    groups = s.vault_subscriptions
    assert groups.group_of("kv-a.vault.azure.net") == "sub1"
    assert groups.group_of("KV-B.vault.azure.net") == "sub1"
    assert groups.group_of("kv-c.vault.azure.net") == "sub2"
    assert groups.group_of("127.0.0.1:8443") == "dev"  # a development entry: by its origin
    assert groups.group_of("kv-d.vault.azure.net") == "default"  # unnamed
    engine = Settings.from_env({**BASE, "KEYWARD_VAULT_ALLOWLIST": "kv-a"})
    assert (
        engine.vault_subscriptions
        == Settings(
            vault_allowlist=engine.vault_allowlist, storage=engine.storage
        ).vault_subscriptions
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("kv-a", "is not vault=group"),
        ("kv-a=", "is not vault=group"),
        ("=sub1", "is not vault=group"),
        ("kv-a:sub1", "is not vault=group"),
        ("kv_a=sub1", "is not a vault name"),
        ("kv-a=sub/1", "group 'sub/1' must be"),
        ("kv-a=-sub", "group '-sub' must be"),
        ("kv-zz=sub1", "'kv-zz' is not on KEYWARD_VAULT_ALLOWLIST"),
        ("kv-a=sub1;kv-a=sub2", "'kv-a' is named twice"),
    ],
)
def test_a_malformed_vault_subscriptions_value_is_refused_saying_why(value: str, says: str) -> None:
    error = error_for(KEYWARD_VAULT_ALLOWLIST="kv-a,kv-b", KEYWARD_VAULT_SUBSCRIPTIONS=value)
    assert error.setting == "KEYWARD_VAULT_SUBSCRIPTIONS"
    assert says in str(error)


def test_the_verdict_s_wait_after_a_rotation_is_the_writers_bound_and_never_shorter() -> None:
    assert settings().superseded_wait == timedelta(seconds=155)  # 60 + 30 + 60 + 5
    assert settings(KEYWARD_MODE_TTL="0").superseded_wait == timedelta(seconds=125)
    longer = settings(KEYWARD_SUPERSEDED_WAIT_SECONDS="600")
    assert longer.superseded_wait == timedelta(seconds=600)
    with pytest.raises(SettingError, match=r"KEYWARD_SUPERSEDED_WAIT_SECONDS.*shorter"):
        _ = settings(KEYWARD_SUPERSEDED_WAIT_SECONDS="0").superseded_wait
    # Only the emulator's tests may shorten it: every allow-listed vault a development one.
    dev = settings(
        KEYWARD_VAULT_ALLOWLIST="emu=https://127.0.0.1:8443", KEYWARD_SUPERSEDED_WAIT_SECONDS="0"
    )
    assert dev.superseded_wait == timedelta(0)
    ahead = settings(
        KEYWARD_VAULT_ALLOWLIST="emu=https://127.0.0.1:8443",
        KEYWARD_SUPERSEDED_WAIT_SECONDS="-86400",
    )
    assert ahead.superseded_wait == timedelta(days=-1)
    with pytest.raises(SettingError):
        _ = settings(KEYWARD_SUPERSEDED_WAIT_SECONDS="-1").superseded_wait
    mixed = settings(
        KEYWARD_VAULT_ALLOWLIST="emu=https://127.0.0.1:8443,contoso-kv",
        KEYWARD_SUPERSEDED_WAIT_SECONDS="0",
    )
    with pytest.raises(SettingError):
        _ = mixed.superseded_wait
