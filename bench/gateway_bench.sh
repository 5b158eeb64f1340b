#!/usr/bin/env bash
# berth gateway benchmark (issue #5 "Speed"): one run on loopback. Starts a small fast
# upstream (nginx, one worker, `return 200` with a 100-byte body), then measures with wrk
# requests/s and p99 latency for: the upstream directly, berth's gateway (`berth gateway
# --snapshot` with one route to the upstream), nginx as a keep-alive reverse proxy and haproxy,
# each in front of the same upstream, and prints the table and the ratios berth/nginx and
# berth/haproxy. Every process it starts is killed by PID on exit.
#
# Usage: bench/gateway_bench.sh path/to/berth
# Env:   BENCH_DURATION (wrk seconds, default 5), BENCH_ROUNDS (5), BENCH_CONNECTIONS (64),
#        BENCH_THREADS (2),
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
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-5}
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

UP=$(free_port); GW=$(free_port); GWU=$(free_port); NG=$(free_port); NGP=$(free_port)
HA=$(free_port); HAP=$(free_port)
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
declare -A PROCS PORTS
PIDS+=($!); PROCS[upstream]=$!; PORTS[upstream]=$UP

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
# berth_gateway NAME PORT FLAGS...: a gateway on the snapshot above.
berth_gateway() {
  local name=$1 port=$2
  shift 2
  "$BIN" gateway --snapshot "$TMP/snapshot.json" --http "127.0.0.1:$port" --https off --admin off \
    --io-threads "$PROXY_THREADS" --log-level info "$@" ${BENCH_BERTH_ARGS:-} >"$TMP/$name.log" 2>&1 &
  PIDS+=($!); PROCS[$name]=$!; PORTS[$name]=$port
}
berth_gateway berth "$GW"
berth_gateway berth-unpinned "$GWU" --pin-io-threads off

# 3. nginx as a keep-alive reverse proxy (NAME PORT AFFINITY-LINE) -----------------------------
nginx_proxy() {
  local name=$1 port=$2 affinity=$3 dir="$TMP/$1"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
worker_processes $PROXY_THREADS;
$affinity
pid $dir/nginx.pid;
error_log $TMP/$name.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir; proxy_temp_path $dir;
  fastcgi_temp_path $dir; uwsgi_temp_path $dir; scgi_temp_path $dir;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  upstream up { server 127.0.0.1:$UP; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$port;
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
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$TMP/$name.log" 2>&1 &
  PIDS+=($!); PROCS[$name]=$!; PORTS[$name]=$port
}
nginx_proxy nginx "$NG" ""
nginx_proxy nginx-pinned "$NGP" "worker_cpu_affinity auto;"

# 4. haproxy (NAME PORT CPU-MAP-LINE) -------------------------------------------------------------
haproxy_proxy() {
  local name=$1 port=$2 cpumap=$3
  cat >"$TMP/$name.cfg" <<EOF
global
  nbthread $PROXY_THREADS
  $cpumap
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
  bind 127.0.0.1:$port
  default_backend be
backend be
  server up 127.0.0.1:$UP maxconn 1000
EOF
  "$HAPROXY" -db -f "$TMP/$name.cfg" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!); PROCS[$name]=$!; PORTS[$name]=$port
}
haproxy_proxy haproxy "$HA" ""
haproxy_proxy haproxy-pinned "$HAP" "cpu-map auto:1/1-$PROXY_THREADS 0-$((PROXY_THREADS - 1))"

TARGETS=(upstream berth berth-unpinned nginx nginx-pinned haproxy haproxy-pinned)
PROXIES=(berth berth-unpinned nginx nginx-pinned haproxy haproxy-pinned)
for n in "${TARGETS[@]}"; do wait_http "${PORTS[$n]}"; done
for n in "${PROXIES[@]}"; do
  got=$(curl -s -H "Host: $HOST" "http://127.0.0.1:${PORTS[$n]}/")
  [ "$got" = "$BODY" ] || { echo "gateway_bench: $n answered \"$got\", not the upstream's body" >&2; exit 1; }
done

echo "berth gateway benchmark: $BIN"
echo "machine: $(nproc) cores, $(uname -r); wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds in turns, proxies with $PROXY_THREADS workers/threads"
echo "nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'), haproxy $("$HAPROXY" -v | awk 'NR==1 {print $3}'), wrk $(wrk -v 2>&1 | awk 'NR==1 {print $2}')"
echo "berth: $(grep -o 'io_threads=[0-9]* io_cpus="[^"]*"' "$TMP/berth.log" | head -1); berth-unpinned: $(grep -o 'io_cpus="[^"]*"' "$TMP/berth-unpinned.log" | head -1)"
echo

