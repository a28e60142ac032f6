"""Benchmarks of the Python SDK (scripts/bench-python-sdk.sh runs them).

  bench_sdk.py client URL KEY EVENTS
      Sends EVENTS events through one `pulsyon.Client` from one thread, as fast
      as `send` returns, then flushes. Prints one JSON line: events/s from the
      first send to the end of the flush, the caller's CPU per `send` (its thread
      only), the whole process's CPU per event (the sender thread included), and
      the client's counters.

  bench_sdk.py middleware URL KEY REQUESTS
      Calls a minimal ASGI app and a minimal WSGI app REQUESTS times each, bare
      and wrapped in the Pulsyon middleware, alternating request by request so
      both see the same machine. Prints one JSON line per kind with the p50 and
      p99 request time of each and the difference (the middleware's cost).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import pulsyon
from pulsyon.asgi import PulsyonMiddleware as AsgiMiddleware
from pulsyon.wsgi import PulsyonMiddleware as WsgiMiddleware

ENDPOINTS = [f"/api/v1/items/{{id}}/part/{i}" for i in range(20)]
STATUSES = [200] * 18 + [404, 500]


def client_bench(url: str, key: str, events: int) -> dict:
    client = pulsyon.Client(url, key, max_buffered=events + 1)
    send = client.send
    t0 = time.perf_counter()
    p0 = time.process_time()
    c0 = time.thread_time()
    for i in range(events):
        send(service="bench", endpoint=ENDPOINTS[i % 20], method="GET",
             status_code=STATUSES[i % 20], latency_ms=(i % 500) * 0.25)
    c1 = time.thread_time()
    assert client.flush(600)
    t1 = time.perf_counter()
    p1 = time.process_time()
    client.close(60)
    s = client.stats()
    return dict(
        events=events,
        events_per_sec=round(events / (t1 - t0), 1),
        send_cpu_us=round((c1 - c0) / events * 1e6, 2),
        process_cpu_us_per_event=round((p1 - p0) / events * 1e6, 2),
        acked=s.acked, dropped=s.dropped, rejected=s.rejected,
    )


def quantiles(xs: list) -> tuple:
    xs = sorted(xs)
    return xs[len(xs) // 2] / 1000, xs[int(len(xs) * 0.99)] / 1000


def summary(kind: str, bare: list, wrapped: list) -> dict:
    b50, b99 = quantiles(bare)
    w50, w99 = quantiles(wrapped)
    return dict(kind=kind, requests=len(bare), bare_p50_us=round(b50, 2), bare_p99_us=round(b99, 2),
                wrapped_p50_us=round(w50, 2), wrapped_p99_us=round(w99, 2),
                added_p50_us=round(w50 - b50, 2), added_p99_us=round(w99 - b99, 2))


def middleware_bench(url: str, key: str, requests: int) -> list:
    client = pulsyon.Client(url, key, max_buffered=4 * requests)

    async def asgi_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def noop_send(message):
        pass

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    wrapped_asgi = AsgiMiddleware(asgi_app, client=client, service="bench-asgi")

    class Route:
        path = "/users/{id}"

    async def run_asgi():
        bare, wrapped = [], []
        headers = [(b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
        for i in range(requests):
            for app, out in ((asgi_app, bare), (wrapped_asgi, wrapped)):
                scope = {"type": "http", "method": "GET", "path": f"/users/{i}", "root_path": "",
                         "headers": headers, "route": Route}
                t = time.perf_counter_ns()
                await app(scope, receive, noop_send)
                out.append(time.perf_counter_ns() - t)
        return bare, wrapped

    def wsgi_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wrapped_wsgi = WsgiMiddleware(wsgi_app, client=client, service="bench-wsgi")

    def run_wsgi():
        bare, wrapped = [], []
        for i in range(requests):
            for app, out in ((wsgi_app, bare), (wrapped_wsgi, wrapped)):
                environ = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/users/{i}",
                           "pulsyon.route": "/users/<int:id>",
                           "HTTP_TRACEPARENT": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
                t = time.perf_counter_ns()
                body = app(environ, lambda status, headers, exc_info=None: None)
                for _ in body:
                    pass
                close = getattr(body, "close", None)
                if close is not None:
                    close()
                out.append(time.perf_counter_ns() - t)
        return bare, wrapped

    results = [summary("asgi", *asyncio.run(run_asgi())), summary("wsgi", *run_wsgi())]
    assert client.close(60)
    s = client.stats()
    assert s.acked == 2 * requests, s
    return results


def main() -> None:
    mode, url, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if mode == "client":
        print(json.dumps(client_bench(url, key, n)))
    elif mode == "middleware":
        for line in middleware_bench(url, key, n):
            print(json.dumps(line))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
