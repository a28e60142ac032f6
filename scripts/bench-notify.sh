#!/usr/bin/env bash
# Notification benchmark: regenerates docs/perf/notifications.md.
#
#   scripts/bench-notify.sh [updates] [rate]     (default 1000 updates, 100 a second)
#
# On a scratch database of the local PostgreSQL: a release server with the
# notify role (no detector), the real receivers of the tests
# (tests/python/receivers.py: a Standard Webhooks verifier, a Slack-shaped
# receiver parsing Block Kit, aiosmtpd), then benches/notify.rs: `updates`
# incident updates written as the detector writes them, each to three
# receivers (webhook, Slack-shaped, SMTP): once as fast as they can be written
# (the notify process's throughput), once at `rate` updates a second (the
# latency), and at that rate again for a tenant whose fourth receiver never
# answers.
set -euo pipefail
UPDATES=${1:-1000}
RATE=${2:-100}
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
KEY2=$("$BIN/pulsyon" tenant create bench-paced --database-url "$DB_URL" 2>/dev/null)
KEY3=$("$BIN/pulsyon" tenant create bench-hang --database-url "$DB_URL" 2>/dev/null)
KEY4=$("$BIN/pulsyon" tenant create bench-fourth --database-url "$DB_URL" 2>/dev/null)
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
say "$UPDATES updates x 3 receivers at $RATE updates/s"
PLAIN=$(run --api-key "$KEY2" --tenant bench-paced --rate "$RATE")
echo "$PLAIN"
say "$UPDATES updates x 3 receivers and a fourth that answers, at $RATE updates/s"
FOURTH=$(run --api-key "$KEY4" --tenant bench-fourth --fourth --rate "$RATE")
echo "$FOURTH"
say "$UPDATES updates x 3 receivers and one that never answers, at $RATE updates/s"
HANG=$(run --api-key "$KEY3" --tenant bench-hang --hang --rate "$RATE")
echo "$HANG"
CPU=$(nproc)
ratio() {
  python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(f'{b[\"p99_ms\"]/a[\"p99_ms\"]:.2f}')" "$1" "$2"
}
RATIO=$(ratio "$PLAIN" "$HANG")
CONTROL=$(ratio "$FOURTH" "$HANG")
FOURTH_COST=$(ratio "$PLAIN" "$FOURTH")
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

\`scripts/bench-notify.sh $UPDATES $RATE\` on this machine ($CPU cores shared by the server,
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

p99 of the three with the hanging receiver against the three alone: **${RATIO}x** (target
within 1.2x); against the three beside a fourth that answers: **${CONTROL}x**. A fourth
receiver that answers costs the three ${FOURTH_COST}x by itself (a fourth of the planning
and claiming work more on these two cores). A receiver holds only its own slots
(\`--notify-per-receiver\`); one whose slots are all held costs the claim nothing.

Raw results:
\`\`\`
$BURST
$PLAIN
$FOURTH
$HANG
\`\`\`
MD
say "wrote docs/perf/notifications.md"
