"""`pulsyon.aio.Client` against the real server."""

from __future__ import annotations

import asyncio

import pulsyon.aio
from test_client import event_fields


def test_the_asyncio_client_stores_every_event_once(env):
    async def main():
        async with pulsyon.aio.Client(env.url, env.key) as client:
            for i in range(20_000):
                assert client.send(**event_fields(i, "aio"))
            assert await client.flush(60), client.stats()
            return client.stats()

    stats = asyncio.run(main())
    assert (stats.sent, stats.acked, stats.rejected, stats.dropped) == (20_000, 20_000, 0, 0)
    assert env.count("service = 'aio'") == (20_000, 20_000)


def test_the_asyncio_client_survives_kill_9_and_finishes_after_the_restart(env):
    total = 30_000

    async def main():
        client = pulsyon.aio.Client(env.url, env.key, batch_size=200, linger=0.01, max_backoff=1.0)
        restarted = False
        for i in range(total):
            client.send(**event_fields(i, "aio-kill9"))
            if i % 500 == 0:
                await asyncio.sleep(0.01)
            if not restarted and client.stats().acked >= 5_000:
                env.server.kill9()
                await asyncio.sleep(1.0)
                # Start-up blocks: off the loop, so the client goes on meanwhile.
                await asyncio.get_running_loop().run_in_executor(None, env.server.start)
                restarted = True
        assert restarted
        assert await client.close(120), client.stats()
        return client.stats()

    stats = asyncio.run(main())
    assert stats.acked + stats.rejected + stats.dropped == total, stats
    assert (stats.rejected, stats.dropped) == (0, 0), stats
    assert stats.reconnects >= 1
    assert env.count() == (total, total)
