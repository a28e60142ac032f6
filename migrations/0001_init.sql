-- Pulsyon's first schema. Migrations are never edited once landed: change the
-- schema with a new file. Index choices are explained in docs/adr/0002-indexes.md.

-- Tenants: isolated spaces of services, events and incidents.
CREATE TABLE tenants (
    tenant_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- API keys. Only a SHA-256 of the secret is stored; `prefix` lets a person
-- recognise a key without it.
CREATE TABLE api_keys (
    key_id        uuid PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT '',
    prefix        text NOT NULL,
    secret_sha256 bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    scopes        text[] NOT NULL
                  CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'admin']),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);

-- The catalogue of services per tenant, kept by the writer.
CREATE TABLE services (
    tenant_id   bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    name        text NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

-- Every stored event. Partitioned by event time into daily partitions, which a
-- server task creates ahead of time and drops after the retention; the default
-- partition catches events no daily partition covers (and is reported).
CREATE TABLE api_logs (
    tenant_id       bigint NOT NULL,
    time            timestamptz NOT NULL,
    event_id        uuid NOT NULL,
    service         text NOT NULL,
    endpoint        text NOT NULL,
    method          text NOT NULL,
    status_code     smallint NOT NULL,
    latency_ms      double precision NOT NULL,
    trace_id        text NOT NULL,
    request_id      text NOT NULL,
    environment     text NOT NULL,
    release         text NOT NULL,
    host            text NOT NULL,
    request_bytes   bigint NOT NULL,
    response_bytes  bigint NOT NULL,
    attributes      jsonb NOT NULL,
    received_at     timestamptz NOT NULL
) PARTITION BY RANGE (time);
CREATE TABLE api_logs_default PARTITION OF api_logs DEFAULT;
-- Per-service browsing, newest first, with keyset pagination on (time, event_id).
CREATE INDEX api_logs_service_time ON api_logs (tenant_id, service, time DESC, event_id DESC);
-- Tenant-wide browsing, newest first, and keyset pagination on (time, event_id).
CREATE INDEX api_logs_tenant_time ON api_logs (tenant_id, time DESC, event_id DESC);
-- Lookups by trace or request id; events without one are left out of the index.
CREATE INDEX api_logs_trace ON api_logs (tenant_id, trace_id) WHERE trace_id <> '';
CREATE INDEX api_logs_request ON api_logs (tenant_id, request_id) WHERE request_id <> '';

-- Dead letter: every rejected event with its payload (the encoded pulsyon.v1.Event)
-- and the reason, so nothing is dropped silently.
CREATE TABLE failed_events (
    failed_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    received_at  timestamptz NOT NULL,
    producer_id  text NOT NULL,
    batch_seq    bigint NOT NULL,
    event_index  integer NOT NULL,
    reason       text NOT NULL,
    message      text NOT NULL,
    payload      bytea NOT NULL
);
CREATE INDEX failed_events_tenant_time ON failed_events (tenant_id, received_at DESC, failed_id DESC);

-- The ledger of committed ingest batches, written in the same transaction as
-- the batch's events: a resent (producer, seq) is recognised and not stored again.
CREATE TABLE ingest_batches (
    tenant_id     bigint NOT NULL,
    producer_id   text NOT NULL,
    seq           bigint NOT NULL,
    accepted      integer NOT NULL,
    rejected      integer NOT NULL,
    committed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, producer_id, seq)
);
CREATE INDEX ingest_batches_committed ON ingest_batches (committed_at);

-- Ingest outcomes per tenant and minute. outcome is one of received, stored,
-- duplicate, rejected, throttled; reason is the reject reason or ''.
-- received = stored + duplicate + rejected + throttled for every minute.
CREATE TABLE ingest_outcomes (
    tenant_id  bigint NOT NULL,
    minute     timestamptz NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('received', 'stored', 'duplicate', 'rejected', 'throttled')),
    reason     text NOT NULL DEFAULT '',
    count      bigint NOT NULL,
    PRIMARY KEY (tenant_id, minute, outcome, reason)
);

