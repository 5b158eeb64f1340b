#!/usr/bin/env bash
# Proves that a truly fresh Debian 12 — nothing but Debian's own packages, whose Node.js is 18 —
# runs `make run` and `make test` to green (README "Run it"; issue 21, item 10).
#
#   sudo scripts/fresh-debian-check.sh [REF]      # REF: the commit to check (default HEAD)
#
# It makes a minimal Debian 12 root with debootstrap from the Debian mirror this machine's apt
# uses, clones the repository at REF into it, and there, as root in a chroot:
#   1. installs `make` (everything else comes from the project's own scripts/setup.sh),
#   2. runs `make run` in the background (API, HTTP and HTTPS on free loopback ports, via the
#      BERTH_* settings), waits for "berth server ready", checks /readyz, that / serves the
#      console (built with Debian's Node.js), logs in and creates an app with the CLI, stops it,
#   3. runs `make test` (every unit, integration, console and end-to-end test).
# Everything inside runs in its own PID and mount namespaces (unshare): when the check ends,
# every process it started (servers, gateways, instances) ends with it, and its mounts (/proc,
# /sys, /dev) vanish; then the root is deleted. Test traffic stays on loopback (the tests use
# 127.0.0.1 only); the network is used for Debian's packages and the npm registry, as on a
# developer's machine. The whole check stops by itself after BERTH_FRESH_TIMEOUT (default 5h).
#
# Two things of this machine may be carried in, and nothing else:
#  - its local CA certificates (/usr/local/share/ca-certificates), always: on a network whose
#    proxy re-signs TLS, a fresh machine's admin installs them too, or nothing reaches the npm
#    registry (npm then fails with SELF_SIGNED_CERT_IN_CHAIN);
#  - with BERTH_FRESH_CCACHE=DIR, a ccache directory (mounted at /ccache; misses compile as
#    usual). It saves most of the compiling when the same Debian compiler filled it, and proves
#    no less: a hit needs the same headers found at the same paths in the root.
#
# Output: progress on stdout, the full log in $BERTH_FRESH_LOG (default
# /tmp/berth-fresh-debian-check.log), which is kept; exit 0 only when both steps passed.
# CI does not run this (it takes one to two hours on two cores).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "fresh-debian-check: run as root (debootstrap and chroot need it)" >&2
  exit 2
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
REF=${1:-HEAD}
LIMIT=${BERTH_FRESH_TIMEOUT:-5h}
LOG=${BERTH_FRESH_LOG:-/tmp/berth-fresh-debian-check.log}
COMMIT=$(git -C "$REPO" rev-parse --verify "$REF^{commit}")

# The Debian mirror (and security mirror) this machine's apt uses; BERTH_DEBIAN_MIRROR and
# BERTH_DEBIAN_SECURITY override them.
uris_for() {  # $1: a suite ("bookworm", "bookworm-security")
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk -v suite="$1" '
      /^URIs:/ {u=$2} /^Suites:/ {for (i=2; i<=NF; i++) if ($i==suite) s=1}
      /^$/ {if (s && u) {print u; exit} u=""; s=0}
      END {if (s && u) print u}' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    awk -v suite="$1" '$1=="deb" && $3==suite {print $2}' "$f"
  done
}
MIRROR=${BERTH_DEBIAN_MIRROR:-$(uris_for bookworm | head -n1)}
SECURITY=${BERTH_DEBIAN_SECURITY:-$(uris_for bookworm-security | head -n1)}
if [ -z "$MIRROR" ]; then
  echo "fresh-debian-check: no Debian bookworm mirror in /etc/apt; set BERTH_DEBIAN_MIRROR" >&2
  exit 2
fi

