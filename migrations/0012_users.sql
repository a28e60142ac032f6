-- People of a tenant who log in to the dashboard, each with a role: viewer
-- (reads), responder (also acknowledges and resolves incidents), admin (also
-- keys, users, limits and rules). Passwords are stored as Argon2id PHC
-- strings (src/auth.rs), never in any other form. A disabled user keeps its
-- row (names in incident updates refer to it) and cannot log in.
CREATE TABLE users (
    user_id        uuid PRIMARY KEY,
    tenant_id      bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    name           text NOT NULL,
    role           text NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL,
    disabled_at    timestamptz,
    UNIQUE (tenant_id, name)
);

-- Row-level security, as for every tenant table (0005).
GRANT SELECT, INSERT, UPDATE, DELETE ON users TO pulsyon_tenant;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users TO pulsyon_tenant
    USING (tenant_id = NULLIF(current_setting('pulsyon.tenant_id', true), '')::bigint)
    WITH CHECK (tenant_id = NULLIF(current_setting('pulsyon.tenant_id', true), '')::bigint);
