#!/usr/bin/env bash
# Notification benchmark: regenerates docs/perf/notifications.md.
#
#   scripts/bench-notify.sh [updates] [rate] [rounds]
#       (default 1000 updates, 100 a second, 3 rounds)
#
# On a scratch database of the local PostgreSQL: a release server with the
# notify role (no detector), the real receivers of the tests
# (tests/python/receivers.py: a Standard Webhooks verifier, a Slack-shaped
# receiver parsing Block Kit, aiosmtpd), then benches/notify.rs: `updates`
# incident updates written as the detector writes them, each to three
# receivers (webhook, Slack-shaped, SMTP): once as fast as they can be written
# (the notify process's throughput), once at `rate` updates a second (the
# latency), and at that rate again for a tenant whose fourth receiver never
# answers. The paced phases (three alone, beside a fourth that answers, beside
# one that never answers) run `rounds` times, alternating, each on tenants of
# its own, the fourth receiver deleted when its phase ends (so a later phase
# never runs beside an earlier one's hanging receiver): the ratios compare
# medians of the rounds, so that one noisy second on this shared machine
# does not decide a figure.
set -euo pipefail
UPDATES=${1:-1000}
RATE=${2:-100}
ROUNDS=${3:-3}
DB=pulsyon_bench_notify
. "$(dirname "$0")/bench-lib.sh"
ensure_peers_venv "$root"
(cd "$root" && cargo bench --quiet --bench notify --no-run 2>/dev/null)
SECRET=whsec_$(head -c 32 /dev/urandom | base64)
"$root/tools/venv-peers/bin/python" "$root/tests/python/receivers.py" "$work/received.jsonl" "$SECRET" \
  >"$work/peers" 2>"$work/peers.log" &
peers_pid=$!
trap 'kill $peers_pid 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 100); do [ -s "$work/peers" ] && break; sleep 0.1; done
HTTP_PORT=$(json "$(head -n 1 "$work/peers")" http)
SMTP_PORT=$(json "$(head -n 1 "$work/peers")" smtp)
declare -A KEYS
for r in $(seq 1 "$ROUNDS"); do
  for phase in paced fourth hang; do
    KEYS[$phase$r]=$("$BIN/pulsyon" tenant create "bench-$phase-$r" --database-url "$DB_URL" 2>/dev/null)
  done
done
start_server --detector false --notify-allow-private-targets
sleep 1

run() {
  (cd "$root" && cargo bench --quiet --bench notify -- --url "http://$GRPC" --database-url "$DB_URL" \
    --record "$work/received.jsonl" --http-port "$HTTP_PORT" --smtp-port "$SMTP_PORT" --secret "$SECRET" \
    --updates "$UPDATES" "$@")
}
say "$UPDATES updates x 3 receivers, written as fast as they can be"
BURST=$(run --api-key "$KEY" --tenant bench)
echo "$BURST"
PLAINS=() FOURTHS=() HANGS=()
for r in $(seq 1 "$ROUNDS"); do
  say "round $r of $ROUNDS: $UPDATES updates x 3 receivers at $RATE updates/s"
  PLAINS+=("$(run --api-key "${KEYS[paced$r]}" --tenant "bench-paced-$r" --rate "$RATE")")
  echo "${PLAINS[-1]}"
  say "round $r: the same and a fourth receiver that answers"
  FOURTHS+=("$(run --api-key "${KEYS[fourth$r]}" --tenant "bench-fourth-$r" --fourth --rate "$RATE")")
  echo "${FOURTHS[-1]}"
  say "round $r: the same and a fourth receiver that never answers"
  HANGS+=("$(run --api-key "${KEYS[hang$r]}" --tenant "bench-hang-$r" --hang --rate "$RATE")")
  echo "${HANGS[-1]}"
