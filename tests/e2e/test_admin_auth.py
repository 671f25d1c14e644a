"""Issue 14, the admin API behind Microsoft Entra ID, over the local host's real HTTP front
door: tokens minted and signed by the emulator's tenant (devtools/emulator/entra.py), checked
by keyward against the keys the emulator publishes (OpenID metadata, JWKS, over HTTPS).

Each refusal has its status, a ``WWW-Authenticate: Bearer`` challenge where RFC 6750 asks
for one and a JSON error with a specific code; the token is never echoed. A reader reads; an
operator's retire is recorded with its caller, in the operation record and the audit trail.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from typing import Any

import aiohttp
import azure.functions as func
import pytest

from devtools.emulator.entra import ADMIN_APP_ID_URI
from devtools.localhost.telemetry import in_memory_telemetry
from shared.composition import context_for_current_loop, reset_contexts
from tests.e2e.conftest import Stack
from tests.e2e.test_dead_letters import _dead_letter_a_rotation
from tests.e2e.test_functions_bindings import _function, _post
from tests.e2e.test_rotation_flow import DEK_COUNT, _seed

pytestmark = [pytest.mark.azurite, pytest.mark.emulator]

OTHER_TENANT = "0b1e2c3d-4e5f-4a6b-8c7d-0000000000ff"


async def _call(
    stack: Stack, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with (
        aiohttp.ClientSession(base_url=stack.host.base_url) as http,
        http.request(method, path, json=body, headers=headers) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


def _forged_principal(roles: list[str]) -> dict[str, str]:
    """The headers App Service Authentication would add, claiming the operator role."""
    principal = {"auth_typ": "aad", "claims": [{"typ": "roles", "val": r} for r in roles],
                 "name_typ": "name", "role_typ": "roles"}  # fmt: skip
    return {
        "X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(principal).encode()).decode(),
        "X-MS-CLIENT-PRINCIPAL-ID": str(uuid.uuid4()),
        "X-MS-CLIENT-PRINCIPAL-NAME": "mallory@contoso.example",
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
    }


async def test_each_refusal_answers_its_status_challenge_and_json_code(stack: Stack) -> None:
    key_ref = f"{stack.vault.url}/keys/never-{uuid.uuid4().hex[:8]}"
    retire = {"key": f"{key_ref}/0123456789abcdef0123456789abcdef"}

    async def refused(headers: dict[str, str], path: str = "/api/retire") -> tuple[int, str, str]:
        status, body, answered = await _call(stack, "POST", path, headers, retire)
        token = headers.get("Authorization", "Bearer -").split()[-1]
        assert token not in json.dumps(body)
        assert set(body) == {"error"}
        assert set(body["error"]) == {"code", "message"}
        return status, body["error"]["code"], answered.get("WWW-Authenticate", "")

    def mint(role: str | None = "operator", **claims: Any) -> dict[str, str]:
        return stack.admin_headers(role, **claims)

    status, code, challenge = await refused({})
    assert (status, code, challenge) == (401, "MissingToken", 'Bearer realm="keyward"')
    cases = [
        (await asyncio.to_thread(mint, expired=True), "TokenExpired"),
        (await asyncio.to_thread(mint, tenant=OTHER_TENANT), "WrongTenant"),
        (await asyncio.to_thread(mint, audience=ADMIN_APP_ID_URI), "InvalidAudience"),
        (await asyncio.to_thread(mint, version=1, audience=ADMIN_APP_ID_URI), "InvalidAudience"),
        (await asyncio.to_thread(mint, version=1), "InvalidIssuer"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "MalformedToken"),
        ({"Authorization": "Bearer not.a.jwt"}, "MalformedToken"),
    ]
    for headers, expected in cases:
        status, code, challenge = await refused(headers)
        assert (status, code) == (401, expected), headers
        assert challenge.startswith('Bearer realm="keyward", error="invalid_token"')

    # A reader (or a token with no role) on an operator route: 403, nothing started; who
    # tried is audited (the token proved it), with the key the body named.
    for role, path in [("reader", "/api/retire"), ("reader", "/api/migrate"),
                       (None, "/api/retire"), ("reader", "/api/rotate-keks")]:  # fmt: skip
        reader = await asyncio.to_thread(mint, role)
        status, code, challenge = await refused(reader, path)
        assert (status, code) == (403, "MissingRole"), (role, path)
        assert 'error="insufficient_scope"' in challenge
    reader_oid = str(uuid.uuid4())
    reader = await asyncio.to_thread(mint, "reader", oid=reader_oid)
    status, body, _ = await _call(stack, "POST", "/api/rewrap", reader, {"key": key_ref})
    assert (status, body["error"]["code"]) == (403, "MissingRole")
    status, body, _ = await _call(stack, "POST", "/api/dead-letters/replay", reader, {})
    assert (status, body["error"]["code"]) == (403, "MissingRole")
    rows = await _audit_rows(key_ref)
    assert sorted((r["action"], r["outcome"], r["detail"]) for r in rows) == sorted(
        [("retire", "refused", "MissingRole"), ("migrate", "refused", "MissingRole"),
         ("retire", "refused", "MissingRole"), ("rotate_keks", "refused", "MissingRole"),
         ("rewrap", "refused", "MissingRole")]
    )  # fmt: skip
    assert all(r["operation_id"] is None for r in rows)
    mine = await _audit_rows(reader_oid)
    assert [(r["action"], r["target"]) for r in mine] == [
        ("replay_dead_letters", "*"), ("rewrap", key_ref)]  # fmt: skip


async def _audit_rows(about: str) -> list[dict[str, Any]]:
    """The audit rows (newest first) whose target or caller names ``about``: the state table
    is shared by every test of the session."""
    rows = await (await context_for_current_loop()).audit_trail().recent(200)
    return [
        row for row in rows
        if about in str(row["target"]) or (row["caller"] or {}).get("object_id") == about
    ]  # fmt: skip


async def test_forged_principal_headers_are_ignored_entirely(stack: Stack) -> None:
    """App Service Authentication's headers are what a caller can set when the platform
    feature is off: keyward never reads them. Without a token they are a missing token;
    beside a reader's token they add no role; beside a bad token the token decides."""
    forged = _forged_principal(["Keyward.Operator"])
    retire = {"key": f"{stack.vault.url}/keys/k/0123456789abcdef0123456789abcdef"}
    status, body, _ = await _call(stack, "POST", "/api/retire", forged, retire)
    assert (status, body["error"]["code"]) == (401, "MissingToken")
    status, body, _ = await _call(stack, "GET", "/api/status", forged)
    assert (status, body["error"]["code"]) == (401, "MissingToken")
    reader = await asyncio.to_thread(stack.admin_headers, "reader")
    status, body, _ = await _call(stack, "POST", "/api/retire", {**forged, **reader}, retire)
    assert (status, body["error"]["code"]) == (403, "MissingRole")
    expired = await asyncio.to_thread(stack.admin_headers, "operator", expired=True)
    status, body, _ = await _call(stack, "GET", "/api/status", {**forged, **expired})
    assert (status, body["error"]["code"]) == (401, "TokenExpired")


