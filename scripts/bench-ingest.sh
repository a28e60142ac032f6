#!/usr/bin/env bash
# Ingest benchmark: regenerates docs/perf/ingest.md.
#
#   scripts/bench-ingest.sh [events]      (default 1000000)
#   BASELINE=<git rev> scripts/bench-ingest.sh [events]
#
# With BASELINE, that revision's server is built too (a git worktree, the same
# target directory) and runs on its own scratch database, alternating with this
# one, so that a change's cost is a ratio from one run.
#
# On one scratch database of the local PostgreSQL:
#  (b) pulsyon-loadgen -> pulsyon serve (release) -> PostgreSQL, end to end and acknowledged,
#      with the batch ledger (deduplication) on, then off;
#  (a) the limit: psql \copy (FORMAT binary) of the very rows (b) stored, into the same table
#      with the same indexes, after a TRUNCATE;
#  ack latency at half the measured maximum rate; the server's CPU time per event; the
#  server's peak RSS while three load generators each offer the measured maximum (3x).
set -euo pipefail
EVENTS=${1:-1000000}
DB=pulsyon_bench
. "$(dirname "$0")/bench-lib.sh"
CLK_TCK=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$server_pid/status"; }
loadgen() { PULSYON_API_KEY=$KEY "$BIN/pulsyon-loadgen" --url "http://$GRPC" --json "$@" 2>/dev/null | tail -n 1; }
reset_events() { psql "$DB_URL" -qc "TRUNCATE api_logs, ingest_batches, ingest_outcomes, services" >/dev/null; }

STREAMS=4
BATCH=1000

BASELINE=${BASELINE:-}
if [ -n "$BASELINE" ]; then
  build_baseline "$BASELINE"
fi
# One load generator run against the baseline server (its own database and key).
baseline_run() {
  local saved_key=$KEY
  SERVER_BIN="$work/pulsyon-baseline" SERVER_DB_URL="$BASE_DB_URL?sslmode=disable" start_server
  KEY=$BASE_KEY
  loadgen --events "$EVENTS" --streams $STREAMS --batch-size $BATCH
  KEY=$saved_key
  stop_server
  psql "$BASE_DB_URL" -qc "TRUNCATE api_logs, ingest_batches, ingest_outcomes, services" >/dev/null
}

say "(b) end to end, deduplication on: $EVENTS events, $STREAMS streams, batches of $BATCH"
start_server
t0=$(cpu_ticks)
PROFILE="(perf not installed: apt-get install linux-perf)"
if command -v perf >/dev/null; then
  # Where the server's time goes, sampled for 5 s in the middle of the run.
  (sleep 2; perf record -q -F 499 -g -p "$server_pid" -o "$work/perf.data" -- sleep 5 >/dev/null 2>&1) &
  perf_pid=$!
fi
B_ON=$(loadgen --events "$EVENTS" --streams $STREAMS --batch-size $BATCH)
t1=$(cpu_ticks)
if [ -n "${perf_pid:-}" ]; then
  wait "$perf_pid" || true
  PROFILE=$(perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9]+\.[0-9]+%' | sed -E 's/ +$//; s/ {2,}/  /g' | awk 'NR <= 20') || true
fi
CPU_US_PER_EVENT=$(python3 -c "print(round(($t1 - $t0) / $CLK_TCK / $(json "$B_ON" acked) * 1e6, 2))")
STORED=$(psql "$DB_URL" -Atc "SELECT count(*) FROM api_logs")
[ "$STORED" = "$(json "$B_ON" acked)" ] || { say "stored $STORED != acked $(json "$B_ON" acked)"; exit 1; }

say "(a) the limit: psql \\copy (FORMAT binary) of the same rows into the same table"
psql "$DB_URL" -qc "\\copy (SELECT * FROM api_logs) TO '$work/rows.bin' (FORMAT binary)"
stop_server
reset_events
a_start=$(date +%s.%N)
psql "$DB_URL" -qc "\\copy api_logs FROM '$work/rows.bin' (FORMAT binary)"
a_end=$(date +%s.%N)
A_EPS=$(python3 -c "print(round($STORED / ($a_end - $a_start), 1))")
# The server writes with two connections; two parallel \copy of the two halves show that bound too.
psql "$DB_URL" -qc "\\copy (SELECT * FROM api_logs WHERE hashtext(event_id::text) & 1 = 0) TO '$work/half0.bin' (FORMAT binary)"
psql "$DB_URL" -qc "\\copy (SELECT * FROM api_logs WHERE hashtext(event_id::text) & 1 = 1) TO '$work/half1.bin' (FORMAT binary)"
reset_events
a2_start=$(date +%s.%N)
psql "$DB_URL" -qc "\\copy api_logs FROM '$work/half0.bin' (FORMAT binary)" &
h0=$!
psql "$DB_URL" -qc "\\copy api_logs FROM '$work/half1.bin' (FORMAT binary)"
wait "$h0"
a2_end=$(date +%s.%N)
A2_EPS=$(python3 -c "print(round($STORED / ($a2_end - $a2_start), 1))")
reset_events

