"""Pure logic: no server."""

from __future__ import annotations

import uuid

import grpc
import pytest

import pulsyon
from pulsyon import _core, _http
from pulsyon._channel import Target
from pulsyon.v1 import ingest_pb2


def test_event_ids_are_uuid_v7_and_distinct():
    ids = {pulsyon.new_event_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for text in list(ids)[:100]:
        u = uuid.UUID(text)
        assert u.version == 7 and u.variant == uuid.RFC_4122


def test_route_templates_of_each_framework_become_one_form():
    assert _http.template("/users/<int:user_id>") == "/users/{user_id}"
    assert _http.template("users/<int:pk>/orders/<slug>/") == "/users/{pk}/orders/{slug}/"
    assert _http.template("/users/{id}") == "/users/{id}"


def test_traceparent_gives_its_trace_id_or_nothing():
    t = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert _http.trace_id(f"00-{t}-00f067aa0ba902b7-01") == t
    assert _http.trace_id(f"00-{'0' * 32}-00f067aa0ba902b7-01") == ""
    assert _http.trace_id("garbage") == ""
    assert _http.trace_id(None) == ""


def test_the_server_retry_delay_is_the_least_wait_and_refusals_wait_the_cap():
    b = _core.Backoff(cap=0.5)
    assert b.delay(_core.RETRY, 3.0) >= 3.0
    assert all(b.delay(_core.RETRY, None) <= 0.6 for _ in range(20))
    assert 0.4 <= _core.Backoff(cap=0.5).delay(_core.REFUSED, None) <= 0.6


def test_status_codes_are_classified_as_the_sdk_contract_says():
    assert _core.classify(grpc.StatusCode.RESOURCE_EXHAUSTED) == _core.RETRY
    assert _core.classify(grpc.StatusCode.UNAVAILABLE) == _core.RETRY
    assert _core.classify(grpc.StatusCode.INVALID_ARGUMENT) == _core.UNREADABLE
    assert _core.classify(grpc.StatusCode.UNAUTHENTICATED) == _core.REFUSED


def test_batches_are_cut_by_count_by_linger_and_by_flush_and_the_window_is_bounded():
    p = _core.Pipeline("p", batch_size=3, linger=10.0, max_buffered=100, max_in_flight=2, wake=lambda: None)
    for _ in range(7):
        assert p.offer(pulsyon.Event(service="s", status_code=200))
    now = p.first_at
    raw, _ = p.next_request(now)
    req = decode(raw)
    assert len(req.batch.events) == 3
    raw2, _ = p.next_request(now)
    req2 = decode(raw2)
    assert req2.batch.seq == req.batch.seq + 1
    assert p.next_request(now) == (None, None)  # two in flight: the window is full
    p.on_ack(ingest_pb2.BatchAck(seq=req.batch.seq, accepted=3))
    req3, wait = p.next_request(now)
    assert req3 is None and wait > 0  # one event lingers
    upto = p.request_flush()
    req3, _ = p.next_request(now)
    assert len(decode(req3).batch.events) == 1
    assert not p.settled(upto)
    p.start_stream()  # a reconnect: the unacked batches go again, unchanged
    again, _ = p.next_request(now)
    assert again == raw2  # byte for byte
    assert p.stats.retried == 3


def decode(raw: bytes) -> ingest_pb2.StreamEventsRequest:
    return ingest_pb2.StreamEventsRequest.FromString(raw)


def test_a_batch_is_encoded_as_protobuf_encodes_it():
    events = [pulsyon.Event(service="s" * n, status_code=200, latency_ms=n / 3) for n in (1, 200, 20_000)]
    p = _core.Pipeline("producer-é", batch_size=3, linger=0, max_buffered=10, max_in_flight=1, wake=lambda: None)
    for e in events:
        p.offer(e)
    raw, _ = p.next_request(0.0)
    expected = ingest_pb2.StreamEventsRequest(
        batch=ingest_pb2.EventBatch(producer_id="producer-é", seq=p.seq, events=events)
    )
    assert raw == expected.SerializeToString()
    assert p.seq > 1_600_000_000_000_000  # counting from the time in microseconds


def test_a_url_is_checked():
    with pytest.raises(ValueError):
        Target.parse("127.0.0.1:50051", "k")
    with pytest.raises(ValueError):
        Target.parse("http://127.0.0.1:50051", "")
    assert Target.parse("http://127.0.0.1:50051", "k").address == "127.0.0.1:50051"


def test_the_package_under_test_is_the_installed_wheel_not_the_source_tree():
    assert "site-packages" in pulsyon.__file__, pulsyon.__file__
