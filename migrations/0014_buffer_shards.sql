-- The shards of the ingest buffer (Redis streams between ingest and writer
-- processes) and the writer process that owns each. A writer commits a
-- shard's batches only while it holds the shard's current epoch, checked in
-- the write transaction (FOR SHARE): a takeover raises the epoch, so a writer
-- that lost its shard (paused, partitioned, presumed dead) can no longer
-- commit it, and two writers never commit one shard at once.
CREATE TABLE buffer_shards (
    shard       integer PRIMARY KEY CHECK (shard >= 0),
    owner       text NOT NULL DEFAULT '',
    epoch       bigint NOT NULL DEFAULT 0,
    lease_until timestamptz NOT NULL DEFAULT '-infinity'
);

-- Buffer entries a writer could not read as a batch (an unknown record
-- version, garbage): kept with their bytes, acknowledged in the buffer so
-- they stop blocking its trimming. A readable batch delivered too many times
-- goes to its tenant's dead letters instead (reason poison_batch).
CREATE TABLE buffer_poison (
    poison_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shard       integer NOT NULL,
    entry_id    text NOT NULL,
    deliveries  integer NOT NULL,
    reason      text NOT NULL,
    record      bytea NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
