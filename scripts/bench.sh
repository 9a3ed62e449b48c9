#!/usr/bin/env bash
# Side-by-side benchmark on loopback: the upstream directly, qcc (2-endpoint cluster), nginx as a
# reverse proxy (worker_processes 1, upstream keepalive, proxy_next_upstream) and HAProxy
# (nbthread 1, http-reuse always), over a plain and a TLS upstream (the same nginx, HTTPS with a
# CA made here; every proxy verifies it). Beside them, the floor: `relay` (scripts/bench/relay.rs),
# a bare single-threaded TCP relay that makes the same four socket calls per request as qcc and
# nothing else (no HTTP parsing, no rewriting): what any forwarding proxy could reach here.
# Installs what it needs (nginx, wrk, haproxy) from Debian packages. Bounded: every load runs
# DURATION s.
#
#   scripts/bench.sh                  # DURATION=10 per load
#   DURATION=5 STREAMS=1000 IDLE_CLIENTS=10000 scripts/bench.sh
#   QCC_BIN=/path/to/other/qcc scripts/bench.sh   # measure another build (before/after a change)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench/load.sh
DURATION=${DURATION:-10}
STREAMS=${STREAMS:-1000}
STREAM_SECS=${STREAM_SECS:-10}
IDLE_CLIENTS=${IDLE_CLIENTS:-10000}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk || ! need haproxy || ! need openssl; then
  echo "bench: installing nginx, wrk, haproxy" >&2
  apt-get update -qq && apt-get install -y -qq nginx wrk haproxy openssl >/dev/null
fi
need python3 || { echo "bench: python3 is required for the SSE loads" >&2; exit 1; }
if [ -n "${QCC_BIN:-}" ]; then QCC=$QCC_BIN; else cargo build --release --locked -q; QCC=$PWD/target/release/qcc; fi
cargo build --release --locked -q --example relay
RELAY=$PWD/target/release/examples/relay

scratch # $work, and $pids stopped on exit
# As many descriptors as allowed (the idle-clients row needs two per client: probe and qcc).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

UP1=18081 UP2=18082 NGX=18090 NGX_SSE=18092 SSE=18095 QPORT=18091 QSSE=18093
UPTLS=18083 NGX_TLS=18096 QTLS=18097 HAP=18098 HAP_TLS=18099 QIDLE=18094 FLOOR=18100 FLOOR_SSE=18101

# A CA and a certificate for 127.0.0.1 (the TLS upstream), made here.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=bench CA" -keyout "$work/ca.key" -out "$work/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$work/up.key" -out "$work/up.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/up.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
  -extfile "$work/ext.cnf" -out "$work/up.pem" 2>/dev/null

nginx_conf "$work/upstream.conf" up 16384 "$(cat <<CONF
  server {
    listen 127.0.0.1:$UP1 backlog=4096;
    listen 127.0.0.1:$UP2 backlog=4096;
    listen 127.0.0.1:$UPTLS ssl backlog=4096;
    ssl_certificate $work/up.pem;
    ssl_certificate_key $work/up.key;
    location / { default_type application/json; return 200 '$REPLY'; }
  }
