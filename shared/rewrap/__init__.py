"""The rewrap engine: move every DEK of a key to its newest enabled version, resumably.

Pure domain code over small ports (no Azure imports): a :class:`~shared.stores.DekStore`, a
:class:`KeyVersionSource` (the Key Vault adapter) and a :class:`JobStore` for checkpoints.
Modelled on HashiCorp Vault transit's rewrap (already-current is a no-op, a result per item,
a bad item never stops the batch) and Tink's envelope (the remote key is injected).

Wiring, as the function app or a script does it::

    adapter = AsyncKeyVaultAdapter(credential, allow_list)      # a KeyVersionSource
    store = TableDekStore.from_connection_string(conn, "deks")  # a DekStore
    engine = RewrapEngine(store=store, keys=adapter, jobs=SqliteJobStore(path))
    report = await engine.run(f"{vault_url}/keys/{name}", event_version)
    # report.counters, report.issues; engine.dry_run(...); retirement_report(store, ...)

The same request twice is one job (id from store, key and target version); run it again
after a crash and it resumes from its last checkpoint.
"""

from shared.rewrap._budget import (
    BUDGET_WINDOW_SECONDS,
    CONSERVATIVE_OPERATIONS_PER_WINDOW,
    RSA_OPERATIONS_PER_WINDOW,
    SUBSCRIPTION_BUDGET_FACTOR,
    VaultBudget,
    share_fraction,
    throttle_ceiling,
    vault_budget,
)
from shared.rewrap._budget_board import BoardRow, BoardView, BudgetBoard, InMemoryBudgetBoard
from shared.rewrap._deadline import Deadline, SliceDeadlineError
from shared.rewrap._dry_run import DryRunReport, DryRunScan, DryRunTally, dry_run
from shared.rewrap._engine import RewrapEngine
from shared.rewrap._errors import JobLeaseError, RewrapTargetError, TargetVersionNotFoundError
from shared.rewrap._job_report import JobReport
from shared.rewrap._job_retention import expired_jobs, may_expire
from shared.rewrap._job_state import JobState, JobStatus, rewrap_job_id
from shared.rewrap._job_store import (
    MAX_JOB_PAGE,
    InMemoryJobStore,
    JobPage,
    JobStore,
    StoredJob,
    check_job_page,
)
from shared.rewrap._ledger import ProgressCallback
from shared.rewrap._limiter import DEFAULT_HEADROOM, AimdRateLimiter
from shared.rewrap._membership import BudgetMembership
from shared.rewrap._messages import (
    MESSAGE_VERSION,
    REWRAP_KIND,
    JobIdMismatchError,
    MessagePeek,
    ShardMessage,
    peek_message,
    queue_message_kind,
    with_traceparent,
)
from shared.rewrap._operation_message import OPERATION_KIND, OperationMessage
from shared.rewrap._page import IssueSink
from shared.rewrap._passes import MAX_PASSES_KEPT, PassRecord
from shared.rewrap._ports import KeyVersionInfo, KeyVersionSource, KeyVersionView
from shared.rewrap._probe import ENGINE_POINTS, FaultProbe
from shared.rewrap._report import (
    FailureReason,
    ItemIssue,
    ItemOutcome,
    JobCounters,
    UnreadableReason,
)
from shared.rewrap._retired import (
    InMemoryRetiredVersions,
    NoRetiredVersions,
    RetiredVersions,
    fold_key,
)
from shared.rewrap._retirement import (
    EVERY_OLDER_VERSION,
    MAX_LISTED_NAMES,
    NOTE_VERSION_IN_USE,
    NOTE_VERSION_UNKNOWN,
    Blocker,
    BlockerKind,
    PinnedResource,
    RetirementReport,
    VersionRetirement,
)
from shared.rewrap._retry import RetryPolicy
from shared.rewrap._settings import (
    DEFAULT_SLICE_SECONDS,
    DEFAULT_WORKERS,
    FUNCTION_TIMEOUT_SECONDS,
    MAX_SLICE_SECONDS,
    SLICE_DRAIN_SECONDS,
    SLICE_SAFETY_MARGIN_SECONDS,
    SLICE_WRAP_UP_SECONDS,
    EngineSettings,
    default_owner,
)
from shared.rewrap._sqlite_job_store import SqliteJobStore
from shared.rewrap._subscription_groups import DEFAULT_SUBSCRIPTION_GROUP, SubscriptionGroups
from shared.rewrap._target import RewrapPlan, resolve_target
from shared.rewrap._vault_share import (
    DEFAULT_BUDGET_LEASE_SECONDS,
    DEFAULT_VAULT_SHARE,
    MAX_BUDGET_LEASE_SECONDS,
    MIN_BUDGET_LEASE_SECONDS,
    Allotment,
    MemberState,
    Scope,
    ShareRules,
    member_scopes,
    vault_host,
)
from shared.rewrap._verdict import (
    retirement_report,
    retirement_verdict,
    unfinished_jobs,
    verdict_from_counts,
)
from shared.rewrap._verification import pass_ended, verification_due, verification_requested

