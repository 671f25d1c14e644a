"""Each rewrap default is written once (shared.rewrap; page size: shared.stores) and used."""

from __future__ import annotations

import inspect

from shared.adapters.dek_blob import BlobDekStore
from shared.adapters.dek_table import TableDekStore
from shared.cli._args import build_parser
from shared.rewrap import (
    DEFAULT_SLICE_SECONDS,
    DEFAULT_WORKERS,
    EngineSettings,
    dry_run,
)
from shared.services.rewrap_worker import RewrapWorkerService
from shared.settings import Settings
from shared.settings._specs import SPEC_BY_NAME
from shared.stores import DEFAULT_PAGE_SIZE, DekStore, SqliteDekStore
from tests.memory_store import MemoryDekStore

_BASE = {
    "KEYWARD_VAULT_ALLOWLIST": "contoso-kv",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def test_concurrency_default_is_one_number_for_engine_setting_and_cli() -> None:
    cli = build_parser().parse_args(["rewrap", "--vault", "contoso-kv", "--key", "k"])
    assert EngineSettings().workers == DEFAULT_WORKERS == 64
    assert SPEC_BY_NAME["KEYWARD_REWRAP_CONCURRENCY"].default == str(DEFAULT_WORKERS)
    assert Settings.from_env(_BASE).rewrap_concurrency == DEFAULT_WORKERS
    assert cli.workers == DEFAULT_WORKERS


def test_slice_default_is_the_settings_default() -> None:
    assert SPEC_BY_NAME["KEYWARD_REWRAP_SLICE_SECONDS"].default == str(DEFAULT_SLICE_SECONDS)
    assert Settings.from_env(_BASE).rewrap_slice_seconds == DEFAULT_SLICE_SECONDS
    worker = inspect.signature(RewrapWorkerService).parameters["slice_seconds"]
    assert worker.default == DEFAULT_SLICE_SECONDS


def test_page_size_default_is_shared_by_the_engine_the_dry_run_the_cli_and_every_store() -> None:
    cli = build_parser().parse_args(["rewrap", "--vault", "contoso-kv", "--key", "k"])
    assert EngineSettings().page_size == DEFAULT_PAGE_SIZE == 100
    assert inspect.signature(dry_run).parameters["page_size"].default == DEFAULT_PAGE_SIZE
    assert cli.page_size == DEFAULT_PAGE_SIZE
    for store in (DekStore, SqliteDekStore, TableDekStore, BlobDekStore, MemoryDekStore):
        scan = inspect.signature(store.scan).parameters["page_size"]
        assert scan.default == DEFAULT_PAGE_SIZE, store
