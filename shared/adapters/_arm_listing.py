"""The per-subscription listing every key-dependent kind falls back to (one home).

For each subscription, the kind's ARM operations group lists its resources: in each named
resource group, or in the whole subscription when none is named. A resource group that does
not exist in a subscription (404) is skipped: the setting names groups across subscriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from shared.adapters._azure_errors import translated
from shared.dependents import DependentResource
from shared.errors import ServiceError


async def list_in_scope(
    operations_of: Callable[[str], Any],
    subscriptions: Sequence[str],
    resource_groups: Sequence[str],
    what: str,
    to_resource: Callable[[Any], DependentResource | None],
) -> list[DependentResource]:
    """Every resource ``to_resource`` keeps, sorted by id (each once, ids compared without case).

    Args:
        operations_of: a subscription's operations group (``list``, ``list_by_resource_group``).
        what: the listing's name in errors (``list storage accounts``).
        to_resource: an SDK model to the kind's resource, or ``None`` for one it does not track.

    Raises:
        ServiceError: ARM refused or failed a listing (``transient`` says whether to retry).
    """
    found: dict[str, DependentResource] = {}
    for subscription in subscriptions:
        operations = operations_of(subscription)
        pagers = (
            [operations.list_by_resource_group(group) for group in resource_groups]
            if resource_groups
            else [operations.list()]
        )
        for pager in pagers:
            try:
                with translated(what):
                    async for model in pager:
                        resource = to_resource(model)
                        if resource is not None:
                            found[resource.id.lower()] = resource
            except ServiceError as error:
                if error.status == 404:
                    continue  # that resource group is not in this subscription
                raise
    return [found[key] for key in sorted(found)]
