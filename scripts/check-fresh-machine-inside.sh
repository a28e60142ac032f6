#!/bin/bash
# Runs inside the fresh machine of scripts/check-fresh-machine.sh (as root, in
# a chroot under a reaping init): clones the repository into /root, then does
# what the README says, printing each step's result and time, and a summary.
# Not meant to be run on a machine of its own.
set -uo pipefail
cd /root
results=()
failed=0
t_start=$(date +%s)

step() {
  local name="$1" t0 rc r
  shift
  t0=$(date +%s)
  printf '\n==> step: %s\n' "$name"
  "$@"
  rc=$?
  if [ "$rc" -eq 0 ]; then r=ok; else r="FAILED (exit $rc)"; failed=1; fi
  results+=("$(printf '%-58s %-17s %6d s' "$name" "$r" $(( $(date +%s) - t0 )))")
  printf '<== %s: %s (%d s)\n' "$name" "$r" $(( $(date +%s) - t0 ))
  return 0
}

facts() {
  . /etc/os-release
  echo "machine: $PRETTY_NAME, $(nproc) cores, kernel $(uname -r)"
  echo "rust: $(rustc --version)"
  echo "node before: $(command -v node >/dev/null && node --version || echo none); python3: $(command -v python3 >/dev/null && python3 --version || echo none)"
  echo "services on 5432/6379/4222: $( (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && echo listening || echo none)"
}

# The README's Quick start, first command: the server in the background, its
# output in /root/serve.log; passes once gRPC health answers SERVING.
serve_pid=
start_serving() {
  (cd /root/pulsyon && exec scripts/serve.sh) >/root/serve.log 2>&1 &
  serve_pid=$!
  local i
  for i in $(seq 1 3600); do
    if ! kill -0 "$serve_pid" 2>/dev/null; then tail -n 30 /root/serve.log; return 1; fi
    if [ -x /root/pulsyon/tools/bin/grpcurl ] \
      && /root/pulsyon/tools/bin/grpcurl -plaintext 127.0.0.1:50051 grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; then
      grep '^==>' /root/serve.log
      return 0
    fi
    sleep 1
  done
  tail -n 30 /root/serve.log
  return 1
}

stop_server() {
  kill -TERM "$serve_pid"
  local rc=0
  wait "$serve_pid" || rc=$?
  tail -n 3 /root/serve.log
  echo "serve.sh exited $rc"
  return "$rc"
}

# The README's examples, as marked: `<!-- check: MODE -->` before a fenced block.
extract_examples() {
  mkdir -p /root/examples
  awk '
    /^<!-- check: / { mode = $0; sub(/^<!-- check: /, "", mode); sub(/ -->$/, "", mode); n++; want = 1; next }
    want && /^```/ && !inside { inside = 1; file = sprintf("/root/examples/%02d", n); print mode > (file ".mode"); next }
    inside && /^```/ { inside = 0; want = 0; close(file ".mode"); close(file ".body"); next }
    inside { print > (file ".body") }
  ' /root/pulsyon/README.md
  ls /root/examples/*.mode | wc -l
}

# Every block runs in a fresh bash in the clone, with the PATH and KEY the
# README's grpcurl section sets up (its first block).
prelude='set -euo pipefail; cd /root/pulsyon; export PATH="$PWD/tools/bin:$PWD/target/release:$PATH"; KEY=$(cat .pulsyon/api-key)'

wait_for_incident() {
  local i
  for i in $(seq 1 120); do
    bash -c "$prelude"'; grpcurl -plaintext -H "authorization: Bearer $KEY" -d "{\"statuses\": [\"INCIDENT_STATUS_OPEN\"]}" 127.0.0.1:50051 pulsyon.v1.Incidents/ListIncidents' 2>/dev/null \
      | grep -q incidentId && return 0
    sleep 5
  done
  echo "no open incident after 10 minutes"
  return 1
}

run_example() {
  local n="$1" mode body first
  mode=$(cat "/root/examples/$n.mode")
  body="/root/examples/$n.body"
  first=$(grep -v '^#' "$body" | head -n 1 | cut -c1-60)
  case "$mode" in
    "file "*)
      cp "$body" "/root/pulsyon/${mode#file }"
      results+=("$(printf '%-58s %-17s %6d s' "README $n: writes ${mode#file }" ok 0)")
      ;;
    "skip: "*)
      results+=("$(printf '%-58s %-17s %6s' "README $n: $first" "not run" "-")")
      echo "README $n not run: ${mode#skip: }"
      ;;
    "run once an incident is open")
      step "README $n: (an open incident)" wait_for_incident
      step "README $n: $first" bash -c "$prelude; . $body"
      ;;
    "run, ends after "*)
      local secs=${mode#run, ends after }
      secs=${secs% s}
      step "README $n: $first (for $secs s)" bash -c "timeout $secs bash -c '$prelude; . $body'; rc=\$?; [ \$rc -eq 0 ] || [ \$rc -eq 124 ]"
      ;;
    run)
      step "README $n: $first" bash -c "$prelude; . $body"
      ;;
    *)
      echo "unknown check mode: $mode"
      failed=1
      ;;
  esac
}

run_examples() {
  local mode
  for mode in /root/examples/*.mode; do
    run_example "$(basename "$mode" .mode)"
  done
}

clean_tree() {
  local dirty
  dirty=$(git -C /root/pulsyon status --porcelain)
  [ -z "$dirty" ] && { echo "git status: clean"; return 0; }
  echo "$dirty"
  return 1
}

facts
step "git clone into /root/pulsyon" git clone -q /tmp/pulsyon.git /root/pulsyon
cd /root/pulsyon
step "scripts/serve.sh: serving (SERVING on 127.0.0.1:50051)" start_serving
step "README examples found" extract_examples
run_examples
step "SIGTERM to the server: exit 0" stop_server
# The Python example's app and venv are the user's files: leave the tree as a user would.
for p in /proc/[0-9]*; do
  grep -qa 'uvicorn' "$p/cmdline" 2>/dev/null && kill "${p#/proc/}" 2>/dev/null
done
rm -rf /root/pulsyon/shop.py /root/pulsyon/.venv /root/pulsyon/jar /root/pulsyon/certs
step "git status clean after the examples" clean_tree
step "scripts/test.sh" scripts/test.sh
step "git status clean after scripts/test.sh" clean_tree

printf '\n==> summary (%d s in all)\n' $(( $(date +%s) - t_start ))
printf '%s\n' "${results[@]}"
echo "scripts/test.sh's summary:"
cat /root/pulsyon/target/test-logs/summary.txt 2>/dev/null || echo "(none)"
exit "$failed"
