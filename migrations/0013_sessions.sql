-- Sessions of the dashboard: one per login, by a user's password or an API
-- key. The browser holds a random token in an HttpOnly cookie; only its
-- SHA-256 is stored. A session ends when it expires, at logout, or when its
-- user is disabled.
CREATE TABLE sessions (
    session_id     uuid PRIMARY KEY,
    tenant_id      bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    user_id        uuid REFERENCES users (user_id) ON DELETE CASCADE,
    key_id         uuid REFERENCES api_keys (key_id) ON DELETE CASCADE,
    role           text NOT NULL CHECK (role IN ('viewer', 'responder', 'admin')),
    actor          text NOT NULL,
    token_sha256   bytea NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    CHECK ((user_id IS NULL) <> (key_id IS NULL))
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE user_id IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON sessions TO pulsyon_tenant;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sessions TO pulsyon_tenant
    USING (tenant_id = NULLIF(current_setting('pulsyon.tenant_id', true), '')::bigint)
    WITH CHECK (tenant_id = NULLIF(current_setting('pulsyon.tenant_id', true), '')::bigint);
