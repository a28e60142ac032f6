"""ASGI middleware (FastAPI, Starlette and other ASGI apps): every HTTP request
the app serves is sent to Pulsyon as one event.

    app = FastAPI()
    app.add_middleware(pulsyon.asgi.PulsyonMiddleware,
                       client=pulsyon.Client(url, key), service="shop")

The endpoint is the route template the framework matched (`/users/{id}`, not
`/users/42`); a request no route matched is recorded as `(unmatched)`. A handler
that raises before responding is recorded as a 500.
"""

from __future__ import annotations

import time
from typing import Optional

from pulsyon._http import Middleware, content_length

__all__ = ["PulsyonMiddleware"]


def _route_template(scope: dict, root_path: str) -> Optional[str]:
    route = scope.get("route")
    if route is None:
        return None
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if path is None:
        return None
    # Inside a Mount, the mount's prefix was added to root_path on the way in.
    prefix = scope.get("root_path", "")[len(root_path) :]
    return prefix + path


class PulsyonMiddleware(Middleware):
    """Records each HTTP request: service from config, endpoint from the route
    template, method, status, latency, request/response sizes, and the trace id
    of a W3C `traceparent` header. `client` is a `pulsyon.Client` or
    `pulsyon.aio.Client`: `send` never waits either way."""

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_ns = time.time_ns()
        t0 = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500
        response_bytes = 0

        async def watched_send(message):
            nonlocal status, response_bytes
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
            elif kind == "http.response.body":
                response_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            elapsed = time.perf_counter() - t0
            traceparent = request_id = None
            request_bytes = 0
            for name, value in scope.get("headers", ()):
                if name == b"traceparent":
                    traceparent = value.decode("latin-1")
                elif name == b"x-request-id":
                    request_id = value.decode("latin-1")
                elif name == b"content-length":
                    request_bytes = content_length(value)
            self.recorder.record(
                started_ns,
                elapsed,
                _route_template(scope, root_path),
                scope.get("method", ""),
                status,
                traceparent,
                request_id,
                request_bytes,
                response_bytes,
            )
