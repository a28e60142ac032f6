-- Burn-rate alerts of service level objectives (src/detect/objectives.rs):
-- one kind per objective kind, so that (tenant, service, endpoint, kind)
-- names the objective an alert is of, as it names a rule's subject. `detail`
-- is what an alert's own fields cannot say (the budget spent, the burn rate
-- per window, when the budget runs out), written when it fires; the rules'
-- alerts leave it empty.
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
    CHECK (kind IN ('error_rate', 'latency_p95', 'traffic_drop', 'receiver_failing',
                    'availability_burn', 'latency_burn'));
ALTER TABLE alerts ADD COLUMN detail text NOT NULL DEFAULT '';