async def test_a_reader_reads_status_operations_verdicts_and_dry_runs(stack: Stack) -> None:
    store, vault_keys, key_ref = await _seed(stack, "readable")
    reader = await asyncio.to_thread(stack.admin_headers, "reader", name="rita@contoso.example")
    status, body, _ = await _call(stack, "GET", "/api/status?limit=5", reader)
    assert status == 200
    assert "jobs" in body
    assert "audit" in body
    for path, payload in [("/api/verdict", {"key": key_ref}),
                          ("/api/rewrap", {"key": key_ref, "dry_run": True})]:  # fmt: skip
        status, accepted, _ = await _call(stack, "POST", path, reader, payload)
        assert status == 202, accepted
        for _ in range(600):
            status, found, _ = await _call(stack, "GET", accepted["status_url"], reader)
            assert status == 200
            if found["status"] in {"succeeded", "failed"}:
                break
            await asyncio.sleep(0.05)
        assert found["status"] == "succeeded", found
        assert found["caller"] is None  # reads are not recorded as anyone's change
    status, dry, _ = await _call(stack, "POST", "/api/dead-letters/replay", reader,
                                 {"dry_run": True})  # fmt: skip
    # The stack has no dead-letter container: the reader gets past the gate to the reason.
    assert (status, dry["error"]["code"]) == (500, "Misconfigured")
    assert await _audit_rows(key_ref) == []
    await store.close()
    await asyncio.to_thread(vault_keys.close)


