"""WSGI middleware (Flask, Django and other WSGI apps): every request the app
serves is sent to Pulsyon as one event.

Flask, in one line:

    pulsyon.wsgi.instrument_flask(app, pulsyon.Client(url, key), service="shop")

Django: wrap the WSGI application and add the route middleware, which tells
the WSGI middleware which URL pattern matched:

    # wsgi.py
    application = pulsyon.wsgi.PulsyonMiddleware(get_wsgi_application(),
                                                 client=CLIENT, service="shop")
    # settings.py
    MIDDLEWARE = ["pulsyon.wsgi.DjangoRoute", ...]

Any other framework: put the matched route template in
`environ["pulsyon.route"]`. A request without one is recorded as `(unmatched)`,
never under its raw path. A handler that raises is recorded as a 500.
"""

from __future__ import annotations

import time
from typing import Optional

from pulsyon._http import Middleware, content_length

__all__ = ["PulsyonMiddleware", "instrument_flask", "DjangoRoute"]

#: The WSGI environ key holding the route template of the request.
ROUTE_KEY = "pulsyon.route"


class _Body:
    """The app's response iterable, counted; the request is recorded when the
    server closes it (after the last byte was written)."""

    __slots__ = ("_inner", "_done", "bytes")

    def __init__(self, inner, done):
        self._inner = inner
        self._done = done
        self.bytes = 0

    def __iter__(self):
        for chunk in self._inner:
            self.bytes += len(chunk)
            yield chunk

    def close(self):
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done(self.bytes)


class PulsyonMiddleware(Middleware):
    """Records each request: service from config, endpoint from
    `environ["pulsyon.route"]`, method, status, latency (until the response was
    written), sizes, and the trace id of a W3C `traceparent` header."""

    def __call__(self, environ, start_response):
        started_ns = time.time_ns()
        t0 = time.perf_counter()
        status = [500]

        def watched_start_response(status_line, headers, exc_info=None):
            status[0] = int(status_line[:3])
            return start_response(status_line, headers, exc_info)

        def done(response_bytes):
            self.recorder.record(
                started_ns,
                time.perf_counter() - t0,
                environ.get(ROUTE_KEY),
                environ.get("REQUEST_METHOD", ""),
                status[0],
                environ.get("HTTP_TRACEPARENT"),
                environ.get("HTTP_X_REQUEST_ID"),
                content_length(environ.get("CONTENT_LENGTH")),
                response_bytes,
            )

        try:
            inner = self.app(environ, watched_start_response)
        except BaseException:
            status[0] = 500
            done(0)
            raise
        return _Body(inner, done)


def instrument_flask(
    app,
    client,
    service: str,
    environment: str = "",
    release: str = "",
    host: Optional[str] = None,
):
    """Wraps a Flask app's WSGI callable with `PulsyonMiddleware` and records
    the matched URL rule (`/users/<int:id>` is sent as `/users/{id}`)."""
    from flask import request  # only for Flask apps

    def note_route():
        if request.url_rule is not None:
            request.environ[ROUTE_KEY] = request.url_rule.rule

    # First, so that a before_request hook that answers early is still routed.
    app.before_request_funcs.setdefault(None, []).insert(0, note_route)
    app.wsgi_app = PulsyonMiddleware(app.wsgi_app, client, service, environment, release, host)
    return app


class DjangoRoute:
    """Django middleware: puts the matched URL pattern (`users/<int:id>/`) where
    `PulsyonMiddleware` finds it. Add it to MIDDLEWARE."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = getattr(request, "resolver_match", None)
        if match is not None and match.route is not None:
            request.environ[ROUTE_KEY] = match.route or "/"
        return None
