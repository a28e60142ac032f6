"""`pulsyon.aio.Client`: the same client on `grpc.aio`, for asyncio applications.

`send` is a plain (non-async) call that never waits; `flush` and `close` are
coroutines. The client's task runs on the event loop that first calls `send`
(or enters `async with`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Optional

import grpc

from pulsyon import _core
from pulsyon._channel import PemSource, Target
from pulsyon.v1 import event_pb2

log = logging.getLogger("pulsyon")


class Client:
    """See `pulsyon.Client`; the same options, promises and counters."""

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
    ):
        self._target = Target.parse(url, api_key, tls_ca, tls_cert, tls_key)
        self._pipe = _core.Pipeline(
            producer_id or _core.new_producer_id(),
            batch_size=batch_size,
            linger=linger,
            max_buffered=max_buffered,
            max_in_flight=max_in_flight,
            wake=self._notify,
        )
        self._max_backoff = max_backoff
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._kick: Optional[asyncio.Event] = None  # a batch to cut, an ack, a flush
        self._stop: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task] = None
        self._channel: Optional[grpc.aio.Channel] = None
        self._call = None
        self._stopped = False

    @property
    def producer_id(self) -> str:
        return self._pipe.producer_id

    def _notify(self) -> None:
        if self._kick is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._kick.set()
        else:  # a send from another thread
            self._loop.call_soon_threadsafe(self._kick.set)

    def _start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._kick = asyncio.Event()
        self._stop = asyncio.Event()
        self._channel = self._target.aio_channel()
        self._task = self._loop.create_task(self._run(), name="pulsyon-sender")

    # -- the caller's side ------------------------------------------------------

    def send(self, event: Optional[event_pb2.Event] = None, /, **fields) -> bool:
        """Queues one event (an `Event` or its fields as keywords); never waits.

        Returns False when the event was dropped (queue full or client closed).
        """
        if event is None:
            event = _core.make_event(fields)
        elif fields:
            raise TypeError("send takes an Event or keyword fields, not both")
        if self._task is None:
            self._start()
        return self._pipe.offer(event)

    async def _wait(self, done, timeout: Optional[float]) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._pipe.cond:
                if done():
                    return True
                self._kick.clear()
            if self._stopped or (self._task is not None and self._task.done()):
                with self._pipe.cond:
                    return done()
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return False
            try:
                await asyncio.wait_for(self._kick.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def flush(self, timeout: Optional[float] = None) -> bool:
        """Waits until every event sent before the call is acked, rejected or dropped."""
        if self._task is None:
            return True
        with self._pipe.cond:
            upto = self._pipe.request_flush()
        return await self._wait(lambda: self._pipe.settled(upto), timeout)

    async def close(self, timeout: Optional[float] = None) -> bool:
        """Flushes, ends the stream and the task; later sends count as dropped."""
        with self._pipe.cond:
            upto = self._pipe.close()
        if self._task is None:
            return True
        ok = await self._wait(lambda: self._pipe.settled(upto), timeout)
        with self._pipe.cond:
            if not ok:
                self._pipe.drop_pending()
        self._stopped = True
        self._kick.set()
        self._stop.set()
        if not ok and self._call is not None:
            self._call.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5.0)
        except asyncio.TimeoutError:
            self._task.cancel()
        await self._channel.close()
        return ok

    def stats(self) -> _core.Stats:
        with self._pipe.cond:
            return self._pipe.snapshot()

    async def __aenter__(self) -> "Client":
        self._start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close(5.0)

    # -- the task ---------------------------------------------------------------

    async def _write(self, call) -> None:
        pipe = self._pipe
        while True:
            with pipe.cond:
                self._kick.clear()
                request, wait = pipe.next_request(time.monotonic())
                finished = request is None and pipe.done()
            if request is not None:
                await call.write(request)
                continue
            if finished or self._stopped:
                await call.done_writing()
                return
            try:
                await asyncio.wait_for(self._kick.wait(), wait)
            except asyncio.TimeoutError:
                pass

    async def _run(self) -> None:
        stream_events = _core.stream_events(self._channel)
        backoff = _core.Backoff(self._max_backoff)
        first = True
        while True:
            with self._pipe.cond:
                if self._stopped or self._pipe.done():
                    return
                if not first:
                    self._pipe.stats.reconnects += 1
                first = False
                self._pipe.start_stream()
            call = stream_events(metadata=self._target.metadata, wait_for_ready=True)
            self._call = call
            writer = asyncio.ensure_future(self._write(call))
            kind, server_delay = _core.RETRY, None
            try:
                async for response in call:
                    with self._pipe.cond:
                        self._pipe.on_ack(response.ack)
                    backoff.reset()
                with self._pipe.cond:
                    if self._pipe.done():
                        return
                    self._pipe.on_stream_end(_core.RETRY, "stream ended by the server")
            except grpc.aio.AioRpcError as e:
                kind = _core.classify(e.code())
                server_delay = _core.retry_delay(e.trailing_metadata())
                error = f"{e.code().name}: {e.details()}"
                log.debug("pulsyon stream ended (%s); reconnecting", error)
                with self._pipe.cond:
                    self._pipe.on_stream_end(kind, error)
            except Exception as e:  # a failure of the channel itself: keep the batches, retry
                log.warning("pulsyon sender: %r; reconnecting", e)
                with self._pipe.cond:
                    self._pipe.on_stream_end(_core.RETRY, repr(e))
            finally:
                self._call = None
                writer.cancel()
                try:
                    await writer
                except (asyncio.CancelledError, grpc.aio.AioRpcError, grpc.aio.UsageError):
                    pass
            delay = backoff.delay(kind, server_delay)
            if self._stopped:
                return
            try:
                await asyncio.wait_for(self._stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
