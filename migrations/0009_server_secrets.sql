-- Secrets every server process shares, made by the first process that needs
-- one (src/store/secrets.rs). `page_tokens` signs page tokens, so that a
-- client cannot forge one (a token carries a query's resolved range).
CREATE TABLE server_secrets (
    name        text PRIMARY KEY,
    secret      bytea NOT NULL CHECK (length(secret) >= 32),
    created_at  timestamptz NOT NULL DEFAULT now()
);
