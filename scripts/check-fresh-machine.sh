#!/usr/bin/env bash
# Proves the README on a fresh Debian 12, as a new user meets it:
#   1. a Debian 12 root made with debootstrap (minbase, plus build-essential,
#      git, curl and ca-certificates) and this machine's Rust toolchain (what
#      rustup would have put in /root): nothing else, no service running;
#   2. isolated: its own network namespace, reaching the outside only through
#      slirp4netns (no host loopback: none of this machine's services), its
#      own PID namespace under a reaping init (tini), its own mounts;
#   3. inside it, this repository's HEAD cloned into /root/pulsyon, then the
#      README's two commands and every example the README marks with
#      `<!-- check: NAME -->` run exactly as written, each step printed with
#      its result and time.
# Not part of CI (it takes tens of minutes). Run it before resolving a change
# to the set-up and put its output in docs/perf/first-run.md:
#   scripts/check-fresh-machine.sh 2>&1 | tee /tmp/first-run.log
# `--prepare` only makes the base root (kept in .check-fresh-machine/, reused
# by later runs; delete it to start from a newer Debian). Needs root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"

[ "$(id -u)" -eq 0 ] || { say "run as root (debootstrap, namespaces, chroot)"; exit 1; }
work="${PULSYON_FRESH_DIR:-$root/.check-fresh-machine}"
base="$work/base"
machine="$work/machine"
mirror="${PULSYON_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
started=$(date +%s)

for tool in debootstrap slirp4netns tini-static; do
  command -v "$tool" >/dev/null || apt_install debootstrap slirp4netns tini
done

# The base root, made once.
if [ ! -f "$base/.complete" ]; then
  say "making a Debian 12 root with debootstrap in $base"
  rm -rf "$base"
  mkdir -p "$work"
  debootstrap --variant=minbase --include=build-essential,git,curl,ca-certificates \
    bookworm "$base" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log"; say "debootstrap failed"; exit 1; }
  cat >"$base/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
  # The Rust toolchain as rustup installs it for root: ~/.rustup and ~/.cargo/bin.
  toolchain=$(rustup show active-toolchain | cut -d' ' -f1)
  toolchain_dir=$(rustc --print sysroot)
  mkdir -p "$base/root/.rustup/toolchains" "$base/root/.cargo/bin"
  cp -a "$toolchain_dir" "$base/root/.rustup/toolchains/$toolchain"
  printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "default"\n' "$toolchain" \
    >"$base/root/.rustup/settings.toml"
  for proxy in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver rustup; do
    cp -a "$(command -v rustup)" "$base/root/.cargo/bin/$proxy"
  done
  echo '. "$HOME/.cargo/env"' >>"$base/root/.profile"
  printf 'export PATH="$HOME/.cargo/bin:$PATH"\n' >"$base/root/.cargo/env"
  touch "$base/.complete"
fi
[ "${1:-}" = "--prepare" ] && { say "base root ready in $base"; exit 0; }

say "a fresh machine from the base root"
for m in dev/shm dev proc sys; do umount -l "$machine/$m" 2>/dev/null || true; done
rm -rf "$machine"
cp -a "$base" "$machine"
echo 'nameserver 10.0.2.3' >"$machine/etc/resolv.conf"
echo 'fresh' >"$machine/etc/hostname"
mkdir -p "$machine/.harness"
cp "$(command -v tini-static)" "$machine/.harness/tini"
cp "$root/scripts/check-fresh-machine-inside.sh" "$machine/.harness/inside.sh"
# This workplace's network: the CA certificates this host trusts beyond
# Debian's (a proxy that re-signs TLS) become the machine's system CAs too,
# and the variables that point tools at the bundle go in with them; a user
# behind such a proxy sets up the same on any machine.
python3 - "$machine" <<'PY'
import sys, re
pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
host = pem.findall(open("/etc/ssl/certs/ca-certificates.crt").read())
fresh = set(pem.findall(open(sys.argv[1] + "/etc/ssl/certs/ca-certificates.crt").read()))
for i, cert in enumerate(c for c in host if c not in fresh):
    open(f"{sys.argv[1]}/usr/local/share/ca-certificates/workplace-{i}.crt", "w").write(cert + "\n")
PY
chroot "$machine" update-ca-certificates >/dev/null 2>&1
ca_env=()
for v in SSL_CERT_FILE NODE_EXTRA_CA_CERTS PIP_CERT REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO; do
  [ -n "${!v:-}" ] && ca_env+=("$v=/etc/ssl/certs/ca-certificates.crt")
done
say "workplace CA certificates carried in: $(ls "$machine"/usr/local/share/ca-certificates | wc -l); variables: ${ca_env[*]:-none}"
git clone -q --bare "$root" "$machine/tmp/pulsyon.git"
say "cloned $(git -C "$root" rev-parse --short HEAD) ($(git -C "$root" log -1 --format=%s | cut -c1-60))"

# The machine: new network, PID and mount namespaces; slirp4netns gives it a
# way out (10.0.2.0/24, DNS at 10.0.2.3) but not to this host's loopback.
unshare --net --pid --mount --fork --kill-child bash -c '
  set -e
  m="$1"
  shift
  for _ in $(seq 1 100); do ip link show tap0 >/dev/null 2>&1 && break; sleep 0.1; done
  ip link set lo up
  mount -t proc proc "$m/proc"
  mount -t sysfs sysfs "$m/sys"
  mount --rbind /dev "$m/dev"
  mount -t tmpfs -o size=4g tmpfs "$m/dev/shm"
  exec chroot "$m" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@" \
    /.harness/tini -s -- /bin/bash /.harness/inside.sh
' _ "$machine" "${ca_env[@]}" &
inner=$!
for _ in $(seq 1 100); do
  [ "$(readlink "/proc/$inner/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ] && break
  sleep 0.05
done
slirp4netns --configure --mtu=65520 --disable-host-loopback "$inner" tap0 >"$work/slirp.log" 2>&1 &
slirp=$!
status=0
wait "$inner" || status=$?
kill "$slirp" 2>/dev/null || true
for m in dev/shm dev proc sys; do umount -l "$machine/$m" 2>/dev/null || true; done
say "fresh-machine check: exit $status after $(( $(date +%s) - started )) s"
exit "$status"
