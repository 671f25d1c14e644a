"""next_flag_state: effects only on a change, restore path, no flapping on UNKNOWN."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.dependents import (
    STATUS_TAG,
    Finding,
    FlagEventType,
    FlagRecord,
    PublishEvent,
    Reason,
    SetTags,
    Status,
    Verdict,
    next_flag_state,
)
from tests.dependents.conftest import NEW, NOW, OLD, account

OK = Verdict(Status.OK)
LOST = Verdict(Status.ACCESS_LOST, (Finding(Reason.KEY_DISABLED, "version is disabled"),))
RISK = Verdict(Status.AT_RISK, (Finding(Reason.EXPIRES_SOON, "expires soon"),))
UNKNOWN = Verdict(Status.UNKNOWN, (Finding(Reason.THROTTLED, "429"),))
T = [NOW + timedelta(minutes=5 * i) for i in range(10)]


def events(effects: tuple[object, ...]) -> list[FlagEventType]:
    return [e.event_type for e in effects if isinstance(e, PublishEvent)]


def tags(effects: tuple[object, ...]) -> list[dict[str, str]]:
    return [dict(e.tags) for e in effects if isinstance(e, SetTags)]


def run(verdicts: list[Verdict]) -> list[tuple[object, ...]]:
    """Feed verdicts through the machine, applying tag effects to the account as ARM would."""
    acct, record, out = account(), None, []
    for at, verdict in zip(T, verdicts, strict=False):
        transition = next_flag_state(record, verdict, acct, at)
        for effect in transition.effects:
            if isinstance(effect, SetTags):
                acct = account(tags=effect.tags)
        record = transition.record
        out.append(transition.effects)
    return out


def test_first_sight_of_a_healthy_account_tags_without_an_event() -> None:
    t = next_flag_state(None, OK, account(), NOW)
    assert events(t.effects) == []
    assert tags(t.effects) == [{"owner": "team-vision", STATUS_TAG: "OK"}]
    assert t.record.first_seen == t.record.last_seen == t.record.last_change == NOW


def test_first_sight_already_tagged_needs_no_effect() -> None:
    t = next_flag_state(None, OK, account(tags={"owner": "x", STATUS_TAG: "OK"}), NOW)
    assert t.effects == ()


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([OK, LOST], [[], [FlagEventType.KEY_ACCESS_LOST]]),
        ([OK, RISK], [[], [FlagEventType.KEY_AT_RISK]]),
        ([LOST, OK], [[FlagEventType.KEY_ACCESS_LOST], [FlagEventType.KEY_ACCESS_RESTORED]]),
        ([RISK, OK], [[FlagEventType.KEY_AT_RISK], [FlagEventType.KEY_ACCESS_RESTORED]]),
        ([LOST, RISK], [[FlagEventType.KEY_ACCESS_LOST], [FlagEventType.KEY_AT_RISK]]),
    ],
)
def test_one_event_per_verdict_change(
    verdicts: list[Verdict], expected: list[list[FlagEventType]]
) -> None:
    assert [events(e) for e in run(verdicts)] == expected


def test_restore_path_clears_the_flag() -> None:
    effects = run([OK, LOST, LOST, OK, OK])
    assert [events(e) for e in effects] == [
        [],
        [FlagEventType.KEY_ACCESS_LOST],
        [],
        [FlagEventType.KEY_ACCESS_RESTORED],
        [],
    ]
    assert tags(effects[1]) == [{"owner": "team-vision", STATUS_TAG: "ACCESS_LOST"}]
    assert tags(effects[3]) == [{"owner": "team-vision", STATUS_TAG: "OK"}]


def test_repeated_sweeps_produce_no_effects() -> None:
    for verdict in (OK, RISK, LOST):
        effects = run([verdict] * 6)
        assert all(e == () for e in effects[1:]), verdict


def test_unknown_never_flips_the_flag() -> None:
    effects = run([LOST, UNKNOWN, UNKNOWN, LOST, UNKNOWN, OK])
    assert [events(e) for e in effects] == [
        [FlagEventType.KEY_ACCESS_LOST],
        [],
        [],
        [],
        [],
        [FlagEventType.KEY_ACCESS_RESTORED],
    ]


def test_unknown_keeps_the_known_verdict_and_notes_since_when() -> None:
    acct = account()
    lost = next_flag_state(None, LOST, acct, T[0]).record
    first = next_flag_state(lost, UNKNOWN, acct, T[1]).record
    second = next_flag_state(first, UNKNOWN, acct, T[2]).record
    assert second.status is Status.ACCESS_LOST
    assert second.reasons == LOST.reasons
    assert second.unknown_since == T[1]
    assert second.unknown_reasons == UNKNOWN.reasons
    assert second.last_seen == T[2]
    assert second.last_change == T[0]
    back = next_flag_state(second, LOST, acct, T[3])
    assert back.effects == ()
    assert back.record.unknown_since is None
    assert back.record.last_change == T[0]


def test_unknown_before_anything_is_known_has_no_effect_then_first_verdict_counts() -> None:
    acct = account()
    t0 = next_flag_state(None, UNKNOWN, acct, T[0])
    assert t0.effects == ()
    assert t0.record.status is Status.UNKNOWN
    t1 = next_flag_state(t0.record, LOST, acct, T[1])
    assert events(t1.effects) == [FlagEventType.KEY_ACCESS_LOST]
    assert t1.record.first_seen == T[0]


def test_reason_changes_within_a_status_are_recorded_without_effects() -> None:
    acct = account()
    first = next_flag_state(None, LOST, acct, T[0]).record
    other = Verdict(Status.ACCESS_LOST, (Finding(Reason.KEY_DELETED, "deleted"),))
    t = next_flag_state(first, other, acct, T[1])
    assert t.effects == ()
    assert t.record.reasons == other.reasons


def test_repoint_publishes_once() -> None:
    before = account(key_version=OLD)
    after = account(key_version=NEW)
    r0 = next_flag_state(None, RISK, before, T[0]).record
    t1 = next_flag_state(r0, OK, after, T[1])
    assert events(t1.effects) == [FlagEventType.KEY_REPOINTED, FlagEventType.KEY_ACCESS_RESTORED]
    repointed = next(e for e in t1.effects if isinstance(e, PublishEvent))
    assert repointed.data["previousKeyId"] == before.key_id
    assert repointed.data["keyId"] == after.key_id
    assert repointed.subject == after.id
    t2 = next_flag_state(t1.record, OK, after, T[2])
    assert events(t2.effects) == []


def test_event_data_is_json_friendly_and_names_the_reasons() -> None:
    t = next_flag_state(None, LOST, account(), NOW)
    (event,) = [e for e in t.effects if isinstance(e, PublishEvent)]
    assert event.data["reasons"] == ["KEY_DISABLED"]
    assert event.data["status"] == "ACCESS_LOST"
    assert event.data["previousStatus"] is None


def test_record_is_frozen() -> None:
    record = next_flag_state(None, OK, account(), NOW).record
    assert isinstance(record, FlagRecord)
    with pytest.raises(AttributeError):
        record.status = Status.ACCESS_LOST  # type: ignore[misc]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([OK, LOST, RISK, UNKNOWN]), max_size=30))
def test_any_sequence_emits_one_event_per_known_change_and_never_on_unknown(
    verdicts: list[Verdict],
) -> None:
    acct, record, known = account(), None, None
    for i, verdict in enumerate(verdicts):
        transition = next_flag_state(record, verdict, acct, NOW + timedelta(minutes=i))
        for effect in transition.effects:
            if isinstance(effect, SetTags):
                acct = account(tags=effect.tags)
        published = events(transition.effects)
        if verdict.status is Status.UNKNOWN or verdict.status is known:
            assert transition.effects == ()
        else:
            expected_events = 0 if known is None and verdict.status is Status.OK else 1
            assert len(published) == expected_events
            assert acct.tags[STATUS_TAG] == verdict.status.value
            known = verdict.status
        record = transition.record
        assert record.status is (known or Status.UNKNOWN)
