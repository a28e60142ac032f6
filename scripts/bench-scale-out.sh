#!/usr/bin/env bash
# Scale-out benchmark: regenerates docs/perf/scale-out.md.
#
#   scripts/bench-scale-out.sh [events]        (default 400000 per run)
#
# In one run, on one scratch database of the local PostgreSQL and a Redis of
# its own (append-only, appendfsync always), release servers fed by
# pulsyon-loadgen (4 streams, batches of 1000):
#   1. one `--roles all` process (the local queue);
#   2. one `--roles ingest` + one `--roles writer` over Redis, acks BUFFERED;
#   3. the same with `--ack-after commit`;
#   4. two ingest + two writer processes (the SDK balanced over both ingest).
# For each: acknowledged events/s, ack p50/p99, the time until every acked event
# is stored, server CPU per event for each role; then the Redis memory per
# buffered event (ingest alone, no writer draining). The model on paper is
# computed from these figures.
set -euo pipefail
EVENTS=${1:-400000}
DB=pulsyon_bench_scale
. "$(dirname "$0")/bench-lib.sh"
CLK_TCK=$(getconf CLK_TCK)
STREAMS=4
BATCH=1000

# A Redis of the benchmark's own.
REDIS_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --appendonly yes --appendfsync always --save "" \
  --dir "$work/redis" --daemonize yes --pidfile "$work/redis/pid" --logfile "$work/redis/log"
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
REDIS=redis://127.0.0.1:$REDIS_PORT
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup_scale() { stop_all; kill "$(cat "$work/redis/pid")" 2>/dev/null || true; }
trap 'cleanup_scale; cleanup' EXIT

# start NAME ROLES [ARGS...]: a release server; its pid in PID_<NAME>, gRPC in GRPC_<NAME>.
start() {
  local name=$1 roles=$2; shift 2
  rm -f "$work/addr-$name"
  "$BIN/pulsyon" serve --database-url "$SERVER_DB_URL" --grpc-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
    --roles "$roles" --addr-file "$work/addr-$name" "$@" 2>"$work/$name.log" &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 200); do [ -s "$work/addr-$name" ] && grep -q http= "$work/addr-$name" && break; sleep 0.05; done
  printf -v "PID_$name" '%s' "$pid"
  printf -v "GRPC_$name" '%s' "$(sed -n 's/^grpc=//p' "$work/addr-$name")"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
stored() { psql "$DB_URL" -Atc "SELECT count(*) FROM api_logs"; }
reset() {
  psql "$DB_URL" -qc "TRUNCATE api_logs, ingest_batches, ingest_outcomes, services, buffer_poison, buffer_shards" >/dev/null
  redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
}
loadgen() { PULSYON_API_KEY=$KEY "$BIN/pulsyon-loadgen" --url "$1" --json --events "$EVENTS" --streams "${2:-$STREAMS}" --batch-size $BATCH 2>/dev/null | tail -n 1; }
# wait_stored N: seconds from now until N events are stored.
wait_stored() {
  local t0; t0=$(date +%s.%N)
  for _ in $(seq 1 2400); do [ "$(stored)" -ge "$1" ] && break; sleep 0.25; done
  python3 -c "print(round($(date +%s.%N) - $t0, 2))"
}
cpu_us() { python3 -c "print(round(($2 - $1) / $CLK_TCK / $3 * 1e6, 2))"; }

ROWS=()
row() { ROWS+=("$1"); }

say "1. one process, --roles all"
reset
start all all
c0=$(ticks "$PID_all"); t0=$(date +%s.%N)
R=$(loadgen "http://$GRPC_all")
drain=$(wait_stored "$(json "$R" acked)"); t1=$(date +%s.%N)
c1=$(ticks "$PID_all")
STORED_EPS_ALL=$(python3 -c "print(round($(json "$R" acked) / ($t1 - $t0), 1))")
row "| all (local queue) | COMMITTED | $(json "$R" events_per_sec) | $STORED_EPS_ALL | $(json "$R" ack_p50_ms) | $(json "$R" ack_p99_ms) | $drain | all: $(cpu_us "$c0" "$c1" "$(json "$R" acked)") |"
EPS_ALL=$(json "$R" events_per_sec)
stop_all

