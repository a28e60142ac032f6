-- Events a door leaves out as not requests (OTLP spans that are not server
-- spans) are counted as `filtered`, and as received.
ALTER TABLE ingest_outcomes DROP CONSTRAINT ingest_outcomes_outcome_check;
ALTER TABLE ingest_outcomes ADD CONSTRAINT ingest_outcomes_outcome_check
    CHECK (outcome IN ('received', 'stored', 'duplicate', 'rejected', 'throttled', 'filtered'));
