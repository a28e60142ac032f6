-- Each outbox row keeps the incident as it was after the change (JSON of
-- src/detect/model.rs Incident), so that Watch replays history as it happened.
ALTER TABLE incident_updates ADD COLUMN incident jsonb NOT NULL DEFAULT '{}';

-- The detector reloads the alerts still firing; auto-resolution looks for them per incident.
CREATE INDEX alerts_firing ON alerts (tenant_id, service) WHERE cleared_at IS NULL;
-- A relapse looks for the service's latest resolved incident.
CREATE INDEX incidents_resolved ON incidents (tenant_id, service, resolved_at DESC) WHERE status = 'resolved';
