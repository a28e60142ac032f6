-- Group windows (src/notify/plan.rs, docs/notifications.md "Group windows"):
-- a route with a group window holds its deliveries to a receiver until the
-- receiver's open window ends (`group_due`), then the planner sends them as
-- one digest delivery; each held delivery stays a row of its own (its
-- incident's log) and follows its digest (`digest_id`) to delivered or
-- failed. While waiting they are pending but never due (`next_at` is
-- 9999-12-31), so later updates of their incidents to that receiver still
-- wait behind them.
ALTER TABLE deliveries
    ADD COLUMN group_due timestamptz,
    ADD COLUMN digest_id bigint REFERENCES deliveries (delivery_id) ON DELETE SET NULL;
CREATE INDEX deliveries_grouped ON deliveries (receiver_id, group_due) WHERE group_due IS NOT NULL;
CREATE INDEX deliveries_digest ON deliveries (digest_id) WHERE digest_id IS NOT NULL;
