#!/usr/bin/env bash
# berth gateway benchmark (issue #5 "Speed"): one run on loopback. Starts a small fast
# upstream (nginx, one worker, `return 200` with a 100-byte body), then measures with wrk
# requests/s and p99 latency for: the upstream directly, berth's gateway (`berth gateway
# --snapshot` with one route to the upstream), nginx as a keep-alive reverse proxy and haproxy,
# each in front of the same upstream, and prints the table and the ratios berth/nginx and
# berth/haproxy. Every process it starts is killed by PID on exit.
#
# Usage: bench/gateway_bench.sh path/to/berth
# Env:   BENCH_DURATION (wrk seconds, default 10), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
#        BENCH_PROXY_THREADS (worker processes/threads of each proxy, default 2 = the cores),
#        BENCH_BERTH_ARGS (more flags for berth gateway, e.g. "--access-log /tmp/a.log")
set -euo pipefail

BIN=${1:?usage: bench/gateway_bench.sh path/to/berth}
BIN=$(readlink -f "$BIN")
[ -x "$BIN" ] || { echo "gateway_bench: $BIN is not executable" >&2; exit 2; }
for tool in curl wrk python3 nginx haproxy; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
    { echo "gateway_bench: $tool is missing (scripts/setup.sh bench)" >&2; exit 2; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
DURATION=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
THREADS=${BENCH_THREADS:-2}
PROXY_THREADS=${BENCH_PROXY_THREADS:-2}
HOST=bench.localhost

TMP=$(mktemp -d /tmp/berth-gwbench.XXXXXX)
PIDS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ $rc -ne 0 ]; then
    for f in "$TMP"/*.log; do
      [ -f "$f" ] && { echo "--- $f ---" >&2; tail -n 20 "$f" >&2; }
    done
  fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # wait_http PORT: until something answers HTTP on 127.0.0.1:PORT
  for _ in $(seq 100); do
    curl -s -o /dev/null -H "Host: $HOST" "http://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  echo "gateway_bench: nothing answers on 127.0.0.1:$1" >&2
  return 1
}

UP=$(free_port); GW=$(free_port); NG=$(free_port); HA=$(free_port)
BODY=$(printf 'x%.0s' $(seq 99))  # 99 bytes + "\n" = a 100-byte body
mkdir -p "$TMP/nginx-up" "$TMP/nginx-proxy"

# 1. the upstream: nginx, one worker ---------------------------------------------------------
cat >"$TMP/nginx-up/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx-up/nginx.pid;
error_log $TMP/upstream.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx-up; proxy_temp_path $TMP/nginx-up;
  fastcgi_temp_path $TMP/nginx-up; uwsgi_temp_path $TMP/nginx-up; scgi_temp_path $TMP/nginx-up;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$UP;
    location / { default_type text/plain; return 200 "$BODY\n"; }
  }
}
EOF
"$NGINX" -p "$TMP/nginx-up" -c "$TMP/nginx-up/nginx.conf" -g 'daemon off;' >"$TMP/upstream.log" 2>&1 &
UP_PID=$!; PIDS+=($!)

# 2. berth's gateway, static mode ------------------------------------------------------------
cat >"$TMP/snapshot.json" <<EOF
{
  "revision": 1,
  "http_routes": [{
    "id": "bench/bench/upstream/default-80", "team": "bench", "app": "bench",
    "component": "upstream", "domains": ["$HOST"],
    "backends": [{"pool": "bench/bench/upstream:80", "weight": 100}]
  }],
  "pools": {
    "bench/bench/upstream:80": {
      "team": "bench", "app": "bench", "component": "upstream", "port": 80,
      "endpoints": [{"instance": "upstream-1", "host": "127.0.0.1", "port": $UP}]
    }
  }
}
EOF
"$BIN" gateway --snapshot "$TMP/snapshot.json" --http "127.0.0.1:$GW" --https off --admin off \
  --io-threads "$PROXY_THREADS" --log-level warn ${BENCH_BERTH_ARGS:-} >"$TMP/berth.log" 2>&1 &
BERTH_PID=$!; PIDS+=($!)

# 3. nginx as a keep-alive reverse proxy -------------------------------------------------------
cat >"$TMP/nginx-proxy/nginx.conf" <<EOF
worker_processes $PROXY_THREADS;
pid $TMP/nginx-proxy/nginx.pid;
error_log $TMP/nginx.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx-proxy; proxy_temp_path $TMP/nginx-proxy;
  fastcgi_temp_path $TMP/nginx-proxy; uwsgi_temp_path $TMP/nginx-proxy; scgi_temp_path $TMP/nginx-proxy;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream up { server 127.0.0.1:$UP; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NG;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
EOF
"$NGINX" -p "$TMP/nginx-proxy" -c "$TMP/nginx-proxy/nginx.conf" -g 'daemon off;' >"$TMP/nginx.log" 2>&1 &
NGINX_PID=$!; PIDS+=($!)

# 4. haproxy ------------------------------------------------------------------------------------
cat >"$TMP/haproxy.cfg" <<EOF
global
  nbthread $PROXY_THREADS
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 300s
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:$HA
  default_backend be
backend be
  server up 127.0.0.1:$UP maxconn 1000
EOF
"$HAPROXY" -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
HAPROXY_PID=$!; PIDS+=($!)

for p in $UP $GW $NG $HA; do wait_http "$p"; done
for p in $GW $NG $HA; do
  got=$(curl -s -H "Host: $HOST" "http://127.0.0.1:$p/")
  [ "$got" = "$BODY" ] || { echo "gateway_bench: 127.0.0.1:$p answered \"$got\", not the upstream's body" >&2; exit 1; }
done

echo "berth gateway benchmark: $BIN"
echo "machine: $(nproc) cores, $(uname -r); wrk -t$THREADS -c$CONNS -d${DURATION}s, proxies with $PROXY_THREADS workers/threads"
echo "nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'), haproxy $("$HAPROXY" -v | awk 'NR==1 {print $3}'), wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
echo

declare -A RPS P99 ERRS CPU CTX SYS PROCS
PROCS[upstream]=$UP_PID; PROCS[berth]=$BERTH_PID; PROCS[nginx]=$NGINX_PID; PROCS[haproxy]=$HAPROXY_PID
CLK_TCK=$(getconf CLK_TCK)
# to_ms VALUE: wrk's "1.23ms" / "812.00us" / "1.02s" in milliseconds
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }
# pids_of PID: the process and its children (nginx's workers), space-separated.
pids_of() { echo "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); }
# cpu_ticks PIDS...: utime + stime of the processes (all their threads), in clock ticks.
cpu_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
# ctx_switches PIDS...: voluntary + non-voluntary context switches of every thread.
ctx_switches() {
  local p
  for p in "$@"; do cat /proc/"$p"/task/*/status; done |
    awk '/^(non)?voluntary_ctxt_switches:/ {n += $2} END {print n + 0}'
}
# Syscalls are counted with perf's raw_syscalls tracepoint when perf may use it (root or
# perf_event_paranoid <= 1); otherwise the column says n/a.
HAVE_PERF=0
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -x, true >/dev/null 2>&1; then HAVE_PERF=1; fi
per_req() { awk -v a="$1" -v b="$2" -v k="${3:-1}" 'BEGIN { if (b > 0) printf "%.1f", a * k / b; else print "n/a" }'; }
wrk_requests() { awk '/requests in/ {print $1}' <<<"$1"; }
run() {  # run NAME PORT
  local out pids c0 c1 x0 x1 n
  wrk -t"$THREADS" -c"$CONNS" -d2s -H "Host: $HOST" "http://127.0.0.1:$2/" >/dev/null  # warm-up
  read -ra pids <<<"$(pids_of "${PROCS[$1]}")"
  c0=$(cpu_ticks "${pids[@]}"); x0=$(ctx_switches "${pids[@]}")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $HOST" "http://127.0.0.1:$2/")
  c1=$(cpu_ticks "${pids[@]}"); x1=$(ctx_switches "${pids[@]}")
  n=$(wrk_requests "$out")
  RPS[$1]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  P99[$1]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  ERRS[$1]=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  CPU[$1]=$(per_req $((c1 - c0)) "$n" $((1000000 / CLK_TCK)))
  CTX[$1]=$(per_req $((x1 - x0)) "$n")
  SYS[$1]=n/a
  if [ "$HAVE_PERF" = 1 ]; then
    # A separate short run under perf (the tracepoint slows the process a little).
    local perf_out
    perf stat -x, -e raw_syscalls:sys_enter -p "$(IFS=,; echo "${pids[*]}")" -o "$TMP/perf.$1" &
    local perf_pid=$!
    sleep 0.3
    out=$(wrk -t"$THREADS" -c"$CONNS" -d3s -H "Host: $HOST" "http://127.0.0.1:$2/")
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    perf_out=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$TMP/perf.$1")
    SYS[$1]=$(per_req "${perf_out:-0}" "$(wrk_requests "$out")")
  fi
  printf '%-10s %10s req/s   p99 %8s ms   CPU %6s us/req   syscalls %5s/req   ctx switches %5s/req   errors %s\n' \
    "$1" "${RPS[$1]}" "${P99[$1]}" "${CPU[$1]}" "${SYS[$1]}" "${CTX[$1]}" "${ERRS[$1]}"
}
run upstream "$UP"
run berth "$GW"
run nginx "$NG"
run haproxy "$HA"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "n/a" && b != "n/a") printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "CPU, syscalls and context switches are the proxy's own (nginx: master + workers), per request;"
echo "they do not depend on what else runs on the machine, unlike req/s and p99."
echo
echo "| target | req/s | p99 (ms) | CPU (us/req) | syscalls/req | ctx switches/req | errors |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for n in upstream berth nginx haproxy; do
  echo "| $n | ${RPS[$n]} | ${P99[$n]} | ${CPU[$n]} | ${SYS[$n]} | ${CTX[$n]} | ${ERRS[$n]} |"
done
echo
for o in nginx haproxy; do
  printf 'berth/%-8s req/s x%s, p99 x%s, CPU/req x%s, syscalls/req x%s\n' "$o:" \
    "$(ratio "${RPS[berth]}" "${RPS[$o]}")" "$(ratio "${P99[berth]}" "${P99[$o]}")" \
    "$(ratio "${CPU[berth]}" "${CPU[$o]}")" "$(ratio "${SYS[berth]}" "${SYS[$o]}")"
done
for n in berth nginx haproxy; do
  [ "${ERRS[$n]}" = 0 ] || { echo "gateway_bench: $n had ${ERRS[$n]} errors" >&2; exit 1; }
done