# The ledger's cost is small against run-to-run variation, so on and off alternate, twice each more.
say "(b) deduplication off, on, off (alternating, to see the ledger's cost through the noise)"
start_server --batch-dedup false
B_OFF=$(loadgen --events "$EVENTS" --streams $STREAMS --batch-size $BATCH)
stop_server
reset_events
start_server
B_ON2=$(loadgen --events "$EVENTS" --streams $STREAMS --batch-size $BATCH)
stop_server
reset_events
start_server --batch-dedup false
B_OFF2=$(loadgen --events "$EVENTS" --streams $STREAMS --batch-size $BATCH)
stop_server
reset_events
ON_MEAN=$(python3 -c "print(round(($(json "$B_ON" events_per_sec) + $(json "$B_ON2" events_per_sec)) / 2, 1))")

BASELINE_ROWS=""
if [ -n "$BASELINE" ]; then
  say "this build against the baseline $BASELINE, alternating: baseline, this, baseline, this"
  B_BASE1=$(baseline_run)
  start_server; B_CUR1=$(loadgen --events "$EVENTS" --streams $STREAMS --batch-size $BATCH); stop_server; reset_events
  B_BASE2=$(baseline_run)
  start_server; B_CUR2=$(loadgen --events "$EVENTS" --streams $STREAMS --batch-size $BATCH); stop_server; reset_events
  BASE_MEAN=$(python3 -c "print(round(($(json "$B_BASE1" events_per_sec) + $(json "$B_BASE2" events_per_sec)) / 2, 1))")
  CUR_MEAN=$(python3 -c "print(round(($(json "$B_CUR1" events_per_sec) + $(json "$B_CUR2" events_per_sec)) / 2, 1))")
  CHANGE_COST=$(python3 -c "print(round(100 * (1 - $CUR_MEAN / $BASE_MEAN), 1))")
  BASELINE_ROWS="| baseline \`$(git -C "$root" rev-parse --short "$BASELINE")\` ($BASELINE), two runs alternating with this build | $(json "$B_BASE1" events_per_sec) and $(json "$B_BASE2" events_per_sec) events/s (mean $BASE_MEAN) |
| this build, the two runs between them | $(json "$B_CUR1" events_per_sec) and $(json "$B_CUR2" events_per_sec) events/s (mean $CUR_MEAN) |
| cost of the change since the baseline: 1 - mean this / mean baseline | **$CHANGE_COST %** of throughput |"
  BASELINE_RAW="- baseline, first run: \`$B_BASE1\`
