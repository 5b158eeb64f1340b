#!/usr/bin/env bash
# berth API benchmark: start-to-ready time (cold and warm), idle RSS, and wrk throughput and
# latency for an authenticated read and a write. Loopback only; stops by itself (about 1 min).
#
# Usage: bench/api_bench.sh path/to/berth
# Env:   BENCH_DURATION (wrk seconds, default 10), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
#        BENCH_RUNS (start-up runs per kind, default 5)
set -euo pipefail

BIN=${1:?usage: bench/api_bench.sh path/to/berth}
BIN=$(readlink -f "$BIN")
[ -x "$BIN" ] || { echo "api_bench: $BIN is not executable" >&2; exit 2; }
for tool in curl wrk python3; do
  command -v "$tool" >/dev/null || { echo "api_bench: $tool is missing (scripts/setup.sh bench)" >&2; exit 2; }
done
HERE=$(cd "$(dirname "$0")" && pwd)
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
RUNS=${BENCH_RUNS:-5}
PASS=bench-pass-123
export BERTH_ADMIN_PASSWORD=$PASS
unset BERTH_CONFIG BERTH_SERVER BERTH_TOKEN BERTH_DATA BERTH_API BERTH_STORE || true

TMP=$(mktemp -d /tmp/berth-bench.XXXXXX)
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

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) {print "n/a"} else if (NR%2) {print a[(NR+1)/2]} else {printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}}'; }

echo "berth API benchmark: $BIN"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo

# 1. start-to-ready ---------------------------------------------------------------------------
echo "start-to-ready ($RUNS runs each) ..."
cold=()
for i in $(seq "$RUNS"); do
  d="$TMP/cold-$i/data"; mkdir -p "$TMP/cold-$i"
  cold+=("$(timeout 60 python3 "$HERE/ready_time.py" "$BIN" "$d")")
done
warm_dir="$TMP/warm/data"; mkdir -p "$TMP/warm"
timeout 60 python3 "$HERE/ready_time.py" "$BIN" "$warm_dir" >/dev/null   # initialise it
warm=()
for i in $(seq "$RUNS"); do
  warm+=("$(timeout 60 python3 "$HERE/ready_time.py" "$BIN" "$warm_dir")")
done
COLD_MS=$(printf '%s\n' "${cold[@]}" | median)
WARM_MS=$(printf '%s\n' "${warm[@]}" | median)
echo "  cold (fresh data dir): ${cold[*]} ms -> median $COLD_MS ms"
echo "  warm (existing data):  ${warm[*]} ms -> median $WARM_MS ms"

# 2. a server for the load tests --------------------------------------------------------------
DATA="$TMP/load/data"; mkdir -p "$TMP/load"
"$BIN" server --data "$DATA" --api 127.0.0.1:0 --http 127.0.0.1:0 --https 127.0.0.1:0 --gateway off \
  --log-level warn >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
URL=""
for _ in $(seq 600); do
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "api_bench: server exited early" >&2; exit 1; }
  if [ -f "$DATA/server.json" ]; then
    URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"].rstrip("/"))' \
          "$DATA/server.json" 2>/dev/null || true)
    if [ -n "$URL" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ]; then break; fi
  fi
  sleep 0.05
done
[ -n "$URL" ] || { echo "api_bench: server not ready within 30 s" >&2; exit 1; }
case "$URL" in http://127.0.0.1:*) ;; *) echo "api_bench: unexpected api URL $URL" >&2; exit 1 ;; esac

rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$SERVER_PID/status"; }
RSS_READY=$(rss_mib)
sleep 1
RSS_IDLE=$(rss_mib)
echo "idle RSS: $RSS_READY MiB right after ready, $RSS_IDLE MiB after 1 s idle"

TOKEN=$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d "{\"user\":\"admin\",\"password\":\"$PASS\"}" "$URL/api/v1/login" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
[ -n "$TOKEN" ] || { echo "api_bench: login failed" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $TOKEN" -d '{"name":"bench-app","description":"benchmark"}' \
  "$URL/api/v1/teams/default/apps")
[ "$code" = 201 ] || { echo "api_bench: creating bench-app answered $code" >&2; exit 1; }

# 3. wrk ---------------------------------------------------------------------------------------
cat >"$TMP/post.lua" <<'LUA'
-- POSTs apps with unique names: b<thread>-<n>.
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end
function init(args)
  token = args[1]
  counter = 0
end
function request()
  counter = counter + 1
  local body = string.format('{"name":"b%d-%d"}', tid, counter)
  return wrk.format("POST", "/api/v1/teams/default/apps",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
LUA

run_wrk() {  # name, then wrk arguments
  local name=$1; shift
  local out="$TMP/wrk-$name.txt"
  timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@" >"$out" 2>&1 || {
    echo "api_bench: wrk ($name) failed:" >&2; cat "$out" >&2; exit 1; }
  local rps p50 p99 errs non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(awk '$1=="50%" {print $2}' "$out")
  p99=$(awk '$1=="99%" {print $2}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  errs=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); print}' "$out")
  printf '%s|%s|%s|%s|%s|%s\n' "$name" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${non2xx:-0}" "${errs:-none}" >>"$TMP/results"
  echo "  $name: ${rps:-?} req/s, p50 ${p50:-?}, p99 ${p99:-?}, non-2xx ${non2xx:-0}"
}

echo "wrk -t$THREADS -c$CONNS -d${DURATION}s ..."
: >"$TMP/results"
run_wrk "read  GET app" -H "Authorization: Bearer $TOKEN" "$URL/api/v1/teams/default/apps/bench-app"
run_wrk "write POST app" -s "$TMP/post.lua" "$URL" -- "$TOKEN"
RSS_AFTER=$(rss_mib)
APPS=$(curl -sf -H "Authorization: Bearer $TOKEN" "$URL/api/v1/teams/default/apps?limit=1" >/dev/null && echo ok || echo "list failed")

# 4. summary -----------------------------------------------------------------------------------
echo
echo "=== berth API benchmark summary ==="
printf '%-28s %s\n' "start-to-ready, cold (median)" "$COLD_MS ms"
printf '%-28s %s\n' "start-to-ready, warm (median)" "$WARM_MS ms"
printf '%-28s %s\n' "idle RSS after ready" "$RSS_IDLE MiB"
printf '%-28s %s\n' "RSS after load" "$RSS_AFTER MiB"
echo
printf '%-16s %12s %10s %10s %8s  %s\n' "workload" "req/s" "p50" "p99" "non-2xx" "socket errors"
while IFS='|' read -r name rps p50 p99 non2xx errs; do
  printf '%-16s %12s %10s %10s %8s  %s\n' "$name" "$rps" "$p50" "$p99" "$non2xx" "$errs"
done <"$TMP/results"
[ "$APPS" = ok ] || echo "warning: listing apps after the load failed"

# Graceful stop must work after load.
kill -TERM "$SERVER_PID"
for _ in $(seq 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "warning: server still running 15 s after SIGTERM; killing it" >&2
else
  wait "$SERVER_PID" && rc=0 || rc=$?
  [ "$rc" = 0 ] || echo "warning: server exited with code $rc after SIGTERM" >&2
  SERVER_PID=""
fi
