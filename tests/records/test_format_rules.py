"""Format numbers, property-name sets and key checks (``shared.records._format``)."""

from __future__ import annotations

import pytest

from shared.errors import InvalidInputError
from shared.records import RecordFormat
from shared.records import _format as f


def test_absent_format_is_format_1() -> None:
    assert f.parse_format(None) is RecordFormat.DIRECT
    assert f.parse_format(1) is RecordFormat.DIRECT
    assert f.parse_format(2) is RecordFormat.HIERARCHY


def test_newer_format_says_upgrade() -> None:
    with pytest.raises(InvalidInputError) as caught:
        f.parse_format(3)
    assert str(caught.value) == (
        "record format 3 is newer than this keyward (reads 1, 2): upgrade keyward"
    )


@pytest.mark.parametrize("value", [0, -1, "2", 2.0, True, b"\x02"])
def test_other_format_values_are_refused(value: object) -> None:
    with pytest.raises(InvalidInputError, match="record format"):
        f.parse_format(value)


def test_formats_never_share_their_authority() -> None:
    assert f.KEY_ID in f.ONLY_FORMAT_1
    assert f.KEY_REF in f.ONLY_FORMAT_1
    assert f.KEK_VERSION in f.ONLY_FORMAT_2
    assert f.FORMAT in f.ONLY_FORMAT_2
    assert f.KEY_REF not in f.FORMAT_2_PROPERTIES
    assert set(f.ONLY_FORMAT_1) == {
        "KeyRef", "KeyVersion", "KeyId", "PrevKeyId", "PrevAlgorithm", "PrevWrappedKey",
        "PrevKcv", "Unreadable", "UnreadableAt",
    }  # fmt: skip
    assert set(f.ONLY_FORMAT_2) == {"Format", "KekVersion"}


@pytest.mark.parametrize(
    ("partition", "record_id", "message"),
    [
        ("", "r", "non-empty"),
        ("p", "", "non-empty"),
        ("a/b", "r", "holds"),
        ("p", "r#1", "holds"),
        ("p", "r\n", "holds"),
        ("~keyward", "mode", "reserved"),
        ("~anything", "r", "reserved"),
        ("p" * 513, "r", "longer"),
    ],
)
def test_bad_keys_are_refused(partition: str, record_id: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        f.check_record_keys(partition, record_id)


def test_good_keys_pass() -> None:
    f.check_record_keys("tenant-1", "order 42 ü")
    assert f.record_ref("tenant-1", "r") == "tenant-1/r"
