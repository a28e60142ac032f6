#!/usr/bin/env bash
# Detection quality: regenerates docs/perf/detection.md.
#
#   scripts/bench-detection.sh [days] [rate] [varied-days]   (default 7, 8 and 3)
#   SEEDS="11 12" scripts/bench-detection.sh                 (the varied histories' seeds)
#
# One scratch database, one tenant per history, each sent through the ingest
# API by `pulsyon-seed`:
#   - classic: `days` of the load generator's 8 services at `rate` events/s
#     (daily cycle, 1.5% background 5xx, log-normal latencies) with five
#     injected incidents (error spike, latency degradation, slow drift,
#     outage, a new service broken from its first minute);
#   - varied, once per seed: `varied-days` of nine services of different kinds
#     (busy, quiet, fast, bursty, heavy-tailed, 4xx noise) with the failures past
#     the happy path (a hidden failing endpoint, a quiet service down, a relative
#     latency regression, a ramp, a sharp traffic drop).
# Once the rollups are complete, `pulsyon detect backtest --tenant` replays the
# detector over each history (after the first 2 h 10 min, which the first
# baseline needs) with its 5 s clock. Each injection must be found within its
# bound; any other incident is a false one. Then the detector's cost per
# evaluation at 1,000 services x 20 endpoints (benches/detect.rs).
set -euo pipefail
DAYS=${1:-7}
RATE=${2:-8}
VDAYS=${3:-3}
SEEDS=${SEEDS:-"11 12"}
DB=pulsyon_bench_detection
. "$(dirname "$0")/bench-lib.sh"
(cd "$root" && cargo bench --quiet --bench detect --no-run 2>/dev/null)

start_server --detector false
say "seeding classic: $DAYS days at $RATE events/s"
"$BIN/pulsyon-seed" --url "http://$GRPC" --api-key "$KEY" --days "$DAYS" --rate "$RATE" \
  >"$work/injected-bench.jsonl" 2>"$work/seed-bench.log"
HISTORIES="bench"
for seed in $SEEDS; do
  tenant="varied$seed"
  key=$("$BIN/pulsyon" tenant create "$tenant" --database-url "$DB_URL" 2>/dev/null)
  say "seeding varied (seed $seed): $VDAYS days"
  "$BIN/pulsyon-seed" --url "http://$GRPC" --api-key "$key" --shape varied --seed "$seed" \
    --days "$VDAYS" --rate 13.9 >"$work/injected-$tenant.jsonl" 2>"$work/seed-$tenant.log"
  HISTORIES="$HISTORIES $tenant"
done
for _ in $(seq 1 1200); do
  [ "$(psql "$DB_URL" -Atc 'SELECT count(*) FROM rollup_deltas')" = 0 ] && break
  sleep 0.5
done
stop_server

# range TENANT EXPR: EXPR over the tenant's event times, in RFC 3339.
range() {
  psql "$DB_URL" -Atc "SELECT to_char(($2) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
    FROM api_logs l JOIN tenants t USING (tenant_id) WHERE t.name = '$1'"
}
ARGS=()
for tenant in $HISTORIES; do
  FROM=$(range "$tenant" "min(time) + interval '2 hours 10 minutes'")
  # The history ends where the seed stopped: past it every service goes silent.
  TO=$(range "$tenant" "date_trunc('minute', max(time))")
  say "replaying the detector over $tenant from $FROM to $TO"
  t0=$(date +%s)
  "$BIN/pulsyon" detect backtest --database-url "$DB_URL" --tenant "$tenant" --from "$FROM" --to "$TO" \
    --json >"$work/found-$tenant.jsonl" 2>"$work/backtest-$tenant.log"
  t1=$(date +%s)
  ARGS+=("$tenant" "$FROM" "$TO" "$((t1 - t0))" "$(tail -n 1 "$work/seed-$tenant.log")" "$(tail -n 1 "$work/backtest-$tenant.log")")
done
say "the detector's cost per evaluation (benches/detect.rs)"
COST=$(cd "$root" && cargo bench --quiet --bench detect 2>/dev/null | tail -n 1)

out="$root/docs/perf/detection.md"
python3 "$root/scripts/detection-report.py" "$work" "$DAYS" "$RATE" "$VDAYS" "$COST" "${ARGS[@]}" >"$out"
say "wrote $out"
cat "$out"
