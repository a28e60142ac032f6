-- Per-tenant overrides of the server's default limits (src/domain.rs,
-- TenantLimits). A NULL column follows the default. Read with the tenant's
-- API key (so a change reaches every process within the key cache TTL).
CREATE TABLE tenant_limits (
    tenant_id             bigint PRIMARY KEY REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    events_per_sec        double precision CHECK (events_per_sec > 0),
    events_burst          bigint CHECK (events_burst > 0),
    bytes_per_sec         double precision CHECK (bytes_per_sec > 0),
    bytes_burst           bigint CHECK (bytes_burst > 0),
    max_streams           integer CHECK (max_streams > 0),
    max_services          integer CHECK (max_services > 0),
    max_endpoints         integer CHECK (max_endpoints > 0),
    max_query_range_secs  bigint CHECK (max_query_range_secs > 0),
    max_page_size         integer CHECK (max_page_size > 0),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Row-level security, as for every tenant table (0005).
GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_limits TO pulsyon_tenant;
ALTER TABLE tenant_limits ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_limits TO pulsyon_tenant
    USING (tenant_id = NULLIF(current_setting('pulsyon.tenant_id', true), '')::bigint)
    WITH CHECK (tenant_id = NULLIF(current_setting('pulsyon.tenant_id', true), '')::bigint);
