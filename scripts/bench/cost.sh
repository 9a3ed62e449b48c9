#!/usr/bin/env bash
# qcc's own cost per request, in numbers that do not move with the machine's mood: user-space
# instructions (valgrind callgrind) and heap allocations (valgrind dhat) per forwarded request,
# under a short wrk load on loopback against a fixed-reply nginx: a JSON Messages reply, then a
# streamed one (16 events). The kernel's share (the
# four socket calls) is not in these: see scripts/bench.sh for throughput.
#
#   scripts/bench/cost.sh                          # the tree's release build
#   scripts/bench/cost.sh /path/to/qcc-before      # another build, to compare
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/load.sh
need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk || ! need valgrind || ! need jq; then
  echo "cost: installing nginx, wrk, valgrind, jq" >&2
  apt-get update -qq && apt-get install -y -qq nginx wrk valgrind jq curl >/dev/null
fi
if [ $# -ge 1 ]; then QCC=$1; else cargo build --release --locked -q; QCC=$PWD/target/release/qcc; fi
SECS=${SECS:-3}
UP=18181 Q=18191

scratch # $work, and $pids stopped on exit
nginx_conf "$work/up.conf" up 1024 "$(cat <<CONF
  server { listen 127.0.0.1:$UP;
           location / { default_type application/json; return 200 '$REPLY'; }
           location /sse/ { default_type text/event-stream; return 200 '$STREAM'; } }
CONF
)"
nginx -c "$work/up.conf" -p "$work" & pids+=($!)
post_lua "$work/post.lua"
cat >"$work/cache.json" <<JSON
{"profiles": {"json": {"name": "json", "endpoints": [
  {"id": "b0000001", "base_url": "http://127.0.0.1:$UP", "api_key": "sk-bench-endpoint-key", "priority": 1}]},
 "sse": {"name": "sse", "endpoints": [
  {"id": "b0000002", "base_url": "http://127.0.0.1:$UP/sse", "api_key": "sk-bench-endpoint-key", "priority": 1}]}}}
JSON

# measure CLUSTER TOOL OUTFILE SECS: run qcc for CLUSTER under valgrind TOOL, give it one request
# and then SECS seconds of wrk load (none for 0), stop it; prints how many requests it served.
measure() {
  local cluster=$1
  shift
  QCC_HOME=$work QCC_CONFIG=$work/cache.json valgrind --tool="$1" "--$1-out-file=$2" \
    "$QCC" proxy start --cluster "$cluster" --port "$Q" --log-level warn >/dev/null 2>"$work/$1.err" &
  local vg=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$Q/_qcc/status" && break; sleep 0.2; done
  curl -s -o /dev/null -H 'content-type: application/json' -d '{"model":"m","max_tokens":1,"messages":[]}' \
    "http://127.0.0.1:$Q/v1/messages"
  if [ "$3" != 0 ]; then
    wrk -t1 -c4 -d"${3}s" -s "$work/post.lua" "http://127.0.0.1:$Q/v1/messages" >/dev/null
  fi
  local n
  n=$(curl -s "http://127.0.0.1:$Q/_qcc/status" | jq .requests.successful)
  kill -INT "$vg"
  wait "$vg" || true
  echo "$n"
}
instructions() { awk '/^summary:|^totals:/ {print $2; exit}' "$1"; }
blocks() { jq '[.pps[].tbk] | add' "$1"; }

# Everything but the load (start-up, status calls, the state files written at the stop) is
# measured once without it and taken away, so the figures are per request whatever the rate.
echo "$QCC"
for cluster in json sse; do
  n0=$(measure "$cluster" callgrind "$work/cg0.out" 0)
  n=$(measure "$cluster" callgrind "$work/cg.out" "$SECS")
  ir=$(($(instructions "$work/cg.out") - $(instructions "$work/cg0.out")))
  m0=$(measure "$cluster" dhat "$work/dhat0.json" 0)
  m=$(measure "$cluster" dhat "$work/dhat.json" "$SECS")
  b=$(($(blocks "$work/dhat.json") - $(blocks "$work/dhat0.json")))
  awk -v ir="$ir" -v n="$((n - n0))" -v b="$b" -v m="$((m - m0))" -v what="$cluster" 'BEGIN {
    printf "  %-4s reply: user-space instructions per request: %d (%d requests)\n", what, ir / n, n
    printf "  %-4s reply: heap allocations per request:        %.1f (%d requests)\n", what, b / m, m }'
done