for level in buffered commit; do
  say "2. one ingest + one writer over Redis, acks after $level"
  reset
  start w1 writer --redis-url "$REDIS" --ack-after "$level"
  start i1 ingest --redis-url "$REDIS" --ack-after "$level"
  ci0=$(ticks "$PID_i1"); cw0=$(ticks "$PID_w1"); t0=$(date +%s.%N)
  R=$(loadgen "http://$GRPC_i1")
  drain=$(wait_stored "$(json "$R" acked)"); t1=$(date +%s.%N)
  ci1=$(ticks "$PID_i1"); cw1=$(ticks "$PID_w1")
  n=$(json "$R" acked)
  eps_stored=$(python3 -c "print(round($n / ($t1 - $t0), 1))")
  row "| 1 ingest + 1 writer | $(echo "$level" | tr a-z A-Z | sed 's/COMMIT/COMMITTED/') | $(json "$R" events_per_sec) | $eps_stored | $(json "$R" ack_p50_ms) | $(json "$R" ack_p99_ms) | $drain | ingest: $(cpu_us "$ci0" "$ci1" "$n"), writer: $(cpu_us "$cw0" "$cw1" "$n") |"
  if [ "$level" = buffered ]; then
    EPS_11=$(json "$R" events_per_sec); STORED_11=$eps_stored
    CPU_INGEST=$(cpu_us "$ci0" "$ci1" "$n"); CPU_WRITER=$(cpu_us "$cw0" "$cw1" "$n")
  fi
  stop_all
done

say "3. two ingest + two writers over Redis"
reset
start w1 writer --redis-url "$REDIS"
start w2 writer --redis-url "$REDIS"
start i1 ingest --redis-url "$REDIS"
start i2 ingest --redis-url "$REDIS"
c0=0; for p in "$PID_i1" "$PID_i2" "$PID_w1" "$PID_w2"; do c0=$((c0 + $(ticks "$p"))); done
ci0=$(( $(ticks "$PID_i1") + $(ticks "$PID_i2") )); cw0=$(( $(ticks "$PID_w1") + $(ticks "$PID_w2") ))
t0=$(date +%s.%N)
R=$(loadgen "http://$GRPC_i1,http://$GRPC_i2" 8)
drain=$(wait_stored "$(json "$R" acked)"); t1=$(date +%s.%N)
ci1=$(( $(ticks "$PID_i1") + $(ticks "$PID_i2") )); cw1=$(( $(ticks "$PID_w1") + $(ticks "$PID_w2") ))
n=$(json "$R" acked)
row "| 2 ingest + 2 writers | BUFFERED | $(json "$R" events_per_sec) | $(python3 -c "print(round($n / ($t1 - $t0), 1))") | $(json "$R" ack_p50_ms) | $(json "$R" ack_p99_ms) | $drain | ingest: $(cpu_us "$ci0" "$ci1" "$n"), writers: $(cpu_us "$cw0" "$cw1" "$n") |"
EPS_22=$(json "$R" events_per_sec)
stop_all

