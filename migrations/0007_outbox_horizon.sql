-- Incidents resolved longer ago than the incident retention are deleted with
-- their alerts and outbox rows (src/ingest/partitions.rs). `pruned_through` is
-- the highest outbox sequence ever deleted: a Watch that asks to resume from
-- below it has lost updates and must resync (FAILED_PRECONDITION). One row.
CREATE TABLE outbox_horizon (
    only_row        boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    pruned_through  bigint NOT NULL DEFAULT 0
);
INSERT INTO outbox_horizon DEFAULT VALUES;