CONF
)"
nginx_conf "$work/proxy.conf" ngx 16384 "$(cat <<CONF
  upstream api { server 127.0.0.1:$UP1; server 127.0.0.1:$UP2 backup; keepalive 128; }
  upstream sse { server 127.0.0.1:$SSE; keepalive 128; }
  upstream tls { server 127.0.0.1:$UPTLS; keepalive 128; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header x-api-key sk-bench-endpoint-key;
  proxy_set_header Authorization "Bearer sk-bench-endpoint-key";
  proxy_next_upstream error timeout http_500 http_502 http_503 http_504 http_429;
  proxy_buffering off;
  server { listen 127.0.0.1:$NGX backlog=4096; location / { proxy_pass http://api; } }
  server { listen 127.0.0.1:$NGX_SSE backlog=4096; location / { proxy_pass http://sse; } }
  server { listen 127.0.0.1:$NGX_TLS backlog=4096;
           location / { proxy_pass https://tls; proxy_ssl_verify on; proxy_ssl_session_reuse on;
                        proxy_ssl_trusted_certificate $work/ca.pem; proxy_ssl_name 127.0.0.1; } }
CONF
)"
cat >"$work/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 3000
defaults
  mode http
  timeout connect 10s
  timeout client 60s
  timeout server 60s
  http-reuse always
  retries 2
  option redispatch
frontend plain
  bind 127.0.0.1:$HAP
  default_backend api
frontend tls
  bind 127.0.0.1:$HAP_TLS
  default_backend api_tls
backend api
  http-request set-header x-api-key sk-bench-endpoint-key
  server a 127.0.0.1:$UP1 maxconn 1000
  server b 127.0.0.1:$UP2 backup
backend api_tls
  http-request set-header x-api-key sk-bench-endpoint-key
  server a 127.0.0.1:$UPTLS ssl verify required ca-file $work/ca.pem sni str(127.0.0.1)
CONF
mkdir -p "$work/up_body" "$work/ngx_body" "$work/ngx_proxy"
nginx -c "$work/upstream.conf" -p "$work" & pids+=($!)
nginx -c "$work/proxy.conf" -p "$work" & pids+=($!)
haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>"$work/haproxy.err" & hap_pid=$!; pids+=($hap_pid)
# The SSE upstream and latency probe are Rust (std only): a few µs of their own per event.
rustc -O --edition 2021 scripts/bench/sse_probe.rs -o "$work/sse_probe"
"$work/sse_probe" server "$SSE" & pids+=($!)
"$RELAY" "$FLOOR" "$UP1" & floor_pid=$!; pids+=($floor_pid)
"$RELAY" "$FLOOR_SSE" "$SSE" & pids+=($!)

cluster() { # name port1 port2
  cat <<JSON
{"profiles": {"$1": {"name": "$1", "endpoints": [
  {"id": "b0000001", "base_url": "http://127.0.0.1:$2", "api_key": "sk-bench-endpoint-key", "priority": 1},
  {"id": "b0000002", "base_url": "http://127.0.0.1:$3", "api_key": "sk-bench-endpoint-key", "priority": 2}]}}}
JSON
}
mkdir -p "$work/q1" "$work/q2" "$work/q4"
cluster bench "$UP1" "$UP2" >"$work/q1/cache.json"
cat >"$work/q4/cache.json" <<JSON
{"profiles": {"tls": {"name": "tls", "endpoints": [
  {"id": "b0000003", "base_url": "https://127.0.0.1:$UPTLS", "api_key": "sk-bench-endpoint-key", "priority": 1,
   "ca_file": "$work/ca.pem"}]}}}
JSON
cluster sse "$SSE" "$SSE" >"$work/q2/cache.json"
QCC_HOME=$work/q1 QCC_CONFIG=$work/q1/cache.json "$QCC" proxy start --cluster bench --port "$QPORT" --log-level warn >/dev/null 2>"$work/q1.err" & qpid=$!; pids+=($qpid)
QCC_HOME=$work/q2 QCC_CONFIG=$work/q2/cache.json "$QCC" proxy start --cluster sse --port "$QSSE" --log-level warn >/dev/null 2>"$work/q2.err" & qsse=$!; pids+=($qsse)
QCC_HOME=$work/q4 QCC_CONFIG=$work/q4/cache.json "$QCC" proxy start --cluster tls --port "$QTLS" --log-level warn >/dev/null 2>"$work/q4.err" & qtls=$!; pids+=($qtls)

for port in $UP1 $UPTLS $NGX $NGX_TLS $QPORT $QTLS $SSE $QSSE $NGX_SSE $HAP $HAP_TLS $FLOOR $FLOOR_SSE; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
ngx_worker=$(pgrep -P "$(cat "$work/ngx.pid")" | head -1)
[ -n "$ngx_worker" ] || { echo "bench: nginx proxy worker not found" >&2; exit 1; }

post_lua "$work/post.lua"

# Every request a new Claude Code session id: fills qcc's affinity table (10,000 sessions).
cat >"$work/sessions.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", nil, {
    ["content-type"] = "application/json", ["x-api-key"] = "proxy-managed",
    ["anthropic-version"] = "2023-06-01",
    ["x-claude-code-session-id"] = string.format("%08x-bench-session-%d", n, n) },
    '{"model":"claude-bench","max_tokens":64,"messages":[{"role":"user","content":"Say hello."}]}')
end
LUA

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
clk=$(getconf CLK_TCK)

rows=()
# run_wrk LOAD TARGET URL CONNS PID [extra wrk args]
run_wrk() {
  local load=$1 target=$2 url=$3 conns=$4 pid=$5; shift 5
  local t0 out rps p50 p99 cpu rss total
  t0=$([ "$pid" = - ] && echo 0 || ticks "$pid")
  out=$(wrk -t2 -c"$conns" -d"${DURATION}s" --latency -s "$work/post.lua" "$@" "$url/v1/messages")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  if [ "$pid" = - ]; then cpu=-; rss=-; else
    cpu=$(awk -v a="$t0" -v b="$(ticks "$pid")" -v c="$clk" 'BEGIN {printf "%.2f", (b-a)/c}')
    rss=$(awk -v k="$(hwm_kib "$pid")" 'BEGIN {printf "%.1f", k/1024}')
  fi
  rows+=("$load|$target|$rps|$p50|$p99|$rss|$cpu|$total|$errs")
}

echo "bench: keep-alive loads (${DURATION}s each)" >&2
for c in 32 256; do
  run_wrk "keep-alive c=$c" upstream "http://127.0.0.1:$UP1" "$c" -
  run_wrk "keep-alive c=$c" floor "http://127.0.0.1:$FLOOR" "$c" "$floor_pid"
  run_wrk "keep-alive c=$c" nginx "http://127.0.0.1:$NGX" "$c" "$ngx_worker"
  run_wrk "keep-alive c=$c" haproxy "http://127.0.0.1:$HAP" "$c" "$hap_pid"
  run_wrk "keep-alive c=$c" qcc "http://127.0.0.1:$QPORT" "$c" "$qpid"
done
echo "bench: keep-alive loads, TLS upstream" >&2
for c in 32 256; do
  run_wrk "TLS upstream c=$c" nginx "http://127.0.0.1:$NGX_TLS" "$c" "$ngx_worker"
  run_wrk "TLS upstream c=$c" haproxy "http://127.0.0.1:$HAP_TLS" "$c" "$hap_pid"
  run_wrk "TLS upstream c=$c" qcc "http://127.0.0.1:$QTLS" "$c" "$qtls"
done
echo "bench: keep-alive, a new session id per request (affinity table full)" >&2
run_wrk "sessions c=32" qcc "http://127.0.0.1:$QPORT" 32 "$qpid" -s "$work/sessions.lua"
bound=$(curl -s "http://127.0.0.1:$QPORT/_qcc/status" | jq .affinity.sessions)
echo "bench: new connection per request" >&2
run_wrk "new conn c=32" upstream "http://127.0.0.1:$UP1" 32 - -H "Connection: close"
run_wrk "new conn c=32" floor "http://127.0.0.1:$FLOOR" 32 "$floor_pid" -H "Connection: close"
run_wrk "new conn c=32" nginx "http://127.0.0.1:$NGX" 32 "$ngx_worker" -H "Connection: close"
run_wrk "new conn c=32" haproxy "http://127.0.0.1:$HAP" 32 "$hap_pid" -H "Connection: close"
run_wrk "new conn c=32" qcc "http://127.0.0.1:$QPORT" 32 "$qpid" -H "Connection: close"

# Counters: qcc must have answered every request wrk saw, and failed none.
status=$(curl -s "http://127.0.0.1:$QPORT/_qcc/status")
q_ok=$(jq .requests.successful <<<"$status"); q_fail=$(jq .requests.failed <<<"$status")
wrk_total=0
# (the TLS rows went through another qcc instance)
for r in "${rows[@]}"; do IFS='|' read -r l t _ _ _ _ _ n _ <<<"$r"; [ "$t" = qcc ] && [[ "$l" != TLS* ]] && wrk_total=$((wrk_total + n)); done

# SSE through POST /v1/messages (the probe adds the path): qcc's stream scanning and hold are on it.
echo "bench: SSE event latency (20 events, 20 ms apart, 5 streams each)" >&2
sse_lat() { # target url -> "p50 p99" in µs (median over 5 streams)
  local p50s=() p99s=() firsts=()
  for _ in 1 2 3 4 5; do
    read -r a b c _ < <("$work/sse_probe" latency "$2" 20 | sed 's/[a-z0-9_]*=//g')
    p50s+=("$a"); p99s+=("$b"); firsts+=("$c")
  done
  echo "$(printf '%s\n' "${p50s[@]}" | sort -n | sed -n 3p) $(printf '%s\n' "${p99s[@]}" | sort -n | sed -n 3p) $(printf '%s\n' "${firsts[@]}" | sort -n | sed -n 3p)"
}
read -r d50 d99 d1 < <(sse_lat upstream "http://127.0.0.1:$SSE/")
read -r f50 f99 f1 < <(sse_lat floor "http://127.0.0.1:$FLOOR_SSE/")
read -r n50 n99 n1 < <(sse_lat nginx "http://127.0.0.1:$NGX_SSE/")
read -r q50 q99 q1 < <(sse_lat qcc "http://127.0.0.1:$QSSE/")

echo "bench: $STREAMS concurrent slow streams for ${STREAM_SECS}s" >&2
ngx_sse_worker=$ngx_worker
s_ngx=$(python3 scripts/bench/sse.py streams "http://127.0.0.1:$NGX_SSE/" "$STREAMS" "$STREAM_SECS")
s_qcc=$(python3 scripts/bench/sse.py streams "http://127.0.0.1:$QSSE/" "$STREAMS" "$STREAM_SECS")
rss_ngx_streams=$(awk -v k="$(hwm_kib "$ngx_sse_worker")" 'BEGIN {printf "%.1f", k/1024}')
rss_qcc_streams=$(awk -v k="$(hwm_kib "$qsse")" 'BEGIN {printf "%.1f", k/1024}')
# Idle RSS: a fresh qcc that has served nothing.
QCC_HOME=$work/q1 QCC_CONFIG=$work/q1/cache.json "$QCC" proxy stop >/dev/null 2>&1 || true
mkdir -p "$work/q3"; cp "$work/q1/cache.json" "$work/q3/"
QCC_HOME=$work/q3 QCC_CONFIG=$work/q3/cache.json "$QCC" proxy start --cluster bench --port "$QIDLE" --log-level warn \
  --max-connections "$((IDLE_CLIENTS + 100))" >/dev/null 2>"$work/q3.err" & qidle=$!; pids+=($qidle)
sleep 1
rss_idle=$(awk -v k="$(hwm_kib "$qidle")" 'BEGIN {printf "%.1f", k/1024}')
# Then IDLE_CLIENTS keep-alive clients, each after one request, all held open and idle.
echo "bench: $IDLE_CLIENTS idle keep-alive clients" >&2
"$work/sse_probe" idle "http://127.0.0.1:$QIDLE" "$IDLE_CLIENTS" 3 >"$work/idle.out" & idle_probe=$!; pids+=($idle_probe)
for _ in $(seq 1 600); do [ -s "$work/idle.out" ] && break; sleep 0.1; done
idle_ok=$(sed 's/ok=//' "$work/idle.out")
idle_open=$(curl -s "http://127.0.0.1:$QIDLE/_qcc/status" | jq .connections.clients)
rss_idle_clients=$(awk -v k="$(hwm_kib "$qidle")" 'BEGIN {printf "%.1f", k/1024}')
wait "$idle_probe" || true

# The table.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a/b; else print "-" }'; }
printf '\n| load | target | req/s | p50 | p99 | peak RSS MiB | CPU s | qcc/nginx, qcc/haproxy, qcc/floor, qcc/upstream req/s |\n'
printf '|---|---|---|---|---|---|---|---|\n'
declare -A ngx_rps hap_rps up_rps floor_rps
for r in "${rows[@]}"; do
  IFS='|' read -r l t rps _ <<<"$r"
  case "$t" in nginx) ngx_rps[$l]=$rps ;; haproxy) hap_rps[$l]=$rps ;; upstream) up_rps[$l]=$rps ;; floor) floor_rps[$l]=$rps ;; esac
