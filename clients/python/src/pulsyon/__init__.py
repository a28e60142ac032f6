"""Pulsyon SDK: send the requests your service serves to a Pulsyon server.

    import pulsyon

    client = pulsyon.Client("http://127.0.0.1:50051", "pls_...")
    client.send(service="checkout", endpoint="/orders/{id}", method="GET",
                status_code=200, latency_ms=12.5)
    client.flush(5.0)

`pulsyon.aio.Client` is the same client for asyncio; `pulsyon.asgi` and
`pulsyon.wsgi` hold middleware that records every request a web app serves.
"""

from pulsyon._core import MAX_BATCH_EVENTS, Stats, new_event_id, timestamp
from pulsyon._sync import Client
from pulsyon.v1.event_pb2 import Event, RejectReason

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Event",
    "MAX_BATCH_EVENTS",
    "RejectReason",
    "Stats",
    "new_event_id",
    "timestamp",
]