WORK=$(mktemp -d /var/tmp/berth-fresh-debian.XXXXXX)
ROOT=$WORK/root
cleanup() {
  # The mounts lived in the check's own mount namespace; refuse to delete anything still
  # mounted (it would reach into /dev or /sys of this machine).
  if findmnt -rn -o TARGET | grep -q "^$WORK"; then
    echo "fresh-debian-check: something is still mounted under $WORK; not deleting it" >&2
    return
  fi
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

: >"$LOG"
say() { echo "fresh-debian-check: $*" | tee -a "$LOG"; }
say "checking $COMMIT in a fresh Debian 12 root at $ROOT (log: $LOG, limit $LIMIT)"
command -v debootstrap >/dev/null 2>&1 || {
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >>"$LOG" 2>&1
}

start=$(date +%s)
say "debootstrap bookworm (minbase) from the machine's Debian mirror"
debootstrap --variant=minbase --include=ca-certificates,git bookworm "$ROOT" "$MIRROR" \
  >>"$LOG" 2>&1 || { say "debootstrap failed; see $LOG"; exit 1; }
{
  echo "deb $MIRROR bookworm main"
  echo "deb $MIRROR bookworm-updates main"
  [ -n "$SECURITY" ] && echo "deb $SECURITY bookworm-security main"
} >"$ROOT/etc/apt/sources.list"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# An installed Debian has these (the installer writes them); debootstrap's minbase does not,
# and without them `localhost` does not resolve (Vitest's server fails with ENOTFOUND).
[ -s "$ROOT/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
[ -s "$ROOT/etc/hostname" ] || echo berth-fresh >"$ROOT/etc/hostname"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  say "carrying in this machine's local CA certificates: $(cd /usr/local/share/ca-certificates && echo *.crt)"
  mkdir -p "$ROOT/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
  chroot "$ROOT" update-ca-certificates >>"$LOG" 2>&1
fi
CCACHE_FROM=${BERTH_FRESH_CCACHE:-}
if [ -n "$CCACHE_FROM" ]; then
  say "using the ccache at $CCACHE_FROM (mounted at /ccache)"
  mkdir -p "$ROOT/ccache"
fi
git clone --quiet --no-local "$REPO" "$ROOT/root/berth" >>"$LOG" 2>&1
git -C "$ROOT/root/berth" checkout --quiet --detach "$COMMIT"

cat >"$ROOT/root/fresh-inner.sh" <<'INNER'
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive HOME=/root LANG=C.UTF-8
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Node.js and npm trust the system's store (with the local CAs carried in, if any).
export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm_config_cafile=/etc/ssl/certs/ca-certificates.crt
if mountpoint -q /ccache; then
  # ccache's default compiler check (size and mtime) matches: dpkg keeps a package's mtimes.
  export CCACHE_DIR=/ccache CCACHE_BASEDIR=/root/berth CCACHE_NOHASHDIR=1
fi
step() { echo "== $* ($(date -u +%H:%M:%S))"; }
step "Debian $(cat /etc/debian_version); node before setup: $(command -v node || echo none)"
apt-get update -qq
apt-get install -y -qq --no-install-recommends make >/dev/null
cd /root/berth

step "make run"
export BERTH_API=127.0.0.1:0 BERTH_HTTP=127.0.0.1:0 BERTH_HTTPS=127.0.0.1:0
make run DATA=/root/data >/root/make-run.log 2>&1 &
run_pid=$!
deadline=$(( $(date +%s) + 7200 ))
until grep -q "berth server ready" /root/make-run.log 2>/dev/null; do
  if ! kill -0 "$run_pid" 2>/dev/null || [ "$(date +%s)" -gt "$deadline" ]; then
    tail -n 60 /root/make-run.log; echo "make run: the server did not become ready"; exit 1
  fi
  sleep 5
done
unset BERTH_API BERTH_HTTP BERTH_HTTPS
grep -E "^berth|warning|error" /root/make-run.log | tail -n 8
echo "node: $(node --version), npm: $(npm --version)"
api=$(sed -E 's/.*"api":"([^"]+)".*/\1/' /root/data/server.json)
curl -fsS "$api/readyz" >/dev/null && echo "readyz: 200 at $api"
curl -fsS -o /root/index.html "$api/"
grep -q '<div id="root">' /root/index.html && grep -q '/assets/' /root/index.html &&
  echo "console: / serves the console built with node $(node --version)"
berth=build/release/berth
$berth --version
$berth login --server "$api" --user admin --password-stdin </root/data/initial-admin-password
$berth app create fresh-check
$berth app list
kill -TERM "$(sed -E 's/.*"pid":([0-9]+).*/\1/' /root/data/server.json)"
wait "$run_pid"
step "make run: passed"

step "make test"
set +e
make test 2>&1 | tee /root/make-test.log
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then echo "make test: FAILED (exit $status)"; exit 1; fi
step "make test: passed"
INNER

say "running make run and make test inside the root (own PID and mount namespaces)"
set +e
timeout --kill-after=60 "$LIMIT" unshare --pid --fork --kill-child --mount --propagation private \
  bash -c '
    set -e
    root=$1
    # The root must be a mount point of its own, as / is on a real machine: the sandbox makes
    # its mounts private from / down, which fails ("Invalid argument") on a plain directory.
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
    if [ -n "$2" ]; then mount --bind "$2" "$root/ccache"; fi
    exec chroot "$root" /bin/bash /root/fresh-inner.sh
  ' fresh "$ROOT" "$CCACHE_FROM" >>"$LOG" 2>&1
rc=$?
set -e
elapsed=$(( $(date +%s) - start ))
grep -E "^(== |node:|readyz|console:|berth [0-9]|logged in|created|[0-9]+% tests passed|Total Test time|The following tests FAILED|make (run|test))|Failed|\(Failed\)" "$LOG" | tail -n 40
if [ "$rc" -eq 0 ]; then
  say "PASSED: make run and make test on a fresh Debian 12 ($COMMIT, $((elapsed / 60)) min)"
else
  say "FAILED (exit $rc after $((elapsed / 60)) min); see $LOG"
fi
exit "$rc"
