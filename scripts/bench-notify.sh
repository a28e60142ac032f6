#!/usr/bin/env bash
# Notification benchmark: regenerates docs/perf/notifications.md.
#
#   scripts/bench-notify.sh [updates]     (default 1000)
#
# On a scratch database of the local PostgreSQL: a release server with the
# notify role (no detector), the real receivers of the tests
# (tests/python/receivers.py: a Standard Webhooks verifier, a Slack-shaped
# receiver parsing Block Kit, aiosmtpd), then benches/notify.rs: `updates`
# incident updates written as the detector writes them, each to three
# receivers (webhook, Slack-shaped, SMTP); the same again for a second tenant
# whose fourth receiver never answers.
set -euo pipefail
UPDATES=${1:-1000}
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
KEY2=$("$BIN/pulsyon" tenant create bench-hang --database-url "$DB_URL" 2>/dev/null)
start_server --detector false --notify-allow-private-targets
sleep 1

run() {
  (cd "$root" && cargo bench --quiet --bench notify -- --url "http://$GRPC" --database-url "$DB_URL" \
    --record "$work/received.jsonl" --http-port "$HTTP_PORT" --smtp-port "$SMTP_PORT" --secret "$SECRET" \
    --updates "$UPDATES" "$@")
}
say "$UPDATES updates x 3 receivers"
PLAIN=$(run --api-key "$KEY" --tenant bench)
echo "$PLAIN"
say "$UPDATES updates x 3 receivers and one that never answers"
HANG=$(run --api-key "$KEY2" --tenant bench-hang --hang)
echo "$HANG"
CPU=$(nproc)
RATIO=$(python3 -c "import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print(f'{b[\"p99_ms\"]/a[\"p99_ms\"]:.2f}')" "$PLAIN" "$HANG")
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

\`scripts/bench-notify.sh $UPDATES\` on this machine ($CPU cores; one release server with every
role but the detector, PostgreSQL and the receivers on loopback), $(date -u +%Y-%m-%d).

$UPDATES incident updates written one after another as the detector writes them (each in its
transaction, with its outbox row), each sent by the one \`notify\` process to three receivers
of the tenant: a webhook verifying the Standard Webhooks signature with the \`standardwebhooks\`
package, a Slack-shaped receiver parsing every body with \`slack_sdk\`'s Block Kit models, and
an aiosmtpd SMTP server (tests/python/receivers.py). Latency: from the update's commit (when
its transaction returned) to the receiver's arrival time stamp. Writing the updates took
$(json "$PLAIN" write_secs | cut -c1-5) s.

| receiver | received | p50 (ms) | p99 (ms) |
|---|---|---|---|
$(table "$PLAIN")

Deliveries per second of the one notify process (received over the span from the first
arrival to the last): **$(json "$PLAIN" deliveries_per_sec | cut -d. -f1)** (target >= 500).

## With one receiver that never answers

The same for a second tenant with a fourth receiver that accepts the connection and never
answers (each attempt ends at \`--notify-timeout\`, 10 s; retried with backoff):

| receiver | received | p50 (ms) | p99 (ms) |
|---|---|---|---|
$(table "$HANG")

p99 of the others with the hanging receiver against without: **${RATIO}x** (target within
1.2x): a receiver holds only its own slots (\`--notify-per-receiver\`, 4).

Raw results:
\`\`\`
$PLAIN
$HANG
\`\`\`
MD
say "wrote docs/perf/notifications.md"