async def test_the_operators_retire_is_recorded_with_the_caller(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store, vault_keys, key_ref = await _seed(stack, "audited")
    rotated = await asyncio.to_thread(stack.key_client.rotate_key, "audited")
    new = rotated.properties.version
    oid = str(uuid.uuid4())
    operator = await asyncio.to_thread(
        stack.admin_headers, "operator", oid=oid, name="olga@contoso.example"
    )
    # The rewrap to the new version, then the old version's retirement, as the operator.
    status, started, _ = await _call(stack, "POST", "/api/rewrap", operator, {"key": key_ref})
    assert status == 202, started
    old = None
    for _ in range(600):
        status, verdict, _ = await _call(stack, "POST", "/api/verdict", operator, {"key": key_ref})
        found = await _poll(stack, operator, verdict["status_url"])
        versions = found["result"]["versions"]
        if all(v["current"] == 0 for v in versions if v["version"] != new):
            old = next(v["version"] for v in versions if v["version"] != new)
            break
        await asyncio.sleep(0.1)
    assert old is not None, "the rewrap did not finish"
    status, accepted, _ = await _call(
        stack, "POST", "/api/retire", operator, {"key": f"{key_ref}/{old}"}
    )
    assert status == 202, accepted
    retired = await _poll(stack, operator, accepted["status_url"])
    assert retired["status"] == "succeeded", retired
    assert retired["result"]["previous_wraps_dropped"] == DEK_COUNT
    caller = {"object_id": oid, "tenant_id": stack.settings["KEYWARD_ADMIN_TENANT_ID"],
              "name": "olga@contoso.example", "roles": ["Keyward.Operator"],
              "via": "admin-api"}  # fmt: skip
    assert retired["caller"] == caller

    # The audit trail, newest first: the retire, then the rewrap; status shows them.
    audit = await _audit_rows(oid)
    assert [(row["action"], row["outcome"]) for row in audit] == [
        ("retire", "accepted"), ("rewrap", "accepted")]  # fmt: skip
    assert audit[0]["caller"] == caller
    assert audit[0]["operation_id"] == accepted["operation_id"]
    assert audit[0]["target"] == f"{key_ref}/{old}"
    status, page, _ = await _call(stack, "GET", "/api/status", operator)
    assert audit[0] in page["audit"]
    token = operator["Authorization"].split()[1]
    assert token not in json.dumps(page)
    # One audit log record per mutating call, the caller's ids as attributes; the token in
    # no log record (message or attribute).
    records = [r for r in caplog.records if r.name == "keyward.audit"]
    assert [getattr(r, "keyward_action", None) for r in records] == ["rewrap", "retire"]
    assert {getattr(r, "caller_object_id", None) for r in records} == {oid}
    assert not [r for r in caplog.records if token in r.getMessage() or token in str(vars(r))]
    await store.close()
    await asyncio.to_thread(vault_keys.close)


async def _poll(stack: Stack, headers: dict[str, str], url: str) -> dict[str, Any]:
    for _ in range(600):
        status, found, _ = await _call(stack, "GET", url, headers)
        assert status == 200, found
        if found["status"] in {"succeeded", "failed"}:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not end")


async def test_a_refused_mutation_is_recorded_too(stack: Stack) -> None:
    operator = await asyncio.to_thread(stack.admin_headers, "operator")
    key = f"{stack.vault.url}/keys/missing-{uuid.uuid4().hex[:8]}/{'a' * 32}"
    status, body, _ = await _call(stack, "POST", "/api/retire", operator, {"key": key})
    assert status == 404, body
    (row,) = await _audit_rows(key)
    assert (row["action"], row["outcome"], row["detail"]) == ("retire", "refused", "KeyNotFound")


async def test_an_admin_call_is_a_span_naming_its_proven_caller_never_its_token(
    stack: Stack,
) -> None:
    telemetry = in_memory_telemetry()
    telemetry.clear()
    oid = str(uuid.uuid4())
    operator = await asyncio.to_thread(stack.admin_headers, "operator", oid=oid)
    key = f"{stack.vault.url}/keys/missing-{uuid.uuid4().hex[:8]}/{'a' * 32}"
    status, _, _ = await _call(stack, "POST", "/api/retire", operator, {"key": key})
    assert status == 404
    (span,) = [s for s in telemetry.spans() if s.name == "admin_retire"]
    attributes = dict(span.attributes or {})
    assert attributes["faas.trigger"] == "http"
    assert attributes["keyward.caller.object_id"] == oid
    assert attributes["keyward.caller.roles"] == "Keyward.Operator"
    assert attributes["keyward.caller.via"] == "admin-api"
    token = operator["Authorization"].split()[1]
    assert token not in json.dumps(attributes, default=str)
    # A refused token never reaches the span: no caller is named.
    telemetry.clear()
    status, _, _ = await _call(stack, "GET", "/api/status", {"Authorization": "Bearer x.y.z"})
    assert status == 401
    (refused,) = [s for s in telemetry.spans() if s.name == "admin_status"]
    assert "keyward.caller.object_id" not in (refused.attributes or {})


async def test_the_dead_letter_replay_over_http_is_the_operators_and_recorded(
    quiet_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = quiet_stack
    container = f"deadletters{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KEYWARD_DEADLETTER_CONTAINER", container)
    for context in reset_contexts():  # the host's next call reads the new setting
        await context.aclose()
    await _dead_letter_a_rotation(stack, container)
    reader = await asyncio.to_thread(stack.admin_headers, "reader")
    operator = await asyncio.to_thread(stack.admin_headers, "operator")
    path = "/api/dead-letters/replay"
    status, dry, _ = await _call(stack, "POST", path, reader, {"dry_run": True})
    assert status == 200, dry
    (would,) = dry["replayed"]
    status, report, _ = await _call(stack, "POST", path, operator, {"vault": stack.vault.name})
    assert status == 200, report
    (entry,) = report["replayed"]
    assert (entry["blob"], entry["outcomes"]) == (would["blob"], ["handled"])
    assert entry["moved_to"] == f"replayed/{would['blob']}"
    (row,) = await _audit_rows(stack.vault.name)
    assert (row["action"], row["target"], row["outcome"]) == (
        "replay_dead_letters", stack.vault.name, "succeeded")  # fmt: skip
    status, again, _ = await _call(stack, "POST", path, operator, {})
    assert (status, again["replayed"], again["more"]) == (200, [], False)
    context = await context_for_current_loop()
    assert context.dead_letters is not None
    await context.dead_letters._container.delete_container()


async def test_not_configured_every_admin_route_refuses(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: without the tenant (or the audience) no token is accepted, not even a
    valid one, and every route says why."""
    operator = await asyncio.to_thread(stack.admin_headers, "operator")
    monkeypatch.delenv("KEYWARD_ADMIN_TENANT_ID")
    for context in reset_contexts():
        await context.aclose()
    for name, request in [
        ("admin_status", func.HttpRequest(method="GET", url="/api/status", body=b"",
                                          headers=operator)),
        ("admin_retire", _post("/api/retire", {"key": "k"})),
        ("admin_replay_dead_letters", _post("/api/dead-letters/replay", {})),
        ("admin_operation", func.HttpRequest(method="GET", url="/x", body=b"", headers=operator,
                                             route_params={"operation_id": "0" * 32})),
    ]:  # fmt: skip
        response = await _function(name)(request)
        assert response.status_code == 500, name
        assert json.loads(response.get_body())["error"]["code"] == "AdminAuthNotConfigured"
