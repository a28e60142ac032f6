"""`pulsyon.Client`: a daemon thread owns the channel and one StreamEvents stream."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from typing import Optional

import grpc

from pulsyon import _core
from pulsyon._channel import PemSource, Target
from pulsyon.v1 import event_pb2

log = logging.getLogger("pulsyon")

_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()


class Client:
    """Sends events to Pulsyon without ever blocking the caller.

    `send` puts an event in a bounded queue (a full queue drops the event and
    counts it in `stats().dropped`); a daemon thread cuts the queue into batches
    of up to `batch_size` events (or what has waited `linger` seconds), streams
    them with at most `max_in_flight` unacknowledged, and after a disconnect
    resends every unacknowledged batch unchanged, so the server stores each event
    once. `flush(timeout)` waits for every event sent before it; `close` flushes
    and stops. Unflushed events are flushed at interpreter exit (`exit_timeout`).

    After `os.fork()` the child's client starts afresh: its own producer id,
    thread and channel, and none of the parent's queued events (the parent sends
    those).
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        batch_size: int = 1000,
        linger: float = 0.05,
        max_buffered: int = 100_000,
        max_in_flight: int = 8,
        max_backoff: float = 5.0,
        producer_id: Optional[str] = None,
        tls_ca: PemSource = None,
        tls_cert: PemSource = None,
        tls_key: PemSource = None,
        exit_timeout: float = 5.0,
    ):
        self._target = Target.parse(url, api_key, tls_ca, tls_cert, tls_key)
        self._settings = dict(
            batch_size=batch_size,
            linger=linger,
            max_buffered=max_buffered,
            max_in_flight=max_in_flight,
        )
        self._fixed_producer_id = producer_id
        self._max_backoff = max_backoff
        self._exit_timeout = exit_timeout
        self._fresh()
        _clients.add(self)

    def _fresh(self) -> None:
        self._pipe = _core.Pipeline(
            self._fixed_producer_id or _core.new_producer_id(),
            wake=self._notify,
            **self._settings,
        )
        self._cond = self._pipe.cond
        self._thread: Optional[threading.Thread] = None
        self._channel: Optional[grpc.Channel] = None
        self._call = None
        self._generation = 0
        self._stopped = False  # the thread must end now, sent or not

    def _notify(self) -> None:
        self._cond.notify_all()

    @property
    def producer_id(self) -> str:
        return self._pipe.producer_id

    # -- the caller's side ------------------------------------------------------

    def send(self, event: Optional[event_pb2.Event] = None, /, **fields) -> bool:
        """Queues one event (an `Event`, or its fields as keywords); never blocks.

        A missing `event_id` gets a UUIDv7 and a missing `time` the current time.
        Returns False when the event was dropped (queue full or client closed).
        """
        if event is None:
            event = _core.make_event(fields)
        elif fields:
            raise TypeError("send takes an Event or keyword fields, not both")
        if self._thread is None:
            self._start()
        return self._pipe.offer(event)

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until every event sent before the call is acked, rejected or dropped.

        Returns False if `timeout` seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            upto = self._pipe.request_flush()
            while not self._pipe.settled(upto):
                if self._stopped:
                    return False
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return False
                self._cond.wait(wait)
            return True

    def close(self, timeout: Optional[float] = None) -> bool:
        """Flushes, ends the stream and stops the thread; later sends count as dropped.

        Returns False if `timeout` passed before everything was acknowledged; what
        was left is counted as dropped.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._pipe.close()
        ok = self.flush(timeout)
        with self._cond:
            if not ok:
                self._pipe.drop_pending()
            self._stopped = True
            call = self._call
            self._cond.notify_all()
        if call is not None and not ok:
            call.cancel()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            wait = None if deadline is None else max(0.1, deadline - time.monotonic())
            thread.join(wait)
        if self._channel is not None:
            self._channel.close()
        return ok

    def stats(self) -> _core.Stats:
        """The counters (docs/sdk.md): sent, acked, duplicates, rejected (by reason),
        retried, dropped, reconnects, pending and the last error."""
        with self._cond:
            return self._pipe.snapshot()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close(self._exit_timeout)

    # -- the thread -------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._channel = self._target.channel()
            self._thread = threading.Thread(target=self._run, name="pulsyon-sender", daemon=True)
            self._thread.start()

    def _requests(self, generation: int):
        """The client side of one stream: resends first, then new batches."""
        pipe = self._pipe
        while True:
            with self._cond:
                while True:
                    if self._generation != generation or self._stopped:
                        return
                    request, wait = pipe.next_request(time.monotonic())
                    if request is not None:
                        break
                    if pipe.done():
                        return  # half-close: the server ends the stream once it has answered
                    self._cond.wait(wait)
            yield request

    def _run(self) -> None:
        stream_events = _core.stream_events(self._channel)
        backoff = _core.Backoff(self._max_backoff)
        first = True
        while True:
            with self._cond:
                if self._stopped or self._pipe.done():
                    return
                if not first:
                    self._pipe.stats.reconnects += 1
                first = False
                self._generation += 1
                generation = self._generation
                self._pipe.start_stream()
            call = stream_events(
                self._requests(generation),
                metadata=self._target.metadata,
                wait_for_ready=True,
            )
            with self._cond:
                self._call = call
            kind, server_delay = _core.RETRY, None
            try:
                for response in call:
                    with self._cond:
                        self._pipe.on_ack(response.ack)
                    backoff.reset()
                with self._cond:
                    if self._pipe.done():
                        return
                    self._pipe.on_stream_end(_core.RETRY, "stream ended by the server")
            except grpc.RpcError as e:
                kind = _core.classify(e.code())
                server_delay = _core.retry_delay(e.trailing_metadata())
                error = f"{e.code().name}: {e.details()}"
                log.debug("pulsyon stream ended (%s); reconnecting", error)
                with self._cond:
                    self._pipe.on_stream_end(kind, error)
            except Exception as e:  # a failure of the channel itself: keep the batches, retry
                log.warning("pulsyon sender: %r; reconnecting", e)
                with self._cond:
                    self._pipe.on_stream_end(_core.RETRY, repr(e))
            finally:
                with self._cond:
                    self._generation += 1  # ends this stream's request generator
                    self._call = None
                    self._cond.notify_all()
            delay = backoff.delay(kind, server_delay)
            with self._cond:
                self._cond.wait_for(lambda: self._stopped, timeout=delay)

    def _after_fork_in_child(self) -> None:
        # Nothing of the parent's sender is usable here: the thread is gone and a
        # gRPC channel must not cross a fork. The parent still sends its events.
        self._fresh()


def _flush_all_at_exit() -> None:
    for client in list(_clients):
        if client._thread is not None and not client._stopped:
            client.close(client._exit_timeout)


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._after_fork_in_child()


atexit.register(_flush_all_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
