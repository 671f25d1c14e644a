"""The store-job operations' own errors, apart from their steps so that the error mapping
(``_error_answer``) and the steps (``_store_jobs``) can both import them without a cycle."""

from __future__ import annotations

from shared.errors import KeywardError


class StoreJobBlockedError(KeywardError):
    """The job stopped on records it cannot convert (named); it resumes when started again."""

    def __init__(self, message: str, problem_refs: tuple[str, ...]) -> None:
        super().__init__(message)
        self.problem_refs = problem_refs


class SliceSuperseded(KeywardError):
    """Another delivery of the same operation wrote the store's job first (a duplicate
    queue message): this slice stops without recording anything; that one carries on."""
