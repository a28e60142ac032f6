-- An alert decided by the absolute bar because its subject had no healthy
-- baseline yet (a new service failing from its first minutes): its
-- explanation says so instead of quoting a baseline.
ALTER TABLE alerts ADD COLUMN no_baseline boolean NOT NULL DEFAULT false;
