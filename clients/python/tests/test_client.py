"""`pulsyon.Client` against the real server."""

from __future__ import annotations

import json
import os
import threading
import time

import pulsyon
from pulsyon.v1 import admin_pb2


def event_fields(i: int, service: str = "checkout") -> dict:
    return dict(
        service=service,
        endpoint=f"/orders/{{id}}/items/{i % 37}",
        method=("GET", "POST", "DELETE")[i % 3],
        status_code=(200, 201, 404, 500, 503)[i % 5],
        latency_ms=(i % 1000) / 8.0,
        trace_id=f"{i:032x}",
        request_id=f"req-{i}",
        environment="production",
        release=f"v1.{i % 4}",
        host=f"web-{i % 3}",
        request_bytes=i % 4096,
        response_bytes=(i * 7) % 65536,
        attributes={"tier": ("free", "pro")[i % 2], "n": str(i)},
    )


STORED_FIELDS = (
    "event_id, (extract(epoch from time) * 1000000)::bigint, service, endpoint, method, status_code, "
    "latency_ms, trace_id, request_id, environment, release, host, request_bytes, response_bytes, "
    "attributes"
)


def sent_row(event) -> list:
    return [
        event.event_id, str(event.time.ToMicroseconds()), event.service, event.endpoint, event.method,
        str(event.status_code), repr(event.latency_ms), event.trace_id, event.request_id,
        event.environment, event.release, event.host, str(event.request_bytes),
        str(event.response_bytes), dict(event.attributes),
    ]


def stored_rows(env) -> dict:
    rows = env.rows(f"select {STORED_FIELDS} from api_logs")
    out = {}
    for row in rows:
        row[6] = repr(float(row[6]))
        row[14] = json.loads(row[14])
        out[row[0]] = row
    return out


