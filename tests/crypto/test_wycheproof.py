"""Project Wycheproof vectors through keyward's API (see ``tests/crypto/wycheproof.py``).

One test per vector (id ``file:tcId``), plus a summary that tallies every vector per file,
verdict and outcome, prints the table, records it on the test report, and fails if any count
differs from the pinned numbers (a vector dropped, or an outcome changed).
"""

from __future__ import annotations

from collections import Counter

import pytest

from shared.crypto import LocalRsaWrapper, WrapAlgorithm
from shared.errors import IntegrityError
from tests.crypto import wycheproof as wp

_ALL = wp.all_vectors()

# (file, verdict, outcome) -> count. Change only with a reason in the commit message.
PINNED: dict[tuple[str, str, str], int] = {
    (wp.OAEP_SHA1, "valid", "pass"): 10,
    (wp.OAEP_SHA1, "valid", "cannot-express"): 7,
    (wp.OAEP_SHA1, "invalid", "rejected"): 19,
    (wp.OAEP_SHA256, "valid", "pass"): 10,
    (wp.OAEP_SHA256, "valid", "cannot-express"): 8,
    (wp.OAEP_SHA256, "invalid", "rejected"): 19,
    (wp.OAEP_MIXED, "valid", "refused-other-algorithm"): 13,
    (wp.OAEP_MIXED, "invalid", "refused-other-algorithm"): 18,
    (wp.AES_KW, "valid", "pass"): 13,
    (wp.AES_KW, "invalid", "rejected"): 54,
    (wp.AES_KW, "acceptable", "refused"): 1,
    (wp.AES_KW, "valid", "not-applicable"): 23,
    (wp.AES_KW, "invalid", "not-applicable"): 72,
    (wp.AES_KW, "acceptable", "not-applicable"): 2,
    (wp.AES_KWP, "valid", "not-applicable"): 77,
    (wp.AES_KWP, "invalid", "not-applicable"): 177,
    (wp.AES_GCM, "valid", "pass"): 39,
    (wp.AES_GCM, "invalid", "rejected"): 27,
    (wp.AES_GCM, "valid", "not-applicable"): 190,
    (wp.AES_GCM, "invalid", "not-applicable"): 60,
}
#: numberOfTests per file, as the files declare it.
PINNED_FILE_TOTALS = {
    wp.OAEP_SHA1: 36,
    wp.OAEP_SHA256: 37,
    wp.OAEP_MIXED: 31,
    wp.AES_KW: 165,
    wp.AES_KWP: 254,
    wp.AES_GCM: 316,
}


@pytest.mark.parametrize("vector", _ALL, ids=[v.id for v in _ALL])
def test_vector(vector: wp.Vector) -> None:
    outcome = wp.run(vector)
    assert (vector.file, vector.verdict, outcome) in PINNED, (vector.id, outcome)


def test_every_vector_counted_against_pinned_numbers(
    record_property: pytest.RecordProperty,
) -> None:
    counts = wp.tally()
    per_file = Counter[str]()
    for (file, _verdict, _outcome), n in counts.items():
        per_file[file] += n
    lines = ["Wycheproof vectors through keyward's API (file / verdict / outcome: count)"]
    for file in wp.FILES:
        lines.append(f"  {file}: {per_file[file]} vectors")
        for (f, verdict, outcome), n in sorted(counts.items()):
            if f == file:
                lines.append(f"    {verdict:<10} {outcome:<24} {n}")
        if file in wp.NOT_APPLICABLE_REASONS:
            lines.append(f"    not-applicable reason: {wp.NOT_APPLICABLE_REASONS[file]}")
    report = "\n".join(lines)
    print("\n" + report)
    record_property("wycheproof_counts", report)
    for (file, verdict, outcome), n in counts.items():
        record_property(f"wycheproof[{file}][{verdict}][{outcome}]", n)

    for file, total in PINNED_FILE_TOTALS.items():
        assert wp.load(file)["numberOfTests"] == total, file
        assert per_file[file] == total, f"{file}: ran {per_file[file]} of {total}"
    assert dict(counts) == PINNED
    # Vectors actually run to their verdict, not merely refused as out of scope.
    run_to_verdict = sum(
        n for (_f, _v, outcome), n in counts.items() if outcome in ("pass", "rejected", "refused")
    )
    assert run_to_verdict == 192


def test_invalid_oaep_padding_errors_are_indistinguishable() -> None:
    """Manger's attack needs distinguishable padding failures: every one reads the same."""
    for file in (wp.OAEP_SHA1, wp.OAEP_SHA256):
        messages: set[str] = set()
        for vector in wp.vectors(file):
            if "InvalidOaepPadding" not in vector.flags:
                continue
            algorithm = (
                WrapAlgorithm.RSA_OAEP if file == wp.OAEP_SHA1 else WrapAlgorithm.RSA_OAEP_256
            )
            wrapper = LocalRsaWrapper(
                "https://wycheproof.vault.azure.net/keys/k",
                private_key=wp.rsa_private_key(vector),
                algorithm=algorithm,
            )
            with pytest.raises(IntegrityError) as caught:
                wrapper.unwrap(vector.hex("ct"))
            messages.add(str(caught.value))
        assert len(messages) == 1, messages


def test_every_kwp_group_is_accounted_for() -> None:
    sizes = {g["keySize"] for g in wp.load(wp.AES_KWP)["testGroups"]}
    assert sizes == {128, 192, 256}
