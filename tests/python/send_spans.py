"""Sends spans to Pulsyon with the real OpenTelemetry Python SDK and OTLP exporter.

    send_spans.py grpc|http ENDPOINT SERVERS CLIENTS [SERVICE]

The key comes from OTEL_EXPORTER_OTLP_HEADERS, as a user would set it. The
spans are made with the SDK's tracer (SERVERS server spans cycling through the
stable and the older HTTP semantic conventions and through 2xx/4xx/5xx, then
CLIENTS client spans), collected in memory, then exported in one call of the
exporter, which retries as it does in production. Prints one JSON line with
the export's result and the spans sent (route, status, latency in ms), and
exits 0 only when the export succeeded.
"""

import json
import sys
import time

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

protocol, endpoint, servers, clients = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
service = sys.argv[5] if len(sys.argv) > 5 else "otel-shop"

if protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True)
else:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=endpoint + "/v1/traces")

memory = InMemorySpanExporter()
provider = TracerProvider(
    resource=Resource.create(
        {"service.name": service, "service.version": "2.1.0", "deployment.environment": "staging"}
    )
)
provider.add_span_processor(SimpleSpanProcessor(memory))
tracer = provider.get_tracer("pulsyon-test")

ROUTES = ["/carts/{id}", "/orders", "/users/{id}/orders"]
STATUSES = [200, 201, 404, 500, 503, 200]
sent = []
now = time.time_ns() - 60 * 1_000_000_000
for i in range(servers):
    route = ROUTES[i % len(ROUTES)]
    status = STATUSES[i % len(STATUSES)]
    latency_ms = 5 + (i % 17) * 3
    start = now + i * 1_000_000
    if i % 2 == 0:  # the stable names
        attrs = {"http.route": route, "http.request.method": "GET", "http.response.status_code": status,
                 "url.path": route.replace("{id}", str(i))}
    else:  # the older names, as Python instrumentations emit by default
        attrs = {"http.route": route, "http.method": "GET", "http.status_code": status,
                 "http.target": route.replace("{id}", str(i))}
    span = tracer.start_span(f"GET {route}", kind=SpanKind.SERVER, attributes=attrs, start_time=start)
    span.end(end_time=start + latency_ms * 1_000_000)
    sent.append({"route": route, "status": status, "latency_ms": latency_ms})
for i in range(clients):
    span = tracer.start_span("GET", kind=SpanKind.CLIENT, start_time=now, attributes={"http.request.method": "GET"})
    span.end(end_time=now + 1_000_000)

result = exporter.export(memory.get_finished_spans())
exporter.shutdown()
print(json.dumps({"result": result.name, "sent": sent}))
sys.exit(0 if result == SpanExportResult.SUCCESS else 1)