def test_100k_events_are_all_stored_with_identical_fields_and_the_counters_match(env):
    client = pulsyon.Client(env.url, env.key)
    sent = []
    for i in range(100_000):
        event = pulsyon.Event(**event_fields(i))
        event.time.FromMicroseconds(time.time_ns() // 1000 - i)  # PostgreSQL keeps microseconds
        assert client.send(event)
        sent.append(event)
    assert client.flush(120), client.stats()
    stats = client.stats()
    assert (stats.sent, stats.acked, stats.duplicates) == (100_000, 100_000, 0), stats
    assert (stats.rejected, stats.dropped, stats.pending) == (0, 0, 0), stats
    assert client.close(10)

    stored = stored_rows(env)
    assert len(stored) == 100_000
    assert env.count() == (100_000, 100_000)
    for event in sent:
        assert stored[event.event_id] == sent_row(event)


def test_keyword_send_fills_the_id_and_time_and_a_bad_event_is_rejected_with_its_reason(env):
    client = pulsyon.Client(env.url, env.key)
    before = time.time()
    assert client.send(service="api", endpoint="/health", method="GET", status_code=200, latency_ms=1.5)
    assert client.send(service="api", endpoint="/x", method="GET", status_code=999, latency_ms=1.0)
    assert client.close(30)
    stats = client.stats()
    assert (stats.acked, stats.rejected) == (1, 1), stats
    assert stats.rejected_by_reason == {"REJECT_REASON_INVALID_STATUS_CODE": 1}
    [[event_id, t]] = env.rows("select event_id, extract(epoch from time) from api_logs")
    assert event_id.split("-")[2].startswith("7")  # a UUIDv7
    assert before - 1 <= float(t) <= time.time() + 1
    [[reason]] = env.rows("select reason from failed_events")
    assert "status" in reason.lower()


def test_after_kill_9_and_a_restart_every_acked_event_is_stored_once_and_the_client_finishes(env):
    client = pulsyon.Client(env.url, env.key, batch_size=200, linger=0.01, max_backoff=1.0)
    total = 40_000
    killed = threading.Event()

    def produce():
        for i in range(total):
            while not client.send(**event_fields(i, "kill9")):
                time.sleep(0.001)  # never expected: the queue holds 100,000
            if i % 1000 == 0:
                time.sleep(0.02)

    producer = threading.Thread(target=produce)
    producer.start()
    while client.stats().acked < 5_000:
        time.sleep(0.01)
    env.server.kill9()
    killed.set()
    acked_at_kill = client.stats().acked
    time.sleep(1.0)
    env.server.start()
    producer.join()
    assert client.close(120), client.stats()

    stats = client.stats()
    assert stats.acked + stats.rejected + stats.dropped == total, stats
    assert (stats.rejected, stats.dropped) == (0, 0), stats
    assert stats.reconnects >= 1 and stats.acked >= acked_at_kill
    n, distinct = env.count()
    assert n == distinct == stats.acked == total


def test_a_tenant_rate_limit_makes_the_client_wait_its_retry_delay_and_lose_nothing(env):
    env.admin_call(
        "SetTenantLimits",
        admin_pb2.SetTenantLimitsRequest(
            overrides=admin_pb2.TenantLimits(events_per_second=4000, events_burst=2000)
        ),
    )
    client = pulsyon.Client(env.url, env.key, batch_size=1000, max_backoff=0.05)
    for i in range(12_000):
        assert client.send(**event_fields(i, "limited"))
    assert client.close(120), client.stats()
    stats = client.stats()
    assert (stats.acked, stats.rejected, stats.dropped) == (12_000, 0, 0), stats
    assert "RESOURCE_EXHAUSTED" in stats.last_error, stats
    assert stats.reconnects >= 1 and stats.retried >= 1000, stats
    assert env.count() == (12_000, 12_000)


def test_a_full_queue_counts_drops_and_send_never_raises(env):
    client = pulsyon.Client(env.url, env.key, batch_size=10, max_in_flight=1, max_buffered=100)
    assert client.send(**event_fields(0, "full"))
    assert client.flush(30)
    env.server.pause()  # the server takes nothing: the queue fills
    try:
        results = [client.send(**event_fields(i, "full")) for i in range(1, 2001)]
    finally:
        env.server.resume()
    dropped = results.count(False)
    assert dropped >= 2000 - 100 - 10
    assert client.close(60), client.stats()
    stats = client.stats()
    assert stats.dropped == dropped, stats
    assert stats.acked == 2001 - dropped and stats.rejected == 0, stats
    assert env.count() == (stats.acked, stats.acked)
    assert not client.send(**event_fields(0, "full")), "a send after close is dropped"
    assert client.stats().dropped == dropped + 1


def test_after_fork_parent_and_child_both_send_with_their_own_producer_ids(env):
    client = pulsyon.Client(env.url, env.key, linger=30.0)
    for i in range(100):
        client.send(**event_fields(i, "before-fork"))  # still queued at the fork (30 s linger)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read_end)
            inherited = client.stats().pending
            for i in range(1000):
                client.send(**event_fields(i, "child"))
            ok = client.close(60)
            s = client.stats()
            report = dict(ok=ok, producer=client.producer_id, inherited=inherited,
                          acked=s.acked, dropped=s.dropped)
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    for i in range(1000):
        client.send(**event_fields(i, "parent"))
    assert client.close(60), client.stats()
    with os.fdopen(read_end) as f:
        child = json.loads(f.read() or "{}")
    os.waitpid(pid, 0)

    assert child["ok"], child
    assert child["inherited"] == 0, "the child does not send the parent's queued events"
    assert (child["acked"], child["dropped"]) == (1000, 0)
    assert child["producer"] != client.producer_id
    assert client.stats().acked == 1100
    assert env.count("service = 'child'") == (1000, 1000)
    assert env.count("service = 'parent'") == (1000, 1000)
    assert env.count("service = 'before-fork'") == (100, 100)


def test_events_not_flushed_by_the_app_are_flushed_at_interpreter_exit(env):
    import subprocess
    import sys

    script = (
        "import sys, pulsyon\n"
        "client = pulsyon.Client(sys.argv[1], sys.argv[2], linger=60.0)\n"
        "for i in range(2500):\n"
        "    client.send(service='atexit', endpoint='/e', method='GET', status_code=200, latency_ms=1.0)\n"
        # No flush, no close: the interpreter's exit must send them.
    )
    subprocess.run([sys.executable, "-c", script, env.url, env.key], check=True, timeout=60)
    assert env.count("service = 'atexit'") == (2500, 2500)
