-- Notifications (src/notify/, docs/notifications.md). A receiver is where a
-- tenant's messages go; the planner turns every outbox row (incident_updates)
-- into one delivery per receiver its routes select, in one transaction with
-- the cursor below, so no update is skipped or planned twice across crashes
-- and leader changes. Senders claim due deliveries with FOR UPDATE SKIP
-- LOCKED and a lease; every attempt is kept. A silence makes a planned
-- delivery `suppressed` (sent later if the silence ends first); escalation
-- steps and repeats are deliveries of their own `reason`.

CREATE TABLE receivers (
    receiver_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    name           text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('webhook', 'slack', 'pagerduty', 'email')),
    url            text NOT NULL,
    -- Write-only through every door: only its fingerprint is ever shown.
    secret         text NOT NULL DEFAULT '',
    -- Kind-specific settings (webhook body format, email addresses and TLS).
    settings       jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);

CREATE TABLE deliveries (
    delivery_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    receiver_id    bigint NOT NULL REFERENCES receivers (receiver_id) ON DELETE CASCADE,
    incident_id    bigint NOT NULL REFERENCES incidents (incident_id) ON DELETE CASCADE,
    -- The outbox row it tells of (kept when retention prunes the outbox).
    update_seq     bigint NOT NULL,
    -- 'update', or 'escalation:<route>:<step>' / 'repeat:<route>:<n>'.
    reason         text NOT NULL DEFAULT 'update',
    change         text NOT NULL,
    -- When the update committed: commit-to-delivery latency starts here.
    committed_at   timestamptz NOT NULL,
    state          text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed', 'suppressed')),
    -- The silence that holds it (suppressed).
    silence_id     bigint,
    attempts       integer NOT NULL DEFAULT 0,
    next_at        timestamptz NOT NULL,
    deadline       timestamptz NOT NULL,
    -- A sender holds it until then; past it, another may claim it.
    leased_until   timestamptz,
    -- Which sender (a process's id, logged at its start) holds or held it.
    leased_by      uuid,
    delivered_at   timestamptz,
    last_error     text NOT NULL DEFAULT '',
    -- The message as rendered for its receiver (secrets never in it).
    message        jsonb NOT NULL,
    UNIQUE (receiver_id, incident_id, update_seq, reason)
);
CREATE INDEX deliveries_suppressed ON deliveries (tenant_id) WHERE state = 'suppressed';
CREATE INDEX deliveries_due ON deliveries (receiver_id, next_at) WHERE state = 'pending';
-- What senders hold (a finished attempt clears its lease).
CREATE INDEX deliveries_leased ON deliveries (receiver_id) WHERE state = 'pending' AND leased_until IS NOT NULL;
CREATE INDEX deliveries_order ON deliveries (receiver_id, incident_id, update_seq) WHERE state = 'pending';
CREATE INDEX deliveries_tenant ON deliveries (tenant_id, delivery_id DESC);
CREATE INDEX deliveries_incident ON deliveries (incident_id, update_seq);

CREATE TABLE delivery_attempts (
    delivery_id    bigint NOT NULL REFERENCES deliveries (delivery_id) ON DELETE CASCADE,
    tenant_id      bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    attempt        integer NOT NULL,
    at             timestamptz NOT NULL,
    ok             boolean NOT NULL,
    -- The HTTP status or the SMTP reply code (0: no answer).
    status         integer NOT NULL,
    latency_ms     double precision NOT NULL,
    -- Bounded, and never holding a secret.
    error          text NOT NULL DEFAULT '',
    PRIMARY KEY (delivery_id, attempt)
);

-- A tenant's routes (src/notify/routing.rs): ordered, with the default
-- route's receivers. No row: every sent change to every receiver.
CREATE TABLE notify_routes (
    tenant_id   bigint PRIMARY KEY REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    routes      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Silences and maintenance windows: matching incidents still open, their
-- notifications are held.
CREATE TABLE silences (
    silence_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('silence', 'maintenance')),
    matchers        jsonb NOT NULL,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz,
    recurrence      jsonb,
    until_resolved  bigint REFERENCES incidents (incident_id) ON DELETE CASCADE,
    created_by      text NOT NULL,
    comment         text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expired_at      timestamptz
);
CREATE INDEX silences_tenant ON silences (tenant_id, silence_id DESC);

-- The planner's place in the outbox: every update up to `seq` has its
-- deliveries. It starts at the outbox's end: history is not notified.
CREATE TABLE notify_cursor (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq       bigint NOT NULL
);
INSERT INTO notify_cursor (seq) SELECT coalesce(max(seq), 0) FROM incident_updates;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['receivers', 'deliveries', 'delivery_attempts', 'notify_routes', 'silences'] LOOP
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
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO pulsyon_tenant;
