#!/usr/bin/env bash
# What routes cost (docs/benchmarks.md): the same qcc build, the same fixed-reply nginx on
# loopback, Claude Code-sized Messages requests (KB, and a small one) through four proxies —
#   none    a cluster without routes (the baseline: the body is never read)
#   model   a `--model claude-*haiku*` route the (Sonnet) request does not match
#   when    `--when tools` and `--when input-tokens>N` routes it does not match
#   image   a `--when image` route it does not match (every message walked: the worst case)
# in alternating rounds at CONNS connections and at 1: req/s, latency, qcc's CPU per request
# (from /proc). Loopback only; every run is bounded in time.
#
#   scripts/bench/routes.sh [QCC]    # ROUNDS=3 SECS=5 CONNS=16 KB=200
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/load.sh
ROUNDS=${ROUNDS:-3} SECS=${SECS:-5} CONNS=${CONNS:-16} KB=${KB:-200}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk || ! need curl; then
  apt-get update -qq && apt-get install -y -qq nginx wrk curl >/dev/null
fi
if [ $# -ge 1 ]; then QCC=$1; else cargo build --release --locked -q; QCC=$PWD/target/release/qcc; fi
UP=18581
scratch # $work, and $pids stopped on exit
nginx_conf "$work/up.conf" up 4096 "$(cat <<CONF
  client_max_body_size 10m;
  server { listen 127.0.0.1:$UP backlog=4096;
           location / { default_type application/json; return 200 '$REPLY'; } }
CONF
)"
nginx -c "$work/up.conf" -p "$work" & pids+=($!)
ep() { printf '{"id": "%s", "base_url": "http://127.0.0.1:%s", "api_key": "k", "priority": 1}' "$1" "$UP"; }
cat >"$work/cache.json" <<JSON
{"profiles": {
 "none":  {"name": "none",  "endpoints": [$(ep b0000001)]},
 "model": {"name": "model", "endpoints": [$(ep b0000002)], "routes": [{"model": "claude-*haiku*", "to": "other"}]},
 "when":  {"name": "when",  "endpoints": [$(ep b0000003)],
           "routes": [{"when": "tools", "to": "other"}, {"when": "input-tokens>100000000", "to": "other"}]},
 "image": {"name": "image", "endpoints": [$(ep b0000004)], "routes": [{"when": "image", "to": "other"}]},
 "other": {"name": "other", "endpoints": [$(ep b0000005)]}}}
JSON
port() { case $1 in none) echo 18591 ;; model) echo 18592 ;; when) echo 18593 ;; image) echo 18594 ;; esac; }
for c in none model when image; do
  mkdir -p "$work/$c"
  QCC_HOME=$work/$c QCC_CONFIG=$work/cache.json "$QCC" proxy start --cluster "$c" --port "$(port $c)" --log-level warn \
    --max-body 10000000 --no-access-log --max-connections 4000 >/dev/null 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$(port $c)/_qcc/status" && break; sleep 0.1; done
done
python3 - "$KB" >"$work/big.json" <<'PY'
import json, sys
kb = int(sys.argv[1])
turn = {"role": "user", "content": [{"type": "text", "text": "Refactor the parser so that " + "x" * 900}]}
msgs = [turn] * max(1, kb * 1024 // 990)
print(json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": msgs}), end="")
PY
printf '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"Say hello."}]}' >"$work/small.json"
for size in big small; do
  cat >"$work/$size.lua" <<LUA
local f = io.open("$work/$size.json", "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["content-type"] = "application/json"; wrk.headers["x-api-key"] = "proxy-managed"
LUA
done
for c in none model when image; do
  code=$(curl -s -o /dev/null -w '%{http_code} %header{x-qcc-cluster}' -H 'content-type: application/json' \
    --data-binary @"$work/big.json" "http://127.0.0.1:$(port $c)/v1/messages")
  [ "$code" = "200 $c" ] || { echo "routes: $c answered '$code' (not 200 from itself)" >&2; exit 1; }
done
cpu() { awk '{print $14 + $15}' "/proc/$(pgrep -f "proxy start --cluster $1 " | head -1)/stat"; }
tick=$(getconf CLK_TCK)
echo "routes: $ROUNDS rounds of ${SECS}s; big = $(($(wc -c <"$work/big.json") / 1024)) KB, small = $(wc -c <"$work/small.json") bytes"
printf '%-6s %-6s %-4s %-6s %12s %10s %10s %14s\n' round body conn routes req/s p50 p99 'qcc cpu/req'
for r in $(seq 1 "$ROUNDS"); do
  for size in big small; do
    for conns in "$CONNS" 1; do
      for c in none model when image; do
        c0=$(cpu $c)
        out=$(wrk -t1 -c"$conns" -d"${SECS}s" --latency -s "$work/$size.lua" "http://127.0.0.1:$(port $c)/v1/messages")
        c1=$(cpu $c)
        n=$(awk '/requests in/ {print $1}' <<<"$out")
        printf '%-6s %-6s %-4s %-6s %12s %10s %10s %12sus\n' "$r" "$size" "$conns" "$c" \
          "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1 == "50%" {print $2}' <<<"$out")" \
          "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
          "$(awk -v a="$c0" -v b="$c1" -v n="$n" -v t="$tick" 'BEGIN {printf "%.1f", (b - a) / t / n * 1e6}')"
      done
    done
  done
done
