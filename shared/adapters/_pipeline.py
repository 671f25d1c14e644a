"""Pipeline settings every keyward SDK client gets: no redirects, one origin.

**No redirect is followed.** azure-core's ``RedirectPolicy`` follows 301/302/307/308 and
re-sends the request, body included, to wherever ``Location`` points (it drops the
``Authorization`` header on a change of domain, not the body). For an ``oct-HSM`` key the
``wrapKey`` body is a plaintext DEK, and no Azure service keyward calls answers with a
redirect in normal operation. So every client is built with ``permit_redirects=False``
(:data:`NO_REDIRECTS`); the 3xx then reaches the caller as an ``HttpResponseError``, which
the one translator (``_azure_errors``) maps to a non-transient ``ServiceError``. The lean
unwrap path (``_keyvault_rest``) asks aiohttp for the same (``allow_redirects=False``).

**Requests stay on the client's origin.** A pager follows the ``nextLink`` the service put
in the previous page, and an ARM poller the ``Azure-AsyncOperation`` / ``Location`` URLs; a
page naming another host would get the next request, with its bearer token, sent there.
:class:`OriginPinPolicy`, a per-call policy on the Key Vault and ARM clients, refuses any
request whose scheme, host or port differs from the client's endpoint before it is sent.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from shared.errors import ForeignOriginError

#: Keyword arguments that turn azure-core's redirect policy off (every SDK client takes them).
NO_REDIRECTS: Final[dict[str, Any]] = {"permit_redirects": False}
__all__ = [
    "FOREIGN_ORIGIN",
    "NO_REDIRECTS",
    "ForeignOriginError",
    "OriginPinPolicy",
    "pinned_client_kwargs",
]

#: ``ServiceError.code`` of a refused cross-origin request.
FOREIGN_ORIGIN = "ForeignOrigin"
_DEFAULT_PORTS = {"https": 443, "http": 80}


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``url``, lower case, the port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme, 0)


class OriginPinPolicy(SansIOHTTPPolicy[Any, Any]):
    """Refuses every request that leaves the origin of ``endpoint`` (before it is sent)."""

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        self._endpoint = endpoint
        self._origin = origin(endpoint)

    def on_request(self, request: PipelineRequest[Any]) -> None:
        url = str(request.http_request.url)
        if origin(url) != self._origin:
            scheme, host, port = origin(url)
            raise ForeignOriginError(
                f"refused a request to {scheme}://{host}:{port}: not the origin of "
                f"{self._endpoint} (a nextLink or polling URL that points elsewhere)",
                code=FOREIGN_ORIGIN,
            )


def pinned_client_kwargs(endpoint: str) -> dict[str, Any]:
    """:data:`NO_REDIRECTS` plus an :class:`OriginPinPolicy` for ``endpoint``."""
    return {**NO_REDIRECTS, "per_call_policies": [OriginPinPolicy(endpoint)]}
