-- Row-level security: tenant data is readable and changeable only by the
-- tenant set in the transaction. Request paths (Query, Incidents, Admin,
-- Watch) run as the role pulsyon_tenant with `pulsyon.tenant_id` set for
-- their transaction (src/store/mod.rs, Store::tenant_tx), so a query that
-- forgets `WHERE tenant_id = ...` still sees one tenant only. System paths
-- (the writer's COPY, the rollup task, the detector, the partition keeper)
-- run as the connecting role, which owns the tables and is not subject to
-- these policies; they handle every tenant by design. See docs/security.md.

-- The role is cluster-wide; several databases (or concurrent migrations) may
-- try to create it at once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pulsyon_tenant') THEN
        CREATE ROLE pulsyon_tenant NOLOGIN NOINHERIT NOBYPASSRLS;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- The connecting role must be able to switch to it (a superuser always can).
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'pulsyon_tenant', 'MEMBER') THEN
        EXECUTE format('GRANT pulsyon_tenant TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO pulsyon_tenant;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO pulsyon_tenant;

-- Every table with a tenant_id column: a grant and one policy. The policy
-- reads the transaction's setting; unset, it matches nothing (fail closed).
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN
        SELECT c.relname FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
    LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO pulsyon_tenant', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I TO pulsyon_tenant '
            'USING (tenant_id = NULLIF(current_setting(''pulsyon.tenant_id'', true), '''')::bigint) '
            'WITH CHECK (tenant_id = NULLIF(current_setting(''pulsyon.tenant_id'', true), '''')::bigint)',
            t);
    END LOOP;
END
$$;
