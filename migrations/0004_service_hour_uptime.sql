-- Per service and hour: minutes with traffic, and of those the minutes that met
-- the objective (src/rollup/health.rs), kept by the rollup task from the minute
-- rows. Uptime over a long window then reads hours instead of minutes, and
-- survives the minute rows' shorter retention.
ALTER TABLE service_hourly
    ADD COLUMN traffic_minutes integer NOT NULL DEFAULT 0,
    ADD COLUMN good_minutes integer NOT NULL DEFAULT 0;
