-- Deduplication by event id (ADR 0004). The same (tenant_id, time, event_id) is
-- stored once: the tenant-wide browsing index becomes unique, so it costs no
-- new index. Rows stored twice before this migration keep their first copy.
DELETE FROM api_logs a
USING api_logs b
WHERE a.tenant_id = b.tenant_id
  AND a.time = b.time
  AND a.event_id = b.event_id
  AND a.tableoid = b.tableoid
  AND a.ctid > b.ctid;
DROP INDEX api_logs_tenant_time;
CREATE UNIQUE INDEX api_logs_tenant_time ON api_logs (tenant_id, time DESC, event_id DESC);

-- The batch ledger keeps a digest of each batch's events (their ids and times,
-- in order): a resent (producer, seq) is a duplicate only when its digest is
-- the same; otherwise its events are processed on their own merits. Rows from
-- before this migration have none and never match.
ALTER TABLE ingest_batches ADD COLUMN digest bytea;