done
for r in "${rows[@]}"; do
  IFS='|' read -r l t rps p50 p99 rss cpu _ errs <<<"$r"
  rat=""
  [ "$t" = qcc ] && rat="$(ratio "$rps" "${ngx_rps[$l]:-0}"), $(ratio "$rps" "${hap_rps[$l]:-0}"), $(ratio "$rps" "${floor_rps[$l]:-0}"), $(ratio "$rps" "${up_rps[$l]:-0}")"
  [ "$t" = nginx ] || [ "$t" = haproxy ] && [ -n "${floor_rps[$l]:-}" ] && rat="($t/floor $(ratio "$rps" "${floor_rps[$l]}"))"
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$l" "$t" "$rps" "$p50" "$p99" "$rss" "$cpu" "$rat"
  [ -n "$errs" ] && echo "|   | ($t: $errs) |||||||"
done
printf '| SSE event latency | upstream | - | %sµs | %sµs | - | - | first event %sµs |\n' "$d50" "$d99" "$d1"
printf '| SSE event latency | floor | - | %sµs | %sµs | - | - | first event %sµs |\n' "$f50" "$f99" "$f1"
printf '| SSE event latency | nginx | - | %sµs | %sµs | - | - | first event %sµs |\n' "$n50" "$n99" "$n1"
printf '| SSE event latency | qcc | - | %sµs | %sµs | - | - | first event %sµs, added p50 %sµs |\n' "$q50" "$q99" "$q1" "$((q50 - d50))"
printf '| %s slow streams | nginx | %s | - | - | %s | - | |\n' "$STREAMS" "$s_ngx" "$rss_ngx_streams"
printf '| %s slow streams | qcc | %s | - | - | %s | - | |\n' "$STREAMS" "$s_qcc" "$rss_qcc_streams"
printf '| idle | qcc | - | - | - | %s | - | |\n' "$rss_idle"
printf '| %s idle keep-alive clients | qcc | ok=%s open=%s | - | - | %s | - | |\n' "$IDLE_CLIENTS" "$idle_ok" "$idle_open" "$rss_idle_clients"
printf '\naffinity sessions bound after the sessions load: %s (peak RSS above, row "sessions c=32")\n' "$bound"
printf '\nqcc counters: successful=%s failed=%s; wrk completed %s requests through qcc' "$q_ok" "$q_fail" "$wrk_total"
if [ "$q_fail" = 0 ] && [ "$q_ok" -ge "$wrk_total" ]; then echo " -> consistent"; else echo " -> MISMATCH"; exit 1; fi