done
CPU=$(nproc)
# The round whose p99 is the median of its phase's rounds (its tables are shown).
median_of() {
  python3 -c "import json,sys; rs=[json.loads(a) for a in sys.argv[1:]]; rs.sort(key=lambda r: r['p99_ms']); print(json.dumps(rs[len(rs)//2]))" "$@"
}
PLAIN=$(median_of "${PLAINS[@]}")
FOURTH=$(median_of "${FOURTHS[@]}")
HANG=$(median_of "${HANGS[@]}")
ratio() {
  python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(f'{b[\"p99_ms\"]/a[\"p99_ms\"]:.2f}')" "$1" "$2"
}
RATIO=$(ratio "$PLAIN" "$HANG")
CONTROL=$(ratio "$FOURTH" "$HANG")
FOURTH_COST=$(ratio "$PLAIN" "$FOURTH")
p99s() {
  python3 -c "import json,sys; print(' / '.join(f'{json.loads(a)[\"p99_ms\"]:.1f}' for a in sys.argv[1:]))" "$@"
}
table() {
  python3 - "$1" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
for kind in ("webhook", "slack", "email"):
    k = r["kinds"].get(kind, {"received": 0, "p50_ms": 0, "p99_ms": 0})
    print(f"| {kind} | {k['received']} | {k['p50_ms']:.1f} | {k['p99_ms']:.1f} |")
print(f"| all | {r['received']} of {r['expected']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
PY
}
cat >"$root/docs/perf/notifications.md" <<MD
# Notifications

\`scripts/bench-notify.sh $UPDATES $RATE $ROUNDS\` on this machine ($CPU cores shared by the server,
PostgreSQL, the receivers and the writer of the updates; one release server with every role
but the detector, everything on loopback), $(date -u +%Y-%m-%d).

Incident updates are written as the detector writes them (each in its transaction, with its
outbox row); the one \`notify\` process sends each to three receivers of the tenant: a webhook
verifying the Standard Webhooks signature with the \`standardwebhooks\` package, a
Slack-shaped receiver checking every body with \`slack_sdk\`'s Block Kit models, and an
aiosmtpd SMTP server (tests/python/receivers.py). Latency: from the update's commit (when its
transaction returned) to the receiver's arrival time stamp. Default settings
(\`--notify-per-receiver 4\`).

## Throughput: $UPDATES updates written as fast as they can be

Written in $(json "$BURST" write_secs | cut -c1-4) s; deliveries per second of the one notify
process (received over the span from the first arrival to the last):
**$(json "$BURST" deliveries_per_sec | cut -d. -f1)** (target >= 500).

| receiver | received | p50 (ms) | p99 (ms) |
|---|---|---|---|
$(table "$BURST")

(Latency here is queueing behind the burst: the updates arrive faster than the three
receivers take them on this machine.)

## Latency: $UPDATES updates at $RATE a second ($((RATE * 3)) deliveries a second)

$ROUNDS rounds, each phase on a tenant of its own, alternating: the three receivers alone,
beside a fourth that answers, beside a fourth that never answers (each fourth deleted when its
phase ends, its pending deliveries with it: one hanging receiver at a time). The tables show each phase's
median round (by p99); p99 of every round, in order:

| phase | p99 per round (ms) |
|---|---|
| three alone | $(p99s "${PLAINS[@]}") |
| and a fourth that answers | $(p99s "${FOURTHS[@]}") |
| and a fourth that never answers | $(p99s "${HANGS[@]}") |

The three alone, median round:

| receiver | received | p50 (ms) | p99 (ms) |
|---|---|---|---|
$(table "$PLAIN")

Target: p99 <= 1000 ms.

## With one receiver that never answers

The same rate for a tenant with a fourth receiver that answers (the control: as much work
planned and claimed, none of it held up):

| receiver | received | p50 (ms) | p99 (ms) |
|---|---|---|---|
$(table "$FOURTH")

and for a tenant whose fourth receiver accepts the connection and never answers (each
attempt ends at \`--notify-timeout\`, 10 s; retried with backoff):

| receiver | received | p50 (ms) | p99 (ms) |
|---|---|---|---|
$(table "$HANG")

Median p99 of the three with the hanging receiver against the three alone: **${RATIO}x** (target
within 1.2x); against the three beside a fourth that answers: **${CONTROL}x**. A fourth
receiver that answers costs the three ${FOURTH_COST}x by itself (a fourth of the planning
and claiming work more on these two cores). A receiver holds only its own slots
(\`--notify-per-receiver\`); one whose slots are all held costs the claim nothing.

Raw results:
\`\`\`
$BURST
$(printf '%s\n' "${PLAINS[@]}" "${FOURTHS[@]}" "${HANGS[@]}")
\`\`\`
MD
say "wrote docs/perf/notifications.md"
