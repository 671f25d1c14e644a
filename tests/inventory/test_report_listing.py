"""The retirement report lists every pinned resource with its kind and name (pure)."""

from __future__ import annotations

import io

from rich.console import Console

from shared.cli._retire import render_retirement
from shared.rewrap import (
    MAX_LISTED_NAMES,
    NOTE_VERSION_IN_USE,
    NOTE_VERSION_UNKNOWN,
    PinnedResource,
    RetirementReport,
)
from shared.rewrap._retirement import VersionRetirement
from shared.services._render import retirement_json

OLD = "0123456789abcdef0123456789abcdef"
STORAGE_ID = (
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stledger"
)


def _report(pinned: tuple[str, ...]) -> RetirementReport:
    entry = VersionRetirement(OLD, enabled=True, pinned=pinned)
    return RetirementReport("https://kv.vault.azure.net/keys/cmk", None, (entry,))


def test_every_pinned_resource_is_listed_with_kind_and_name_and_blocks() -> None:
    many = tuple(
        PinnedResource(f"{STORAGE_ID}{i}", kind="storage", resource_kind="StorageV2")
        for i in range(MAX_LISTED_NAMES + 5)
    )
    face = PinnedResource("/subscriptions/s1/x/accounts/f1", kind="face", resource_kind="Face")
    report = _report((*many, face, "/subscriptions/s2/y/accounts/from-cli"))
    (version,) = retirement_json(report)["versions"]
    assert not version["safe_to_disable"]
    listed = version["pinned_resources"]
    assert len(listed) == len(many) + 2, "the report lists every one, not the first 20"
    assert listed[0] == {
        "kind": "storage", "resource_kind": "StorageV2", "id": f"{STORAGE_ID}0",
        "name": "stledger0",
    }  # fmt: skip
    assert listed[-1] == {
        "kind": "", "resource_kind": "", "id": "/subscriptions/s2/y/accounts/from-cli",
        "name": "from-cli",
    }  # fmt: skip
    (blocker,) = version["blocker_kinds"]
    assert (blocker["kind"], blocker["count"], blocker["more"]) == ("pinned_resources", 27, 7)
    assert version["pinned"][-2] == face  # still the plain id where ids are expected


def test_the_cli_prints_each_pinned_resource() -> None:
    out = io.StringIO()
    render_retirement(Console(file=out, width=200), _report((PinnedResource(
        STORAGE_ID, kind="storage", resource_kind="StorageV2"),)))  # fmt: skip
    text = out.getvalue()
    assert f"{OLD}: 1 resources pinned to it:" in text
    assert f"storage/StorageV2 stledger: {STORAGE_ID}" in text


def test_a_resource_following_the_latest_shows_why_it_counts() -> None:
    moving = PinnedResource(STORAGE_ID, kind="storage", resource_kind="StorageV2",
                            note=NOTE_VERSION_IN_USE)  # fmt: skip
    unknown = PinnedResource(f"{STORAGE_ID}2", kind="storage", note=NOTE_VERSION_UNKNOWN)
    report = _report((moving, unknown))
    (blocker,) = report.versions[0].blocker_list
    assert blocker.describe() == f"2 resources pinned to it (1 {NOTE_VERSION_UNKNOWN})"
    (version,) = retirement_json(report)["versions"]
    assert [row["note"] for row in version["pinned_resources"]] == [
        NOTE_VERSION_IN_USE,
        NOTE_VERSION_UNKNOWN,
    ]
    out = io.StringIO()
    render_retirement(Console(file=out, width=300), report)
    assert f"stledger: {STORAGE_ID} ({NOTE_VERSION_IN_USE})" in out.getvalue()
    assert f"stledger2: {STORAGE_ID}2 ({NOTE_VERSION_UNKNOWN})" in out.getvalue()
