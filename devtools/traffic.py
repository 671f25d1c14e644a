"""Count the bytes a store's requests put on the wire (for the blob rewrap benchmark).

Installed as the Storage client's ``raw_response_hook``, which runs once per HTTP attempt
(retries included). Sizes are HTTP/1.1 messages rebuilt from the SDK's request and response
objects: request line, headers and body; status line, headers and body (``Content-Length``
when the body is streamed). TCP/TLS framing and headers the transport adds on its own (Host,
Accept-Encoding) are estimated by :data:`TRANSPORT_HEADER_ALLOWANCE`, so figures are close
to, not exactly, what a packet capture shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

#: Bytes per request for headers aiohttp adds itself (Host, Accept, Accept-Encoding).
TRANSPORT_HEADER_ALLOWANCE = 96
_CRLF = 2


@dataclass(frozen=True)
class TrafficSnapshot:
    requests: int
    bytes_sent: int
    bytes_received: int

    @property
    def total(self) -> int:
        return self.bytes_sent + self.bytes_received


def _headers_size(headers: Any) -> int:
    return sum(len(str(name)) + len(str(value)) + 2 + _CRLF for name, value in headers.items())


def _body_size(body: Any, headers: Any) -> int:
    if isinstance(body, bytes | bytearray | str):
        return len(body)
    length = headers.get("Content-Length") or headers.get("content-length")
    return int(length) if length and str(length).isdigit() else 0


def _request_body(request: Any) -> Any:
    """The request body, whichever attribute this azure-core request type keeps it in."""
    for name in ("body", "content", "data"):
        value = getattr(request, name, None)
        if isinstance(value, bytes | bytearray | str):
            return value
    return None


class TrafficCounter:
    """Accumulates request/response sizes; call it with a ``PipelineResponse``."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def __call__(self, pipeline_response: Any) -> None:
        request = pipeline_response.http_request
        response = pipeline_response.http_response
        parts = urlsplit(request.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        request_line = len(f"{request.method} {target} HTTP/1.1") + _CRLF
        sent = request_line + _headers_size(request.headers) + _CRLF + TRANSPORT_HEADER_ALLOWANCE
        sent += _body_size(_request_body(request), request.headers)
        status_line = len(f"HTTP/1.1 {response.status_code} {response.reason or ''}") + _CRLF
        received = status_line + _headers_size(response.headers) + _CRLF
        try:
            body = response.body()
        except Exception:  # a streamed body not read yet: fall back to its declared length
            body = None
        received += _body_size(body, response.headers)
        self.requests += 1
        self.bytes_sent += sent
        self.bytes_received += received

    def snapshot(self) -> TrafficSnapshot:
        return TrafficSnapshot(self.requests, self.bytes_sent, self.bytes_received)

    def reset(self) -> None:
        self.requests = self.bytes_sent = self.bytes_received = 0

    def __repr__(self) -> str:
        return (
            f"TrafficCounter(requests={self.requests}, sent={self.bytes_sent}, "
            f"received={self.bytes_received})"
        )