-- Rollups per (tenant, service, endpoint) and minute or hour. `histogram` is a
-- mergeable log-scaled latency histogram whose encoding the rollup module owns.
CREATE TABLE metrics_minute (
    tenant_id    bigint NOT NULL,
    service      text NOT NULL,
    endpoint     text NOT NULL,
    bucket       timestamptz NOT NULL,
    count        bigint NOT NULL,
    status_2xx   bigint NOT NULL,
    status_4xx   bigint NOT NULL,
    status_5xx   bigint NOT NULL,
    latency_sum  double precision NOT NULL,
    latency_min  double precision NOT NULL,
    latency_max  double precision NOT NULL,
    histogram    bytea NOT NULL,
    PRIMARY KEY (tenant_id, service, endpoint, bucket)
);
-- All services of a tenant over a window (GetServiceHealth, ListServices).
CREATE INDEX metrics_minute_tenant_bucket ON metrics_minute (tenant_id, bucket);
-- One service's series over a window, all endpoints merged (GetMetrics).
CREATE INDEX metrics_minute_service_bucket ON metrics_minute (tenant_id, service, bucket);

CREATE TABLE metrics_hourly (LIKE metrics_minute INCLUDING ALL);

-- Where the rollup task got to.
CREATE TABLE rollup_watermarks (
    name       text PRIMARY KEY,
    watermark  timestamptz NOT NULL
);

-- Overrides of detection rules, tenant-wide (service = '') or per service.
-- Zero or NULL fields keep the value of the wider level.
CREATE TABLE detection_rules (
    tenant_id  bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    service    text NOT NULL DEFAULT '',
    kind       text NOT NULL CHECK (kind IN ('error_rate', 'latency_p95', 'traffic_drop')),
    settings   jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, service, kind)
);

-- Incidents: alerts of one service grouped into one thing to fix.
CREATE TABLE incidents (
    incident_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    service          text NOT NULL,
    title            text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status           text NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    opened_at        timestamptz NOT NULL,
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    resolved_at      timestamptz,
    resolved_by      text,
    last_alert_at    timestamptz NOT NULL,
    reopen_count     integer NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- At most one unresolved incident per (tenant, service): concurrent alerts of
-- one cause cannot open two.
CREATE UNIQUE INDEX incidents_one_open ON incidents (tenant_id, service) WHERE status <> 'resolved';
CREATE INDEX incidents_tenant_opened ON incidents (tenant_id, opened_at DESC);

-- Alerts: one detection rule firing, with the numbers that explain it.
CREATE TABLE alerts (
    alert_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    incident_id  bigint REFERENCES incidents (incident_id) ON DELETE CASCADE,
    service      text NOT NULL,
    endpoint     text NOT NULL DEFAULT '',
    kind         text NOT NULL CHECK (kind IN ('error_rate', 'latency_p95', 'traffic_drop')),
    severity     text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    observed     double precision NOT NULL,
    baseline     double precision NOT NULL,
    threshold    double precision NOT NULL,
    window_secs  integer NOT NULL,
    fired_at     timestamptz NOT NULL,
    cleared_at   timestamptz
);
CREATE INDEX alerts_incident ON alerts (incident_id);
CREATE INDEX alerts_tenant_fired ON alerts (tenant_id, fired_at DESC);

-- The outbox of incident changes, written in the same transaction as the
-- change; `seq` is monotonic and Watch replays from it.
CREATE TABLE incident_updates (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    incident_id  bigint NOT NULL REFERENCES incidents (incident_id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('opened', 'alert_added', 'escalated', 'acknowledged', 'resolved', 'reopened')),
    at           timestamptz NOT NULL DEFAULT now(),
    alert_id     bigint REFERENCES alerts (alert_id) ON DELETE SET NULL,
    actor        text NOT NULL DEFAULT '',
    note         text NOT NULL DEFAULT ''
);
CREATE INDEX incident_updates_tenant_seq ON incident_updates (tenant_id, seq);
CREATE INDEX incident_updates_incident ON incident_updates (incident_id, seq);
