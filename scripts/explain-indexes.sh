#!/usr/bin/env bash
# Prints the EXPLAIN (ANALYZE, BUFFERS) plans of the main queries that the
# indexes of migrations/0001_init.sql serve, on a scratch database filled with
# synthetic events (3 daily partitions, 2 tenants, 20 services, $ROWS rows).
# Used by docs/adr/0002-indexes.md. Needs psql and a PostgreSQL at $URL.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
URL=${URL:-postgres://postgres:postgres@127.0.0.1:5432/postgres}
ROWS=${ROWS:-600000}
DB=pulsyon_explain
base=${URL%/*}

psql "$URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
trap 'psql "$URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
q() { psql "$base/$DB" -v ON_ERROR_STOP=1 -qAt "$@"; }

q -f "$root/migrations/0001_init.sql"
q <<SQL
INSERT INTO tenants (name) VALUES ('acme'), ('globex');
DO \$\$
DECLARE d date;
BEGIN
  FOR d IN SELECT generate_series(current_date - 2, current_date, '1 day')::date LOOP
    EXECUTE format('CREATE TABLE api_logs_%s PARTITION OF api_logs FOR VALUES FROM (%L) TO (%L)',
                   to_char(d, 'YYYYMMDD'), d, d + 1);
  END LOOP;
END \$\$;
INSERT INTO api_logs
SELECT 1 + (i % 2), now() - (i * interval '3 days' / $ROWS), gen_random_uuid(),
       'svc-' || (i % 20), '/api/v1/route-' || (i % 15), (ARRAY['GET','POST','PUT'])[1 + i % 3],
       (ARRAY[200,200,200,201,204,400,404,500])[1 + i % 8], random() * 300,
       CASE WHEN i % 4 = 0 THEN '' ELSE md5(i::text) END, md5((i * 7)::text),
       'production', 'v1', 'host-' || (i % 5), 512, 2048, '{}'::jsonb, now()
FROM generate_series(1, $ROWS) AS i;
INSERT INTO metrics_minute
SELECT 1 + (s % 2), 'svc-' || s, '/api/v1/route-' || e, m, 100, 90, 5, 5, 5000, 1, 300, '\x00'
FROM generate_series(0, 19) s, generate_series(0, 14) e,
     generate_series(date_trunc('minute', now()) - interval '3 days', now(), interval '1 minute') m;
ANALYZE;
SQL

explain() {
  printf '\n### %s\n\n```sql\n%s\n```\n\n```\n' "$1" "$2"
  q -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) $2"
  printf '```\n'
}

explain "QueryEvents: one service, last hour, newest first, one page" \
"SELECT * FROM api_logs WHERE tenant_id = 1 AND service = 'svc-4' AND time >= now() - interval '1 hour' AND time < now() ORDER BY time DESC, event_id DESC LIMIT 100;"
explain "QueryEvents: the next page (keyset on time, event_id)" \
"SELECT * FROM api_logs WHERE tenant_id = 1 AND service = 'svc-4' AND time >= now() - interval '1 hour' AND (time, event_id) < (now() - interval '10 minutes', 'ffffffff-ffff-ffff-ffff-ffffffffffff') ORDER BY time DESC, event_id DESC LIMIT 100;"
explain "QueryEvents: every service of a tenant, last hour" \
"SELECT * FROM api_logs WHERE tenant_id = 2 AND time >= now() - interval '1 hour' ORDER BY time DESC, event_id DESC LIMIT 100;"
explain "QueryEvents: by trace id (no time bound)" \
"SELECT * FROM api_logs WHERE tenant_id = 1 AND trace_id = md5('4242') AND time >= now() - interval '3 days';"
explain "GetMetrics: one service, one day, by minute (rollups)" \
"SELECT bucket, sum(count), sum(status_5xx) FROM metrics_minute WHERE tenant_id = 1 AND service = 'svc-4' AND bucket >= now() - interval '1 day' GROUP BY bucket ORDER BY bucket;"
explain "GetServiceHealth: every service of a tenant, last hour (rollups)" \
"SELECT service, sum(count), sum(status_5xx) FROM metrics_minute WHERE tenant_id = 1 AND bucket >= now() - interval '1 hour' GROUP BY service;"
explain "API key lookup by digest" \
"SELECT key_id FROM api_keys WHERE secret_sha256 = sha256('x');"
