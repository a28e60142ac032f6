"""The SDK's state, independent of how it talks to the server.

`Pipeline` holds the bounded queue of events, cuts it into batches, keeps every
batch until its acknowledgement and counts what happened to each event. Both
transports (`pulsyon.Client` on a thread, `pulsyon.aio.Client` on asyncio) drive
one; neither keeps state of its own about events. The rules are those of
docs/sdk.md in the repository.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from pulsyon.v1 import event_pb2, ingest_pb2

#: Most events the server takes in one batch.
MAX_BATCH_EVENTS = 10_000

_rng = random.Random(os.urandom(16))
_LOW62 = (1 << 62) - 1


def new_event_id() -> str:
    """A new UUIDv7 in text form (time-ordered, so the server's indexes stay compact)."""
    r = _rng.getrandbits(74)
    v = (
        ((time.time_ns() // 1_000_000) << 80)
        | (0x7 << 76)
        | ((r >> 62) << 64)
        | (0b10 << 62)
        | (r & _LOW62)
    )
    h = f"{v:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _reseed_after_fork() -> None:
    # A child must not repeat its parent's random sequence (event and producer ids).
    _rng.seed(os.urandom(16))


os.register_at_fork(after_in_child=_reseed_after_fork)


def timestamp(ns: Optional[int] = None) -> timestamp_pb2.Timestamp:
    """A protobuf timestamp of `ns` nanoseconds since the epoch (default: now)."""
    if ns is None:
        ns = time.time_ns()
    return timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def make_event(fields: dict) -> event_pb2.Event:
    """An `Event` from keyword fields; `time` may be a datetime, epoch seconds or a Timestamp."""
    t = fields.pop("time", None)
    event = event_pb2.Event(**fields)
    if t is not None:
        if isinstance(t, timestamp_pb2.Timestamp):
            event.time.CopyFrom(t)
        elif isinstance(t, (int, float)):
            event.time.CopyFrom(timestamp(int(t * 1_000_000_000)))
        else:  # a datetime
            event.time.FromDatetime(t)
    return event


@dataclass
class Stats:
    """What happened to the events given to `send` (docs/sdk.md, "Counters").

    After `close`, ``acked + rejected + dropped`` is the number of events given to `send`.
    """

    #: Events handed to the server at least once.
    sent: int = 0
    #: Events stored: accepted now or recognised as stored before.
    acked: int = 0
    #: Of `acked`, events the server had stored before.
    duplicates: int = 0
    #: Events the server refused (kept as dead letters), by reason name.
    rejected: int = 0
    rejected_by_reason: dict = field(default_factory=dict)
    #: Events sent again after a reconnect.
    retried: int = 0
    #: Events never stored: the queue was full, the client was closed, or the server
    #: could not read their batch.
    dropped: int = 0
    #: Streams opened after the first.
    reconnects: int = 0
    #: Events waiting in the queue or unacknowledged now.
    pending: int = 0
    #: The last status that ended a stream, as text ("" when none).
    last_error: str = ""


@dataclass
class _Batch:
    request: bytes  # an encoded StreamEventsRequest, resent byte for byte
    first: int  # ordinal of the batch's first event
    count: int


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


# Field tags of EventBatch (producer_id = 1, seq = 2, events = 3) and of
# StreamEventsRequest (batch = 1), as length-delimited or varint fields.
_PRODUCER_TAG = b"\x0a"
_SEQ_TAG = b"\x10"
_EVENT_TAG = 0x1A
_BATCH_TAG = b"\x0a"


def _encode_request(producer_id: bytes, seq: int, chunks: list) -> bytes:
    """A StreamEventsRequest from events already encoded as EventBatch.events fields.

    Events are encoded once, in `send`: a batch is their concatenation, so
    cutting one costs a join and a resend is the same bytes.
    """
    batch = b"".join(
        [_PRODUCER_TAG, _varint(len(producer_id)), producer_id, _SEQ_TAG, _varint(seq), *chunks]
    )
    return _BATCH_TAG + _varint(len(batch)) + batch


# What the transport does when a stream ends with a status (docs/sdk.md, "Status codes").
RETRY = "retry"  # reconnect with backoff, resend
UNREADABLE = "unreadable"  # the oldest unacknowledged batch cannot be read: drop it
REFUSED = "refused"  # the key is refused: keep the batches, retry at max_backoff

_UNREADABLE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE}
_REFUSED = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


def classify(code: Optional[grpc.StatusCode]) -> str:
    if code in _UNREADABLE:
        return UNREADABLE
    if code in _REFUSED:
        return REFUSED
    return RETRY


def retry_delay(trailing_metadata) -> Optional[float]:
    """The `google.rpc.RetryInfo` delay in seconds in a status's details, if any."""
    for key, value in trailing_metadata or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


class Pipeline:
    """The bounded queue, the batches in flight and the counters of one client.

    Every method is called with `cond` held, except `offer`, which takes it.
    `wake` is called (with `cond` held) when the transport may have a batch to
    cut or a flush to finish.
    """

    def __init__(
        self,
        producer_id: str,
        batch_size: int,
        linger: float,
        max_buffered: int,
        max_in_flight: int,
        wake: Callable[[], None],
    ):
        if not 1 <= batch_size <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_EVENTS}, got {batch_size}")
        if max_buffered < 1 or max_in_flight < 1:
            raise ValueError("max_buffered and max_in_flight must be at least 1")
        if not linger >= 0:
            raise ValueError(f"linger must be at least 0 seconds, got {linger}")
        if not producer_id or len(producer_id) > 128:
            raise ValueError("producer_id must be 1 to 128 characters")
        self.cond = threading.Condition(threading.Lock())
        self.producer_id = producer_id
        self._producer_bytes = producer_id.encode()
        self.batch_size = batch_size
        self.linger = linger
        self.max_buffered = max_buffered
        self.max_in_flight = max_in_flight
        self.wake = wake
        self.buffer: list = []  # encoded events (EventBatch.events fields)
        self.first_at = 0.0  # when the oldest buffered event arrived (monotonic)
        self.queued = 0  # events taken into the queue: the next event's ordinal
        self.cut = 0  # ordinal of the oldest event not yet in a batch
        self.flush_upto = 0  # cut without lingering until this ordinal
        self.unacked: dict[int, _Batch] = {}
        self.resend: list[int] = []  # seqs to send again on the next stream
        # Sequence numbers start at the time in microseconds: a client restarted
        # with a fixed producer id keeps counting up.
        self.seq = time.time_ns() // 1000
        self.closed = False
        self.stats = Stats()

    # -- the caller's side ------------------------------------------------------

    def offer(self, event: event_pb2.Event) -> bool:
        """Queues one event; False (and counted as dropped) when full or closed."""
        if not event.event_id:
            event.event_id = new_event_id()
        if not event.HasField("time"):
            ns = time.time_ns()
            t = event.time
            t.seconds = ns // 1_000_000_000
            t.nanos = ns % 1_000_000_000
        data = event.SerializeToString()
        n = len(data)
        chunk = (bytes((_EVENT_TAG, n)) if n < 0x80 else bytes((_EVENT_TAG,)) + _varint(n)) + data
        with self.cond:
            n = len(self.buffer)
            if n >= self.max_buffered or self.closed:
                self.stats.dropped += 1
                return False
            self.buffer.append(chunk)
            self.queued += 1
            if n == 0:
                self.first_at = time.monotonic()
                self.wake()
            elif n + 1 == self.batch_size:
                self.wake()
            return True

    def request_flush(self) -> int:
        """Cuts everything queued so far without lingering; returns the ordinal to wait for."""
        self.flush_upto = self.queued
        self.wake()
        return self.queued

    def settled(self, upto: int) -> bool:
        """Whether every event with an ordinal below `upto` is acked, rejected or dropped."""
        if self.cut < upto:
            return False
        return all(b.first >= upto for b in self.unacked.values())

    def close(self) -> int:
        self.closed = True
        return self.request_flush()

    def done(self) -> bool:
        """Closed, and nothing is left to send or to wait for."""
        return self.closed and not self.buffer and not self.unacked

    # -- the transport's side ---------------------------------------------------

    def start_stream(self) -> None:
        """A new stream: every unacknowledged batch is sent again first, unchanged."""
        self.resend = sorted(self.unacked)

    def next_request(self, now: float):
        """(request, None) to send now, or (None, seconds to wait at most)."""
        while self.resend:
            batch = self.unacked.get(self.resend.pop(0))
            if batch is not None:
                self.stats.retried += batch.count
                return batch.request, None
        if not self.buffer:
            return None, None
        if len(self.unacked) >= self.max_in_flight:
            return None, None
        if len(self.buffer) < self.batch_size and self.cut + len(self.buffer) > self.flush_upto:
            if not self.closed:
                due = self.first_at + self.linger
                if now < due:
                    return None, due - now
        events = self.buffer[: self.batch_size]
        del self.buffer[: self.batch_size]
        if self.buffer:
            self.first_at = now
        self.seq += 1
        request = _encode_request(self._producer_bytes, self.seq, events)
        self.unacked[self.seq] = _Batch(request, self.cut, len(events))
        self.cut += len(events)
        self.stats.sent += len(events)
        return request, None

    def on_ack(self, ack: ingest_pb2.BatchAck) -> None:
        batch = self.unacked.pop(ack.seq, None)
        if batch is None:
            return  # an ack of a batch resent after it was acknowledged
        s = self.stats
        s.acked += ack.accepted + ack.duplicates
        s.duplicates += ack.duplicates
        # A batch resent whole counts its rejected events as duplicates too.
        rejected = min(len(ack.rejections), batch.count - ack.accepted - ack.duplicates)
        s.rejected += rejected
        for r in ack.rejections[:rejected]:
            name = event_pb2.RejectReason.Name(r.reason)
            s.rejected_by_reason[name] = s.rejected_by_reason.get(name, 0) + 1
        self.wake()

    def on_stream_end(self, kind: str, error: str) -> None:
        """The stream ended with an error of `kind` (see `classify`)."""
        self.stats.last_error = error
        if kind == UNREADABLE and self.unacked:
            # The server answers in order: the oldest unanswered batch is the one it
            # could not read. Resending cannot help.
            seq = min(self.unacked)
            self.stats.dropped += self.unacked.pop(seq).count
        self.wake()

    def drop_pending(self) -> None:
        """Gives up on everything not yet acknowledged (a close that timed out)."""
        n = len(self.buffer) + sum(b.count for b in self.unacked.values())
        self.stats.dropped += n
        self.cut += len(self.buffer)
        self.buffer.clear()
        self.unacked.clear()
        self.resend.clear()
        self.wake()

    def snapshot(self) -> Stats:
        s = self.stats
        return Stats(
            sent=s.sent,
            acked=s.acked,
            duplicates=s.duplicates,
            rejected=s.rejected,
            rejected_by_reason=dict(s.rejected_by_reason),
            retried=s.retried,
            dropped=s.dropped,
            reconnects=s.reconnects,
            pending=len(self.buffer) + sum(b.count for b in self.unacked.values()),
            last_error=s.last_error,
        )


class Backoff:
    """Reconnect delays: doubling from 50 ms up to `cap`, at least a server's RetryInfo."""

    def __init__(self, cap: float):
        self.cap = cap
        self.next = 0.05

    def reset(self) -> None:
        self.next = 0.05

    def delay(self, kind: str, server_delay: Optional[float]) -> float:
        if kind == REFUSED:
            d = self.cap
        else:
            d = self.next
            self.next = min(self.cap, self.next * 2)
        d *= 0.8 + 0.4 * _rng.random()
        if server_delay is not None:
            d = max(d, server_delay)
        return d


def stream_events(channel):
    """`Ingest/StreamEvents` on `channel` (sync or asyncio), taking requests
    already encoded by `Pipeline`."""
    return channel.stream_stream(
        "/pulsyon.v1.Ingest/StreamEvents",
        request_serializer=None,
        response_deserializer=ingest_pb2.StreamEventsResponse.FromString,
    )


def new_producer_id() -> str:
    return new_event_id()
