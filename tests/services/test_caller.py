"""The caller record: what is kept of who asked, and nothing more."""

from __future__ import annotations

import pytest

from shared.composition import VIA_CLI, Caller


def test_round_trip_keeps_every_field() -> None:
    caller = Caller("oid-1", "tenant-1", "ops@example.com", ("Keyward.Operator",), VIA_CLI)
    assert Caller.from_dict(caller.to_dict()) == caller


def test_record_names_only_identifiers_and_roles() -> None:
    assert set(Caller("oid-1", "tenant-1").to_dict()) == {
        "object_id", "tenant_id", "name", "roles", "via",
    }  # fmt: skip


def test_a_record_without_an_object_id_is_refused() -> None:
    with pytest.raises(KeyError):
        Caller.from_dict({"tenant_id": "t"})
