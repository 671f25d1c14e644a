"""Azure Resource Graph (``POST /providers/Microsoft.ResourceGraph/resources``) over what the
emulator holds: Cognitive Services accounts of every kind and storage accounts, across
subscriptions (azure-mgmt-resourcegraph 8.0, api-version 2021-03-01; 2022-10-01 and
2024-04-01 take the same body).

The request is ``{"subscriptions": [...], "query": "...", "options": {"$top", "$skip",
"$skipToken", "resultFormat"}}``; the answer ``{"totalRecords", "count", "resultTruncated",
"$skipToken"?, "data": [rows], "facets": []}`` with rows as objects (``objectArray``). Rows
are the resources' ARM JSON with Resource Graph's extra columns (``subscriptionId``,
``resourceGroup``, ``tenantId``) and ``type`` in lower case, as Resource Graph spells it.
Only the subscriptions the request names are searched. ``$top`` defaults to 100 and may be at
most 1000; a page that leaves rows behind carries ``$skipToken``, which the next request
passes back in ``options`` (with the same query and subscriptions).

**The KQL subset** (documented in docs/emulator.md; anything else is refused with Resource
Graph's error shape, 400 ``BadRequest`` with an ``InvalidQuery`` detail)::

    Resources
    | where PRED [and PRED ...] [or PRED [and PRED ...] ...]
    | project NAME [= OPERAND], ...
    | order by PATH [asc|desc]

    PRED    := OPERAND (== | =~ | != | !~) 'literal'  |  OPERAND (in | in~) ('a', 'b', ...)
    OPERAND := PATH | tostring(PATH) | tolower(PATH)
    PATH    := column[.property...]      (properties.encryption.keySource)

``=~``, ``!~`` and ``in~`` compare case-insensitively, ``==``, ``!=`` and ``in`` exactly; a
missing property is an empty string. Stages may repeat and come in any order.

Control: ``PUT /control/arm/resourcegraph {"refuse": true}`` makes every query answer 403
``AuthorizationFailed`` (a tenant where keyward may not use Resource Graph), so the
per-subscription fallback can be tested.

**ResourceContainers** (the same subset, ``ResourceContainers`` as the table): one row per
subscription the request names that the caller can read, ``{"id": "/subscriptions/{id}",
"name", "type": "microsoft.resources/subscriptions", "subscriptionId", "tenantId",
"properties": {"state": "Enabled"}}``; every named subscription is readable unless listed in
``PUT /control/arm/resourcegraph {"unreadable": ["<subscription id>", ...]}`` (the caller has
no Reader role there). Resource Graph answers only for what the caller may read, so an
unreadable subscription is left out of both tables, silently, as in Azure.

**Paging faults** (``PUT /control/arm/resourcegraph {"fault": ...}``, :data:`FAULTS`), on the
Resources table only: ``repeat-token`` (a page hands back the token it was asked with),
``empty-page-with-token``, ``truncated`` (``resultTruncated: "true"``, no token): what keyward
must never take for a whole inventory.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devtools.emulator.arm_common import ArmError, Call, Dispatcher

RESOURCE_TYPE = "Microsoft.ResourceGraph/resources"
API_VERSIONS = frozenset({"2021-03-01", "2022-10-01", "2024-04-01"})
DEFAULT_TOP = 100
MAX_TOP = 1000
TABLES = ("Resources", "resources")
#: The table of subscriptions (and resource groups, not served here).
CONTAINER_TABLES = ("ResourceContainers", "resourcecontainers")
SUBSCRIPTION_TYPE = "microsoft.resources/subscriptions"
#: Gives every resource of one provider the emulator holds, as ARM's GET returns it.
RowSource = Callable[[], Iterable[dict[str, Any]]]


class QueryError(ArmError):
    """A query outside the subset (or malformed): Resource Graph's 400 shape."""

    def __init__(self, what: str) -> None:
        super().__init__(400, "BadRequest", what)


@dataclass
class GraphSettings:
    #: Answer 403 AuthorizationFailed to every query.
    refuse: bool = False
    #: Subscriptions (lower case) the caller cannot read: left out of every answer.
    unreadable: set[str] = field(default_factory=set)
    #: A paging fault of the Resources table's answers (:data:`FAULTS`; "" : none).
    fault: str = ""


#: Paging faults a test can ask for (``PUT /control/arm/resourcegraph {"fault": ...}``):
#: a page that hands back the token it was asked with (so the token repeats), an empty page
#: that still carries a token, and ``resultTruncated: "true"`` with no token.
FAULTS = ("", "repeat-token", "empty-page-with-token", "truncated")