say "4. Redis memory per buffered event (ingest alone)"
reset
start i1 ingest --redis-url "$REDIS"
m0=$(redis-cli -p "$REDIS_PORT" INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
R=$(loadgen "http://$GRPC_i1")
m1=$(redis-cli -p "$REDIS_PORT" INFO memory | sed -n 's/^used_memory:\([0-9]*\).*/\1/p')
BUFFERED=$(json "$R" acked)
BYTES_PER_EVENT=$(python3 -c "print(round(($m1 - $m0) / $BUFFERED, 1))")
stop_all

MODEL=$(python3 - "$EPS_11" "$STORED_11" "$CPU_INGEST" "$CPU_WRITER" "$BYTES_PER_EVENT" <<'EOF'
import math, sys
eps_ack, eps_stored, cpu_ingest_us, cpu_writer_us, bytes_per_event = map(float, sys.argv[1:])
per_ingest_core = 1e6 / cpu_ingest_us
per_writer_core = 1e6 / cpu_writer_us
target = 1_000_000
ingest_cores = math.ceil(target / per_ingest_core)
writer_cores = math.ceil(target / per_writer_core)
outage = 300 * target
redis_gib = outage * bytes_per_event / 2**30
print(f"- Ingest: {cpu_ingest_us:.2f} us of CPU per event, so about {per_ingest_core:,.0f} events/s per ingest core.")
print(f"- Writer: {cpu_writer_us:.2f} us of CPU per event in the writer process, so about {per_writer_core:,.0f} events/s per writer core;")
print(f"  one writer process with one PostgreSQL stored {eps_stored:,.0f} events/s end to end here, the measured bound of one writer connection pool on this machine.")
print(f"- 1M events/s: about {ingest_cores} ingest cores (e.g. {math.ceil(ingest_cores/4)} ingest processes of 4 cores) and {writer_cores} writer cores by CPU;")
print(f"  the writers' rate is bounded by PostgreSQL's COPY long before their CPU: at the {eps_stored:,.0f} events/s one writer stored here,")
print(f"  {math.ceil(target / eps_stored)} writer processes, which one PostgreSQL cannot absorb (ADR 0016: Citus by tenant).")
shards = max(8, 2 * math.ceil(target / eps_stored))
print(f"- Shards: at least one per writer process and a few more to rebalance, so {shards}; on a Redis Cluster they spread over the masters.")
print(f"- A 5-minute PostgreSQL outage at 1M events/s buffers {outage:,} events: {redis_gib:,.0f} GiB of Redis at {bytes_per_event:.0f} bytes per buffered event")
print(f"  (past one Redis: a cluster of masters sized to it, or the Kafka-API broker of ADR 0016).")
EOF
)

out="$root/docs/perf/scale-out.md"
{
  echo "# Scale-out speed"
  echo
  echo "Generated by \`scripts/bench-scale-out.sh $EVENTS\` on $(date -u +%Y-%m-%d): release servers, PostgreSQL"
  echo "$(psql "$URL" -Atc 'SHOW server_version'), Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') (append-only, appendfsync always) and"
  echo "pulsyon-loadgen ($STREAMS streams, batches of $BATCH; 8 streams over both ingest processes in the last row), all on"
  echo "one machine ($(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)). Every process shares the same two cores, so"
  echo "the rows compare the configurations in one run; they are not what separate machines would do."
  echo "Do not edit by hand: run the script."
  echo
  echo "## Runs of $EVENTS events"
  echo
  echo "Acked events/s is the load generator's (acknowledged batches); stored events/s counts from the"
  echo "first event to the last one in \`api_logs\`; drain is the time from the last ack until every acked"
  echo "event was stored; CPU is each role's user and system time per event over the run."
  echo
  echo "| configuration | ack | acked events/s | stored events/s | ack p50 ms | ack p99 ms | drain s | server CPU us/event |"
  echo "|---|---|---|---|---|---|---|---|"
  for r in "${ROWS[@]}"; do echo "$r"; done
  echo
  echo "Ratios in this run: 1 ingest + 1 writer / all = $(python3 -c "print(round($EPS_11 / $EPS_ALL, 2))") (acked events/s);"
  echo "2 + 2 / 1 + 1 = $(python3 -c "print(round($EPS_22 / $EPS_11, 2))")."
  echo
  echo "## Redis memory"
  echo
  echo "$BUFFERED events appended by one ingest process with no writer draining: **$BYTES_PER_EVENT bytes of Redis"
  echo "memory per buffered event** (\`used_memory\` before and after; the record is the protobuf batch)."
  echo
  echo "## The model, on paper, from these figures"
  echo
  echo "$MODEL"
} >"$out"
say "wrote $out"
