"""KEK version ids: fixed width, creation order is string order, the first one sorts first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.errors import InvalidInputError
from shared.records._kek_ids import (
    FIRST_KEK_VERSION,
    KEK_VERSION_LENGTH,
    is_kek_version,
    kek_version_time,
    new_kek_version,
    newest_kek_version,
    require_kek_version,
)

T0 = datetime(2026, 12, 6, 15, 41, 23, 123456, tzinfo=UTC)


def test_shape_is_pinned() -> None:
    assert new_kek_version(T0, suffix="9f2c01ab") == "k20261206T154123123456Z-9f2c01ab"
    assert len(new_kek_version(T0)) == KEK_VERSION_LENGTH == len(FIRST_KEK_VERSION)


def test_string_order_is_creation_order() -> None:
    times = [T0 + timedelta(microseconds=n * 977) for n in range(50)]
    ids = [new_kek_version(t) for t in times]
    assert sorted(ids) == ids
    assert newest_kek_version(ids[::-1]) == ids[-1]
    assert newest_kek_version([]) is None


def test_first_version_sorts_before_every_dated_one() -> None:
    early = new_kek_version(datetime(1970, 1, 1, tzinfo=UTC), suffix="00000000")
    assert FIRST_KEK_VERSION < early
    assert is_kek_version(FIRST_KEK_VERSION)
    assert kek_version_time(FIRST_KEK_VERSION) is None


def test_time_round_trips_in_utc() -> None:
    local = T0.astimezone(timezone(timedelta(hours=5)))
    assert kek_version_time(new_kek_version(local)) == T0
    assert kek_version_time(new_kek_version(T0.replace(tzinfo=None))) == T0


def test_random_tails_keep_same_instant_apart() -> None:
    assert len({new_kek_version(T0) for _ in range(100)}) == 100


@pytest.mark.parametrize(
    "text", ["", "k", "K20261206T154123123456Z-9f2c01ab", "k20261206T154123123456Z-9F2C01AB",
             "k20261206T154123Z-9f2c01ab", "k20261206T154123123456Z-9f2c01ab/x"],
)  # fmt: skip
def test_malformed_ids_are_refused(text: str) -> None:
    assert not is_kek_version(text)
    with pytest.raises(InvalidInputError, match="not a KEK version id"):
        require_kek_version(text)


def test_bad_suffix_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="8 lowercase"):
        new_kek_version(T0, suffix="xyz")
