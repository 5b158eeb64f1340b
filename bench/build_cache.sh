#!/usr/bin/env bash
# Build cache benchmark (issue #3 §4): builds the same Node.js app with npm dependencies twice
# through a real `berth server` — first with empty per-component caches, then again unchanged
# (npm cache and node_modules restored) — and prints both times, queue to ready.
# Loopback and the npm registry only; stops by itself.
#
# Usage: bench/build_cache.sh path/to/berth
# Env:   BENCH_DEPS  dependencies of the sample app as JSON (default: express and lodash)
set -euo pipefail

BIN=${1:?usage: bench/build_cache.sh path/to/berth}
BIN=$(readlink -f "$BIN")
[ -x "$BIN" ] || { echo "build_cache: $BIN is not executable" >&2; exit 2; }
for tool in curl python3 node npm; do
  command -v "$tool" >/dev/null || { echo "build_cache: $tool is missing" >&2; exit 2; }
done
DEPS=${BENCH_DEPS:-'{"express": "4.21.2", "lodash": "4.17.21"}'}
PASS=bench-pass-123
export BERTH_ADMIN_PASSWORD=$PASS
unset BERTH_CONFIG BERTH_SERVER BERTH_TOKEN BERTH_DATA BERTH_API BERTH_STORE || true

TMP=$(mktemp -d /tmp/berth-build-bench.XXXXXX)
SERVER_PID=""
cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ $rc -ne 0 ] && [ -f "$TMP/server.log" ]; then
    echo "--- server log tail ---" >&2; tail -n 30 "$TMP/server.log" >&2
  fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The sample app: an HTTP server with real dependencies and a lockfile-free npm install.
APP="$TMP/app"
mkdir -p "$APP"
cat > "$APP/package.json" <<JSON
{"name": "bench-app", "version": "1.0.0", "private": true,
 "scripts": {"start": "node server.js"}, "dependencies": $DEPS}
JSON
cat > "$APP/server.js" <<'JS'
const express = require("express");
const app = express();
app.get("/", (req, res) => res.send("hello\n"));
app.listen(Number(process.env.PORT), "127.0.0.1");
JS

"$BIN" server --data "$TMP/data" --api 127.0.0.1:0 --http 127.0.0.1:0 --https 127.0.0.1:0 \
  --log-level warn >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do [ -f "$TMP/data/server.json" ] && break; sleep 0.1; done
URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"])' "$TMP/data/server.json")
TOKEN=$(curl -sf -H 'Content-Type: application/json' -d "{\"user\":\"admin\",\"password\":\"$PASS\"}" \
  "$URL/api/v1/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
api() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"; }
T="$URL/api/v1/teams/default"
api -d '{"name":"bench"}' "$T/apps" >/dev/null
# replicas 0: only the builds are measured, nothing is started.
api -d "{\"name\":\"web\",\"replicas\":0,\"source\":{\"type\":\"dir\",\"path\":\"$APP\"}}" \
  "$T/apps/bench/components" >/dev/null

build() {
  local v status start end
  start=$(date +%s.%N)
  v=$(api -X POST -d '{}' "$T/apps/bench/components/web/builds" | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')
  for _ in $(seq 6000); do
    status=$(api "$T/apps/bench/components/web/versions/$v" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    case "$status" in ready|failed|cancelled) break ;; esac
    sleep 0.1
  done
  end=$(date +%s.%N)
  if [ "$status" != ready ]; then
    echo "build $v $status:" >&2
    api "$T/apps/bench/components/web/versions/$v/log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["log"])' >&2
    exit 1
  fi
  python3 -c "print(f'{$end - $start:.1f}')"
}

echo "berth build cache benchmark: $BIN"
echo "machine: $(nproc) cores, node $(node --version), npm $(npm --version)"
echo "app: dependencies $DEPS"
first=$(build)
second=$(build)
echo "first build (empty caches):      ${first} s"
echo "second build (unchanged, cached): ${second} s"
python3 -c "print(f'speed-up: {$first / max($second, 0.01):.1f}x')"
