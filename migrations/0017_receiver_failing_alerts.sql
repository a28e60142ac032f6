-- The system's own alert (src/notify/fallback.rs): a notification receiver
-- failed every attempt for longer than its tenant's fallback threshold. Its
-- incident (service `pulsyon.notify`) goes to the tenant's fallback receiver.
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
    CHECK (kind IN ('error_rate', 'latency_p95', 'traffic_drop', 'receiver_failing'));