- this build, after it: \`$B_CUR1\`
- baseline, second run: \`$B_BASE2\`
- this build, after it: \`$B_CUR2\`"
fi
OFF_MEAN=$(python3 -c "print(round(($(json "$B_OFF" events_per_sec) + $(json "$B_OFF2" events_per_sec)) / 2, 1))")

MAX=$(json "$B_ON" events_per_sec)
HALF=$(python3 -c "print(int($MAX / 2))")
say "ack latency at half the maximum rate ($HALF events/s for 20 s)"
start_server
HALF_RUN=$(loadgen --duration 20 --rate "$HALF" --streams $STREAMS --batch-size 200 --linger-ms 5)
reset_events

say "peak RSS while 3 load generators offer $MAX events/s each (3x) for 20 s"
before_rss=$(peak_rss_kib)
pids=()
for i in 1 2 3; do
  loadgen --duration 20 --rate "$MAX" --streams 4 --batch-size $BATCH --seed "$i" > "$work/over$i.json" &
  pids+=($!)
done
wait "${pids[@]}"
PEAK_RSS_MIB=$(python3 -c "print(round($(peak_rss_kib) / 1024, 1))")
OVER_ACKED=0
OVER_RECONNECTS=0
for i in 1 2 3; do
  line=$(tail -n 1 "$work/over$i.json")
  OVER_ACKED=$((OVER_ACKED + $(json "$line" acked)))
  OVER_RECONNECTS=$((OVER_RECONNECTS + $(json "$line" reconnects)))
done
OVER_STORED=$(psql "$DB_URL" -Atc "SELECT count(*) FROM api_logs")
stop_server

RATIO_ON=$(python3 -c "print(round($(json "$B_ON" events_per_sec) / $A_EPS, 2))")
RATIO_A2=$(python3 -c "print(round($(json "$B_ON" events_per_sec) / $A2_EPS, 2))")
RATIO_OFF=$(python3 -c "print(round($OFF_MEAN / $A_EPS, 2))")
DEDUP_COST=$(python3 -c "print(round(100 * (1 - $ON_MEAN / $OFF_MEAN), 1))")

cat > "$root/docs/perf/ingest.md" <<MD
# Ingest throughput and latency

Regenerate with \`${BASELINE:+BASELINE=$BASELINE }scripts/bench-ingest.sh $EVENTS\` (release build, local PostgreSQL
$(psql "$URL" -Atc "SHOW server_version"), $(nproc) cores; the load generator, the server and PostgreSQL share
the machine). Generated $(date -u +%Y-%m-%d).

| measurement | figure |
|---|---|
| (a) limit: \`psql \\copy ... (FORMAT binary)\` of the same $STORED rows, same table and indexes | **$A_EPS events/s** |
| (a2) two parallel \`\\copy\` of the two halves (the server also writes on two connections) | $A2_EPS events/s |
| (b) loadgen -> server -> PostgreSQL, acknowledged, deduplication on ($STREAMS streams, batches of $BATCH) | **$(json "$B_ON" events_per_sec) events/s** (ack p50 $(json "$B_ON" ack_p50_ms) ms, p99 $(json "$B_ON" ack_p99_ms) ms) |
| (b)/(a), deduplication on (target >= 0.70) | **$RATIO_ON** |
| (b)/(a2), deduplication on | $RATIO_A2 |
| (b) deduplication on, two runs | $(json "$B_ON" events_per_sec) and $(json "$B_ON2" events_per_sec) events/s (mean $ON_MEAN) |
| (b) deduplication off, two runs | $(json "$B_OFF" events_per_sec) and $(json "$B_OFF2" events_per_sec) events/s (mean $OFF_MEAN; (b)/(a) = $RATIO_OFF) |
| cost of the batch ledger (deduplication): 1 - mean on / mean off | $DEDUP_COST % of throughput (compare with the spread between runs of one setting) |
$BASELINE_ROWS
| ack latency at half the maximum ($HALF events/s offered, 20 s, batches of 200, SDK linger 5 ms) | p50 $(json "$HALF_RUN" ack_p50_ms) ms, p95 $(json "$HALF_RUN" ack_p95_ms) ms, **p99 $(json "$HALF_RUN" ack_p99_ms) ms** (target <= 50 ms); $(json "$HALF_RUN" events_per_sec) events/s acknowledged |
| server CPU time per event during (b) (user + system, from /proc) | **$CPU_US_PER_EVENT us** (target <= 1.5 us) |
| server peak RSS with 3 generators offering 3x the maximum for 20 s | **$PEAK_RSS_MIB MiB** (VmHWM); $OVER_ACKED events acknowledged, $OVER_STORED stored, $OVER_RECONNECTS reconnects after RESOURCE_EXHAUSTED |

Notes:
- The schema has four secondary indexes on \`api_logs\`, two of them on random
  text (trace and request ids), and PostgreSQL runs with its packaged defaults
  (128 MB shared buffers), which is why (a) is well below the orientation figure
  for a narrower table. (b) is measured against (a) on the very same rows.
- The server reaches PostgreSQL without TLS (\`sslmode=disable\` on loopback);
  with TLS, encryption adds to the server's CPU per event.
- Ack latency at full speed is queueing: 4 streams x 8 batches of 1,000 in flight
  wait their turn in the writer. At half the rate it is the batching delay
  (SDK linger, writer batch age 10 ms) plus one commit, and the CPU the three
  processes share.

## Below target, and what would close the gap
- **Server CPU per event** (target 1.5 us). The profile below: decoding
  (prost varints, one allocation and copy per string field: memmove,
  BytesMut, \`replace_with\`, \`finish_grow\`), validation, and the COPY encoding
  (JSON escaping of attributes). The system allocator used to be the largest
  cost (cross-thread frees, visible at the top of this profile when the binary
  is built without it); mimalloc removed most of it. Closing the rest: decode string fields as slices of the
  request buffer (a tonic codec keeping \`Bytes\`) instead of owned \`String\`s,
  encode COPY rows straight from those slices, and size the COPY buffer from
  the events instead of a per-row estimate.
- **Ack p99 at half the maximum rate** (target 50 ms). The median is the
  batching delay (a 200-event SDK batch fills in about 20 ms per stream at this
  rate, plus the writer's 10 ms batch age); the tail comes from sharing two
  cores between the load generator, the server and PostgreSQL, and from WAL
  flushes at commit. Handing a batch to an idle writer worker at once (no
  batch age) was tried and made it worse: smaller transactions, more commits.
  Closing it: the load generator on another machine, smaller SDK batches with
  more of them in flight, and PostgreSQL group commit tuning (\`commit_delay\`).

Where the server's CPU goes during (b) (\`perf record -g\` for 5 s, self time, top 20):

\`\`\`
$PROFILE
\`\`\`

Raw loadgen figures (last line of \`pulsyon-loadgen --json\`):

- (b) dedup on: \`$B_ON\`
- (b) dedup on, second run: \`$B_ON2\`
- (b) dedup off: \`$B_OFF\`
- (b) dedup off, second run: \`$B_OFF2\`
- half rate: \`$HALF_RUN\`
${BASELINE_RAW:-}
MD
say "wrote docs/perf/ingest.md"
cat "$root/docs/perf/ingest.md"