def _misbehave(fault: str, answer: dict[str, Any], token: object) -> None:
    if fault == "repeat-token" and token and "$skipToken" in answer:
        answer["$skipToken"] = str(token)
    elif fault == "empty-page-with-token" and "$skipToken" in answer:
        answer["data"], answer["count"] = [], 0
    elif fault == "truncated":
        answer.pop("$skipToken", None)
        answer["resultTruncated"] = "true"


@dataclass(frozen=True)
class _Pred:
    path: tuple[str, ...]
    func: str | None
    op: str
    values: tuple[str, ...]

    def test(self, row: dict[str, Any]) -> bool:
        have = _text(_get(row, self.path))
        if self.func == "tolower":
            have = have.lower()
        fold = self.op in ("=~", "!~", "in~")
        left = have.lower() if fold else have
        wanted = {v.lower() if fold else v for v in self.values}
        hit = left in wanted
        return not hit if self.op in ("!=", "!~") else hit


@dataclass(frozen=True)
class Query:
    """A parsed query of the subset."""

    where: tuple[tuple[tuple[_Pred, ...], ...], ...] = ()
    project: tuple[tuple[str, tuple[str, ...]], ...] = ()
    order: tuple[tuple[str, ...], bool] | None = None
    #: ``resources`` or ``resourcecontainers``.
    table: str = "resources"

    def run(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        found = [r for r in rows if all(_any_all(clause, r) for clause in self.where)]
        if self.order is not None:
            path, descending = self.order
            found.sort(key=lambda r: _text(_get(r, path)).lower(), reverse=descending)
        if not self.project:
            return found
        return [{name: _get(row, path) for name, path in self.project} for row in found]


def _any_all(clause: tuple[tuple[_Pred, ...], ...], row: dict[str, Any]) -> bool:
    return any(all(p.test(row) for p in conj) for conj in clause)


def _get(row: dict[str, Any], path: Sequence[str]) -> Any:
    value: Any = row
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)  # KQL property names are case-sensitive
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_OPERAND = rf"(?:(?P<func>tostring|tolower)\(\s*(?P<fpath>{_PATH})\s*\)|(?P<path>{_PATH}))"
_LIT = r"'(?:[^'\\]|\\.)*'"
_PRED = re.compile(
    rf"^\s*{_OPERAND}\s*(?:(?P<op>==|=~|!=|!~)\s*(?P<lit>{_LIT})"
    rf"|(?P<inop>in~|in)\s*\(\s*(?P<list>{_LIT}(?:\s*,\s*{_LIT})*)\s*\))\s*$"
)
_PROJECT_ITEM = re.compile(rf"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:=\s*{_OPERAND})?\s*$")
_ORDER = re.compile(rf"^\s*(?:order|sort)\s+by\s+(?P<path>{_PATH})\s*(?P<dir>asc|desc)?\s*$")