declare -A RPS P99 ERRS CPU CTX SYS
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
# median VALUES...: the middle value (the mean of the two middle ones for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Syscalls are counted with perf's raw_syscalls tracepoint when perf may use it (root or
# perf_event_paranoid <= 1); otherwise the column says n/a.
HAVE_PERF=0
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -x, true >/dev/null 2>&1; then HAVE_PERF=1; fi
per_req() { awk -v a="$1" -v b="$2" -v k="${3:-1}" 'BEGIN { if (b > 0) printf "%.1f", a * k / b; else print "n/a" }'; }
wrk_requests() { awk '/requests in/ {print $1}' <<<"$1"; }
run() {  # run NAME ROUND: one measured wrk run, appended to the NAME's lists
  local out pids c0 c1 x0 x1 n port=${PORTS[$1]}
  wrk -t"$THREADS" -c"$CONNS" -d2s -H "Host: $HOST" "http://127.0.0.1:$port/" >/dev/null  # warm-up
  read -ra pids <<<"$(pids_of "${PROCS[$1]}")"
  c0=$(cpu_ticks "${pids[@]}"); x0=$(ctx_switches "${pids[@]}")
  out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -H "Host: $HOST" "http://127.0.0.1:$port/")
  c1=$(cpu_ticks "${pids[@]}"); x1=$(ctx_switches "${pids[@]}")
  n=$(wrk_requests "$out")
  local rps p99 errs cpu ctx
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  errs=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  cpu=$(per_req $((c1 - c0)) "$n" $((1000000 / CLK_TCK)))
  ctx=$(per_req $((x1 - x0)) "$n")
  RPS[$1]+="$rps "; P99[$1]+="$p99 "; CPU[$1]+="$cpu "; CTX[$1]+="$ctx "
  ERRS[$1]=$(( ${ERRS[$1]:-0} + errs ))
  if [ "$2" = 1 ] && [ "$HAVE_PERF" = 1 ]; then
    # Syscalls: a separate short run under perf in the first round (the tracepoint slows the
    # process a little).
    local perf_out perf_pid
    perf stat -x, -e raw_syscalls:sys_enter -p "$(IFS=,; echo "${pids[*]}")" -o "$TMP/perf.$1" &
    perf_pid=$!
    sleep 0.3
    out=$(wrk -t"$THREADS" -c"$CONNS" -d3s -H "Host: $HOST" "http://127.0.0.1:$port/")
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    perf_out=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$TMP/perf.$1")
    SYS[$1]=$(per_req "${perf_out:-0}" "$(wrk_requests "$out")")
  fi
  printf 'round %s %-15s %8s req/s   p99 %6s ms   CPU %5s us/req   ctx switches %4s/req   errors %s\n' \
    "$2" "$1" "$rps" "$p99" "$cpu" "$ctx" "$errs"
}
for r in $(seq "$ROUNDS"); do
  for n in "${TARGETS[@]}"; do run "$n" "$r"; done
done
for n in "${TARGETS[@]}"; do
  # shellcheck disable=SC2086
  RPS[$n]=$(median ${RPS[$n]}); P99[$n]=$(median ${P99[$n]}); CPU[$n]=$(median ${CPU[$n]})
  # shellcheck disable=SC2086
  CTX[$n]=$(median ${CTX[$n]}); SYS[$n]=${SYS[$n]:-n/a}
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "n/a" && b != "n/a") printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "Medians of $ROUNDS rounds. CPU, syscalls and context switches are the proxy's own (nginx:"
echo "master + workers), per request; they do not depend on what else runs on the machine, unlike"
echo "req/s and p99. berth runs with its defaults; -pinned/-unpinned rows change only CPU placement."
echo
echo "| target | req/s | p99 (ms) | CPU (us/req) | syscalls/req | ctx switches/req | errors |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for n in "${TARGETS[@]}"; do
  echo "| $n | ${RPS[$n]} | ${P99[$n]} | ${CPU[$n]} | ${SYS[$n]} | ${CTX[$n]} | ${ERRS[$n]} |"
done
echo
for pair in berth:nginx berth:haproxy berth:nginx-pinned berth:haproxy-pinned berth-unpinned:nginx; do
  a=${pair%%:*} o=${pair#*:}
  printf '%s/%-16s req/s x%s, p99 x%s, CPU/req x%s, syscalls/req x%s\n' "$a" "$o:" \
    "$(ratio "${RPS[$a]}" "${RPS[$o]}")" "$(ratio "${P99[$a]}" "${P99[$o]}")" \
    "$(ratio "${CPU[$a]}" "${CPU[$o]}")" "$(ratio "${SYS[$a]}" "${SYS[$o]}")"
done
for n in "${PROXIES[@]}"; do
  [ "${ERRS[$n]}" = 0 ] || { echo "gateway_bench: $n had ${ERRS[$n]} errors" >&2; exit 1; }
done
