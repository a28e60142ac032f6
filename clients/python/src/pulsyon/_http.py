"""What the web middleware share: one request becomes one event."""

from __future__ import annotations

import re
import socket
import time
from typing import Optional

from pulsyon import _core
from pulsyon.v1 import event_pb2

#: The endpoint of a request no route matched (a 404): never the raw path,
#: which would make one endpoint per URL ever requested.
UNMATCHED = "(unmatched)"

_PARAM = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def template(route: str) -> str:
    """A framework's route in the one form Pulsyon shows: `/users/{id}`.

    Flask's `/users/<int:id>` and Django's `users/<int:id>/` become `/users/{id}`
    and `/users/{id}/`; Starlette's `/users/{id}` stays as it is.
    """
    route = _PARAM.sub(r"{\1}", route)
    if not route.startswith("/"):
        route = "/" + route
    return route


def trace_id(traceparent: Optional[str]) -> str:
    """The trace id of a W3C `traceparent` header, or "" when absent or invalid."""
    if not traceparent:
        return ""
    m = _TRACEPARENT.match(traceparent.strip())
    if m is None or m.group(1) == "0" * 32 or traceparent.startswith("ff"):
        return ""
    return m.group(1)


class Recorder:
    """Turns what a middleware saw of one request into an event and sends it."""

    def __init__(
        self,
        client,
        service: str,
        environment: str = "",
        release: str = "",
        host: Optional[str] = None,
    ):
        if not service:
            raise ValueError("service is empty")
        self.client = client
        self.service = service
        self.environment = environment
        self.release = release
        self.host = socket.gethostname() if host is None else host

    def record(
        self,
        started_ns: int,
        elapsed_s: float,
        route: Optional[str],
        method: str,
        status: int,
        traceparent: Optional[str],
        request_id: Optional[str],
        request_bytes: int,
        response_bytes: int,
    ) -> None:
        event = event_pb2.Event(
            event_id=_core.new_event_id(),
            service=self.service,
            endpoint=template(route) if route else UNMATCHED,
            method=_bounded(method, 32),
            status_code=status,
            latency_ms=elapsed_s * 1000.0,
            trace_id=trace_id(traceparent),
            request_id=_bounded(request_id, 128),
            environment=self.environment,
            release=self.release,
            host=self.host,
            request_bytes=request_bytes,
            response_bytes=response_bytes,
        )
        event.time.seconds = started_ns // 1_000_000_000
        event.time.nanos = started_ns % 1_000_000_000
        self.client.send(event)


class Middleware:
    """What the ASGI and WSGI middleware share: the app they wrap and the recorder."""

    def __init__(
        self,
        app,
        client,
        service: str,
        environment: str = "",
        release: str = "",
        host: Optional[str] = None,
    ):
        self.app = app
        self.recorder = Recorder(client, service, environment, release, host)


def _bounded(text: Optional[str], limit: int) -> str:
    """`text` cut to the server's limit in bytes (a header is the client's to choose)."""
    if not text:
        return ""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit and "\0" not in text:
        return text
    return raw[:limit].replace(b"\0", b"").decode("utf-8", "ignore")


def now() -> tuple:
    """(wall-clock nanoseconds, monotonic seconds) at the start of a request."""
    return time.time_ns(), time.perf_counter()


def content_length(value) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        return 0
    return n if n > 0 else 0
