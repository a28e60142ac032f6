-- Rollups, as the rollup task keeps them (src/rollup). The 0001 tables were
-- never written; they are redefined with the per-minute p95 that uptime needs
-- and with service-wide tables next to the per-endpoint ones.

DROP TABLE metrics_minute;
DROP TABLE metrics_hourly;

-- One row per (tenant, service, endpoint, bucket). `histogram` is the encoding
-- of src/rollup/histogram.rs; `latency_p95` is read from it when the row is written.
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
    latency_p95  double precision NOT NULL,
    histogram    bytea NOT NULL,
    PRIMARY KEY (tenant_id, service, endpoint, bucket)
);
-- Every endpoint of a tenant over recent minutes (the detector).
CREATE INDEX metrics_minute_tenant_bucket ON metrics_minute (tenant_id, bucket);
-- Retention deletes by bucket.
CREATE INDEX metrics_minute_bucket ON metrics_minute (bucket);

CREATE TABLE metrics_hourly (LIKE metrics_minute INCLUDING ALL);

-- The same, all endpoints of a service together.
CREATE TABLE service_minute (
    tenant_id    bigint NOT NULL,
    service      text NOT NULL,
    bucket       timestamptz NOT NULL,
    count        bigint NOT NULL,
    status_2xx   bigint NOT NULL,
    status_4xx   bigint NOT NULL,
    status_5xx   bigint NOT NULL,
    latency_sum  double precision NOT NULL,
    latency_min  double precision NOT NULL,
    latency_max  double precision NOT NULL,
    latency_p95  double precision NOT NULL,
    histogram    bytea NOT NULL,
    PRIMARY KEY (tenant_id, service, bucket)
);
-- All services of a tenant over a window (GetServiceHealth, ListServices);
-- the included columns let uptime be counted from the index alone.
CREATE INDEX service_minute_tenant_bucket ON service_minute (tenant_id, bucket)
    INCLUDE (service, count, status_5xx, latency_p95);
CREATE INDEX service_minute_bucket ON service_minute (bucket);

CREATE TABLE service_hourly (LIKE service_minute INCLUDING ALL);

-- What each writer transaction adds to the rollups (src/rollup/agg.rs),
-- written in the same transaction as its events and consumed (deleted) by the
-- rollup task in the transaction that merges it, so every stored event is
-- counted exactly once, late ones included.
CREATE TABLE rollup_deltas (
    delta_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  bigint NOT NULL,
    payload    bytea NOT NULL
);
