"""The pure retention rule for jobs (``shared.rewrap.expired_jobs``): what may go and what
must stay, status by status; the same rule runs on Azurite in tests/services/test_retention.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.rewrap import JobState, JobStatus, expired_jobs, may_expire, rewrap_job_id

KEY = "https://contoso-kv.vault.azure.net/keys/k"
SHARD = "table:deks"
START = datetime(2026, 1, 1, tzinfo=UTC)
CUTOFF = START + timedelta(days=100)


def _job(version: str, day: int, status: JobStatus, **changes: object) -> JobState:
    created = START + timedelta(days=day)
    state = JobState(
        job_id=rewrap_job_id(KEY, version, SHARD),
        key_ref=KEY,
        scope=SHARD,
        target_version=version,
        target_key_id=f"{KEY}/{version}",
        status=status,
        created_at=created,
        updated_at=created + timedelta(hours=1),
    )
    return state.evolve(**changes)


@pytest.mark.parametrize("status", list(JobStatus))
def test_an_older_job_goes_unless_it_runs(status: JobStatus) -> None:
    older = _job("1" * 32, 1, status)
    newest = _job("2" * 32, 2, JobStatus.COMPLETED)
    expected = [] if status is JobStatus.RUNNING else [older]
    assert expired_jobs([older, newest], CUTOFF) == expected
    assert may_expire(status) is (status is not JobStatus.RUNNING)


def test_an_older_refused_job_goes() -> None:
    refused = _job("1" * 32, 1, JobStatus.FAILED, refused=True)
    newest = _job("2" * 32, 2, JobStatus.COMPLETED)
    assert expired_jobs([refused, newest], CUTOFF) == [refused]


@pytest.mark.parametrize("status", list(JobStatus))
def test_the_newest_stays_whatever_its_status(status: JobStatus) -> None:
    older = _job("1" * 32, 1, JobStatus.FAILED, refused=True)
    newest = _job("2" * 32, 2, status)
    assert expired_jobs([newest, older], CUTOFF) == [older]
    assert expired_jobs([newest], CUTOFF) == []


def test_an_older_failed_job_asked_to_restart_or_updated_recently_stays() -> None:
    asked = _job("1" * 32, 1, JobStatus.FAILED, restart_requested=True)
    recent = _job("2" * 32, 2, JobStatus.FAILED, updated_at=CUTOFF + timedelta(seconds=1))
    newest = _job("3" * 32, 3, JobStatus.FAILED)
    assert expired_jobs([asked, recent, newest], CUTOFF) == []