__all__ = [
    "expired_jobs",
    "may_expire",
    "MAX_PASSES_KEPT",
    "PassRecord",
    "pass_ended",
    "verification_due",
    "verification_requested",
    # ports
    "KeyVersionInfo",
    "KeyVersionSource",
    "KeyVersionView",
    "JobStore",
    "StoredJob",
    "OPERATION_KIND",
    "OperationMessage",
    "JobPage",
    "MAX_JOB_PAGE",
    "check_job_page",
    # engine
    "EngineSettings",
    "DEFAULT_WORKERS",
    "DEFAULT_SLICE_SECONDS",
    "FUNCTION_TIMEOUT_SECONDS",
    "MAX_SLICE_SECONDS",
    "SLICE_DRAIN_SECONDS",
    "SLICE_SAFETY_MARGIN_SECONDS",
    "SLICE_WRAP_UP_SECONDS",
    "Deadline",
    "SliceDeadlineError",
    "RewrapEngine",
    "RewrapPlan",
    "resolve_target",
    "default_owner",
    "AimdRateLimiter",
    "DEFAULT_HEADROOM",
    "share_fraction",
    "throttle_ceiling",
    "RetryPolicy",
    "VaultBudget",
    "vault_budget",
    "BUDGET_WINDOW_SECONDS",
    "RSA_OPERATIONS_PER_WINDOW",
    "CONSERVATIVE_OPERATIONS_PER_WINDOW",
    # the vault's budget shared by every run on it
    "BudgetBoard",
    "BoardRow",
    "BoardView",
    "InMemoryBudgetBoard",
    "BudgetMembership",
    "ShareRules",
    "MemberState",
    "Allotment",
    "vault_host",
    "Scope",
    "member_scopes",
    "SubscriptionGroups",
    "DEFAULT_SUBSCRIPTION_GROUP",
    "SUBSCRIPTION_BUDGET_FACTOR",
    "DEFAULT_VAULT_SHARE",
    "DEFAULT_BUDGET_LEASE_SECONDS",
    "MIN_BUDGET_LEASE_SECONDS",
    "MAX_BUDGET_LEASE_SECONDS",
    # dry-run and retirement
    "DryRunReport",
    "DryRunScan",
    "DryRunTally",
    "dry_run",
    "verdict_from_counts",
    "RetirementReport",
    "PinnedResource",
    "EVERY_OLDER_VERSION",
    "NOTE_VERSION_IN_USE",
    "NOTE_VERSION_UNKNOWN",
    "VersionRetirement",
    "Blocker",
    "BlockerKind",
    "MAX_LISTED_NAMES",
    "retirement_report",
    "retirement_verdict",
    "unfinished_jobs",
    # the retired-version record
    "RetiredVersions",
    "InMemoryRetiredVersions",
    "NoRetiredVersions",
    "fold_key",
    # queue messages (one shard of one job)
    "MESSAGE_VERSION",
    "REWRAP_KIND",
    "JobIdMismatchError",
    "ShardMessage",
    "MessagePeek",
    "peek_message",
    "with_traceparent",
    "queue_message_kind",
    # jobs and reports
    "InMemoryJobStore",
    "SqliteJobStore",
    "JobState",
    "JobStatus",
    "JobReport",
    "JobCounters",
    "ItemIssue",
    "ItemOutcome",
    "FailureReason",
    "UnreadableReason",
    "rewrap_job_id",
    "ProgressCallback",
    "IssueSink",
    # errors and test seams
    "JobLeaseError",
    "RewrapTargetError",
    "TargetVersionNotFoundError",
    "FaultProbe",
    "ENGINE_POINTS",
]
