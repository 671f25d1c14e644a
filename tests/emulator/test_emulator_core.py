"""The emulator process itself: TLS, readiness, the control API, state persistence."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from devtools.emulator.client import EmulatorError
from devtools.emulator.pytest_plugin import (
    EmulatorVault,
    RunningEmulator,
    VaultFactory,
    start_emulator,
    stop_emulator,
)


def test_server_certificate_verifies_against_the_printed_ca(emulator: RunningEmulator) -> None:
    context = ssl.create_default_context(cafile=emulator.ca_path)
    with urllib.request.urlopen(f"{emulator.url}/control/health", context=context) as response:
        assert json.loads(response.read())["status"] == "ok"


def test_default_trust_store_rejects_the_emulator(emulator: RunningEmulator) -> None:
    default = ssl.create_default_context()
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(f"{emulator.url}/control/health", context=default)
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)


def test_each_vault_gets_its_own_loopback_port(emulator: RunningEmulator) -> None:
    first = emulator.client.create_vault("kwcoreportsa")
    second = emulator.client.create_vault("kwcoreportsb")
    try:
        assert first["url"] == f"https://127.0.0.1:{first['port']}"
        assert first["port"] != second["port"] != emulator.port
        # The vault port answers the data plane (401 challenge), not the control API.
        answer = requests.get(
            f"{first['url']}/keys?api-version=2025-07-01", verify=emulator.ca_path
        )
        assert answer.status_code == 401
        assert "WWW-Authenticate" in answer.headers
    finally:
        emulator.client.delete_vault("kwcoreportsa")
        emulator.client.delete_vault("kwcoreportsb")


def test_duplicate_vault_is_refused(emulator: RunningEmulator) -> None:
    emulator.client.create_vault("kwcoredup")
    try:
        with pytest.raises(EmulatorError) as refused:
            emulator.client.create_vault("kwcoredup")
        assert refused.value.status == 409
    finally:
        emulator.client.delete_vault("kwcoredup")


def test_deleted_vault_stops_listening(emulator: RunningEmulator) -> None:
    vault = emulator.client.create_vault("kwcoregone")
    emulator.client.delete_vault("kwcoregone")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{vault['url']}/keys", verify=emulator.ca_path, timeout=5)


def test_state_dump_never_contains_private_keys(emulator: RunningEmulator) -> None:
    emulator.client.create_vault("kwcoredump")
    try:
        emulator.client.create_key("kwcoredump", "k")
        dump = json.dumps(emulator.client.dump_state())
        assert "PRIVATE KEY" not in dump
        assert "<redacted>" in dump
    finally:
        emulator.client.delete_vault("kwcoredump")


def test_clock_only_moves_forward(emulator: RunningEmulator) -> None:
    before = emulator.client.clock()["now"]
    after = emulator.client.advance_clock(3600)["now"]
    assert after >= before + 3600
    with pytest.raises(EmulatorError):
        emulator.client.advance_clock(-1)


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    first_dir = tmp_path / "first"
    first_dir.mkdir()
    running = _start_with_state(first_dir, state_file)
    try:
        running.client.create_vault("kwpersist")
        bundle = running.client.create_key("kwpersist", "k", tags={"t": "1"})
        time.sleep(0.6)  # the state file is written a quarter second after a change
    finally:
        stop_emulator(running)
    assert state_file.exists()
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    running = _start_with_state(second_dir, state_file)
    try:
        vault = running.client.get_vault("kwpersist")
        assert vault["keys"] == ["k"]
        dump = running.client.dump_state()
        versions = dump["vaults"][0]["keys"][0]["versions"]
        assert bundle["key"]["kid"].endswith(versions[0]["version"])
    finally:
        stop_emulator(running)


def _start_with_state(workdir: Path, state_file: Path) -> RunningEmulator:
    return start_emulator(workdir, ["--state", str(state_file)])


def test_vault_ports_keep_working_across_many_creates_and_deletes(
    emulator: RunningEmulator,
) -> None:
    """Deleting vaults frees their sockets cleanly; new vaults on reused descriptors answer."""
    for round_ in range(12):
        name = f"kwchurn{round_}"
        vault = emulator.client.create_vault(name)
        answer = requests.get(f"{vault['url']}/keys", verify=emulator.ca_path, timeout=10)
        assert answer.status_code == 401
        emulator.client.delete_vault(name)


def test_counters_reset_per_vault(emulator_vault_factory: VaultFactory) -> None:
    first, second = emulator_vault_factory(), emulator_vault_factory()
    for vault in (first, second):
        vault.client.create_key(vault.name, "k")
        vault.key_client().get_key("k")
    first.client.reset_counters(first.name)
    assert first.client.counters(first.name)["vault"]["ops"] == {}
    assert second.client.counters(second.name)["vault"]["ops"]["get"] == 1
    first.client.reset_counters()
    assert second.client.counters(second.name)["vault"]["ops"] == {}


def test_role_assignments_by_name_or_guid(emulator_vault_factory: VaultFactory) -> None:
    vault = emulator_vault_factory(rbac=True)
    principal = vault.principal()
    by_guid = vault.client.create_role_assignment(
        principal, "12338af0-0e69-4776-bea7-57ae8d297424", vault=vault.name, key="k"
    )
    assert by_guid["scope"] == f"{vault.arm_id}/keys/k"
    assert by_guid["id"].endswith(
        f"/providers/Microsoft.Authorization/roleAssignments/{by_guid['name']}"
    )
    names = [a["name"] for a in vault.client.list_role_assignments()]
    assert by_guid["name"] in names
    vault.client.delete_role_assignment(by_guid["name"])
    with pytest.raises(EmulatorError) as unknown:
        vault.client.create_role_assignment(principal, "Owner", vault=vault.name)
    assert unknown.value.status == 400
    with pytest.raises(EmulatorError) as gone:
        vault.client.delete_role_assignment(by_guid["name"])
    assert gone.value.status == 404


def test_seeded_keys_follow_the_vault_kind(emulator_vault_factory: VaultFactory) -> None:
    vault = emulator_vault_factory()
    hsm = emulator_vault_factory(managed_hsm=True)
    assert hsm.client.create_key(hsm.name, "aes", kty="oct-HSM")["key"]["kty"] == "oct-HSM"
    assert hsm.client.create_key(hsm.name, "rsa")["key"]["kty"] == "RSA-HSM"
    with pytest.raises(EmulatorError):
        vault.client.create_key(vault.name, "aes", kty="oct-HSM")
    seeded = vault.client.create_key(vault.name, "rsa", size=3072, key_ops=["unwrapKey"])
    assert seeded["key"]["key_ops"] == ["unwrapKey"]
    assert "d" not in seeded["key"]


def test_principal_client_id_names_the_caller(emulator_vault: EmulatorVault) -> None:
    client_id = "11111111-2222-3333-4444-555555555555"
    principal = emulator_vault.client.create_principal(client_id=client_id)["object_id"]
    emulator_vault.client.create_key(emulator_vault.name, "k")
    with pytest.raises(HttpResponseError) as refused:
        emulator_vault.key_client(object_id=principal).get_key("k")
    assert f"appid={client_id};oid={principal}" in str(refused.value.message)