def _split(text: str, separator: str) -> list[str]:
    """``text`` split on ``separator`` outside single-quoted literals and parentheses."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        char = text[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and text.startswith(separator, i):
            parts.append(text[start:i])
            start = i + len(separator)
            i = start
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _literal(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw.strip()[1:-1])


def _pred(text: str) -> _Pred:
    match = _PRED.match(text)
    if match is None:
        raise QueryError(f"unsupported predicate: {text.strip()[:200]!r}")
    path = (match["fpath"] or match["path"]).split(".")
    if match["op"]:
        return _Pred(tuple(path), match["func"], match["op"], (_literal(match["lit"]),))
    values = tuple(_literal(v) for v in _split(match["list"], ","))
    return _Pred(tuple(path), match["func"], match["inop"], values)


def parse(query: str) -> Query:
    """Parse ``query`` (the subset in the module docstring).

    Raises:
        QueryError: anything outside the subset.
    """
    stages = [s.strip() for s in _split(query.strip(), "|")]
    if not stages or stages[0] not in TABLES + CONTAINER_TABLES:
        raise QueryError("the query must start with the Resources or ResourceContainers table")
    where: list[tuple[tuple[_Pred, ...], ...]] = []
    project: tuple[tuple[str, tuple[str, ...]], ...] = ()
    order: tuple[tuple[str, ...], bool] | None = None
    for stage in stages[1:]:
        head, _, rest = stage.partition(" ")
        if head == "where":
            disjuncts = _split(rest, " or ")
            where.append(tuple(tuple(_pred(p) for p in _split(d, " and ")) for d in disjuncts))
        elif head == "project":
            items = []
            for item in _split(rest, ","):
                match = _PROJECT_ITEM.match(item)
                if match is None or match["func"] == "tolower":
                    raise QueryError(f"unsupported project item: {item.strip()[:200]!r}")
                path = match["fpath"] or match["path"] or match["name"]
                items.append((match["name"], tuple(path.split("."))))
            project = tuple(items)
        elif head in ("order", "sort"):
            match = _ORDER.match(stage)
            if match is None:
                raise QueryError(f"unsupported order: {stage[:200]!r}")
            order = (tuple(match["path"].split(".")), match["dir"] == "desc")
        else:
            raise QueryError(f"unsupported operator: {head[:50]!r}")
    return Query(tuple(where), project, order, stages[0].lower())


def _token(offset: int, query: str) -> str:
    raw = json.dumps({"offset": offset, "query": query, "nonce": uuid.uuid4().hex[:8]})
    return base64.b64encode(raw.encode()).decode()


def _offset(token: str, query: str) -> int:
    try:
        raw = json.loads(base64.b64decode(token.encode(), validate=True))
        if raw["query"] != query:
            raise ValueError("another query")
        return int(raw["offset"])
    except (ValueError, KeyError, TypeError) as error:
        raise ArmError(400, "BadRequest", f"The $skipToken is not valid: {error}") from None


class ResourceGraphProvider:
    """Answers Resource Graph queries over the rows ``sources`` give."""

    def __init__(self, sources: Sequence[RowSource]) -> None:
        self._sources = tuple(sources)
        self.settings = GraphSettings()

    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.add("POST", "/providers/Microsoft.ResourceGraph/resources", self.resources,
                       API_VERSIONS, RESOURCE_TYPE)  # fmt: skip

    def rows(self) -> list[dict[str, Any]]:
        """Every resource as Resource Graph shows it (extra columns, lower-case type)."""
        found = []
        for source in self._sources:
            for resource in source():
                segments = str(resource.get("id", "")).split("/")
                row = dict(resource)
                row["type"] = str(resource.get("type", "")).lower()
                row["subscriptionId"] = segments[2] if len(segments) > 2 else ""
                row["resourceGroup"] = segments[4] if len(segments) > 4 else ""
                row.setdefault("tenantId", "")
                found.append(row)
        return found

    async def resources(self, call: Call) -> web.Response:
        if self.settings.refuse:
            raise ArmError(
                403, "AuthorizationFailed",
                f"The client '{call.caller.object_id}' with object id '{call.caller.object_id}' "
                "does not have authorization to perform action "
                "'Microsoft.ResourceGraph/resources/read' over scope "
                "'/providers/Microsoft.ResourceGraph' or the scope is invalid.",
            )  # fmt: skip
        body = await call.body()
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ArmError(400, "BadRequest", "The query is required.")
        subscriptions = {str(s).lower() for s in body.get("subscriptions") or []}
        options = body.get("options") or {}
        top = int(options.get("$top") or DEFAULT_TOP)
        if not 1 <= top <= MAX_TOP:
            raise ArmError(400, "BadRequest", f"$top must be between 1 and {MAX_TOP}.")
        try:
            parsed = parse(query)
        except QueryError as error:
            return _invalid_query(error.message)
        subscriptions -= self.settings.unreadable
        if parsed.table == "resourcecontainers":
            rows = [_subscription_row(s) for s in sorted(subscriptions)]
        else:
            rows = [r for r in self.rows() if str(r["subscriptionId"]).lower() in subscriptions]
        found = parsed.run(rows)
        token = options.get("$skipToken")
        start = _offset(str(token), query) if token else int(options.get("$skip") or 0)
        page = found[start : start + top]
        answer: dict[str, Any] = {
            "totalRecords": len(found),
            "count": len(page),
            "resultTruncated": "false",
            "data": page,
            "facets": [],
        }
        if start + len(page) < len(found):
            answer["$skipToken"] = _token(start + len(page), query)
        if parsed.table == "resources":
            _misbehave(self.settings.fault, answer, token)
        response = web.json_response(answer)
        response.headers["x-ms-user-quota-remaining"] = "14"
        response.headers["x-ms-user-quota-resets-after"] = "00:00:05"
        return response


def _subscription_row(subscription: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{subscription}",
        "name": subscription,
        "type": SUBSCRIPTION_TYPE,
        "subscriptionId": subscription,
        "tenantId": "",
        "properties": {"state": "Enabled"},
    }


def _invalid_query(what: str) -> web.Response:
    """Resource Graph's answer to a query it cannot parse (outside the emulator's subset)."""
    return web.json_response(
        {
            "error": {
                "code": "BadRequest",
                "message": "Please provide below info when asking for support: "
                f"timestamp = emulator, correlationId = {uuid.uuid4()}.",
                "details": [
                    {
                        "code": "InvalidQuery",
                        "message": "Query is invalid. Please refer to the documentation for "
                        "the Azure Resource Graph service and fix the error before retrying.",
                    },
                    {"code": "ParserFailure", "message": what},
                ],
            }
        },
        status=400,
    )
