#!/usr/bin/env bash
# What a model map costs: the same qcc build serving a 200 KB Messages request through an
# endpoint with a model map (the body parsed and written back) and through one without (the
# body forwarded byte for byte), in alternating rounds against a fixed-reply nginx on loopback.
#
#   scripts/bench/mapping.sh [QCC]           # ROUNDS=3 SECS=6 CONNS=16 KB=200
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/load.sh
ROUNDS=${ROUNDS:-3} SECS=${SECS:-6} CONNS=${CONNS:-16} KB=${KB:-200}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then
  apt-get update -qq && apt-get install -y -qq nginx wrk curl >/dev/null
fi
if [ $# -ge 1 ]; then QCC=$1; else cargo build --release --locked -q; QCC=$PWD/target/release/qcc; fi
UP=18381 QP=18391 QM=18392
scratch # $work, and $pids stopped on exit
nginx_conf "$work/up.conf" up 4096 "$(cat <<CONF
  client_max_body_size 10m;
  server { listen 127.0.0.1:$UP backlog=4096;
           location / { default_type application/json; return 200 '$REPLY'; } }
CONF
)"
nginx -c "$work/up.conf" -p "$work" & pids+=($!)
cat >"$work/cache.json" <<JSON
{"profiles": {
 "plain": {"name": "plain", "endpoints": [{"id": "b0000001", "base_url": "http://127.0.0.1:$UP", "api_key": "k", "priority": 1}]},
 "mapped": {"name": "mapped", "endpoints": [{"id": "b0000002", "base_url": "http://127.0.0.1:$UP", "api_key": "k", "priority": 1,
            "metadata": {"model_map": [["claude-*", "glm-4.6"]]}}]}}}
JSON
# A Messages request of about KB kilobytes, as a long Claude Code conversation sends it.
python3 - "$KB" >"$work/body.json" <<'PY'
import json, sys
kb = int(sys.argv[1])
turn = {"role": "user", "content": "Refactor the parser so that " + "x" * 900}
msgs = [turn] * max(1, kb * 1024 // 960)
print(json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": msgs}), end="")
PY
cat >"$work/post.lua" <<LUA
local f = io.open("$work/body.json", "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["content-type"] = "application/json"; wrk.headers["x-api-key"] = "proxy-managed"
LUA
start() { # CLUSTER PORT
  mkdir -p "$work/$1"
  QCC_HOME=$work/$1 QCC_CONFIG=$work/cache.json "$QCC" proxy start --cluster "$1" --port "$2" --log-level warn \
    --max-body 10000000 >/dev/null 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$2/_qcc/status" && return; sleep 0.1; done
  echo "mapping: qcc did not start" >&2; exit 1
}
start plain $QP
start mapped $QM
echo "mapping: $ROUNDS rounds of ${SECS}s, $CONNS connections, a $(($(wc -c <"$work/body.json") / 1024)) KB body"
printf '%-6s %-7s %12s %10s %10s %10s\n' round body req/s p50 p90 p99
for r in $(seq 1 "$ROUNDS"); do
  for which in plain mapped; do
    port=$QP; [ $which = mapped ] && port=$QM
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/v1/messages")
    printf '%-6s %-7s %12s %10s %10s %10s\n' "$r" "$which" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
      "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "90%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")"
  done
done
