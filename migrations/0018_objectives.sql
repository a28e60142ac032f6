-- Service level objectives (src/domain/objective.rs, docs/objectives.md): one
-- per (tenant, service, endpoint, kind); how each stands is computed from the
-- rollups' exact counts when asked (src/query/objectives.rs).
CREATE TABLE objectives (
    objective_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id             bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    service               text NOT NULL,
    endpoint              text NOT NULL DEFAULT '',
    kind                  text NOT NULL CHECK (kind IN ('availability', 'latency')),
    target_percent        double precision NOT NULL CHECK (target_percent > 0 AND target_percent < 100),
    period_days           integer NOT NULL CHECK (period_days IN (28, 30)),
    count_4xx             boolean NOT NULL DEFAULT false,
    latency_threshold_ms  double precision NOT NULL DEFAULT 0,
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, service, endpoint, kind)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON objectives TO pulsyon_tenant;
ALTER TABLE objectives ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON objectives TO pulsyon_tenant
    USING (tenant_id = NULLIF(current_setting('pulsyon.tenant_id', true), '')::bigint)
    WITH CHECK (tenant_id = NULLIF(current_setting('pulsyon.tenant_id', true), '')::bigint);
