#!/usr/bin/env bash
# What translation costs (docs/benchmarks.md): the same qcc build, the same fixed-reply nginx on
# loopback, a 200 KB Claude Code-sized Messages request sent three ways —
#   plain   an Anthropic-format endpoint, the body forwarded byte for byte
#   mapped  the same with a model map (the model's value spliced into the body)
#   openai  an OpenAI-format endpoint (the request translated, the reply translated back)
# in alternating rounds at CONNS connections (req/s, latency) and at 1 (the time a request adds);
# then the time to the first text delta of a stream (Anthropic vs translated), and qcc's RSS with
# STREAMS translated streams open at once. Loopback only; every run is bounded in time.
#
#   scripts/bench/translate.sh [QCC]    # ROUNDS=3 SECS=6 CONNS=16 KB=200 FIRST=200 STREAMS=1000
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/load.sh
ROUNDS=${ROUNDS:-3} SECS=${SECS:-6} CONNS=${CONNS:-16} KB=${KB:-200} FIRST=${FIRST:-200} STREAMS=${STREAMS:-1000}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk || ! need curl; then
  apt-get update -qq && apt-get install -y -qq nginx wrk curl >/dev/null
fi
if [ $# -ge 1 ]; then QCC=$1; else cargo build --release --locked -q; QCC=$PWD/target/release/qcc; fi
UP=18481 SSEUP=18482 QP=18491 QM=18492 QO=18493 QSA=18494 QSO=18495 QR=18496
scratch # $work, and $pids stopped on exit
CHAT='{"id":"chatcmpl-bench","object":"chat.completion","model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the bench upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8}}'
CHUNKS=$(
  for w in 'Hello, ' 'Hello, ' 'Hello, ' 'Hello, ' 'Hello, ' 'Hello, ' 'Hello, ' 'Hello, ' 'Hello, ' 'Hello, '; do
    printf 'data: {"id":"c","model":"bench","choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' "$w"
  done
  printf 'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
  printf 'data: {"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20}}\n\ndata: [DONE]\n\n.'
)
CHUNKS=${CHUNKS%.}
esc() { sed "s/'/\\\\'/g" <<<"$1" | awk 'BEGIN{ORS="\\n"} {print}'; }
nginx_conf "$work/up.conf" up 4096 "$(cat <<CONF
  client_max_body_size 10m;
  server { listen 127.0.0.1:$UP backlog=4096;
           location /v1/chat/completions { default_type application/json; return 200 '$CHAT'; }
           location /sse/v1/chat/completions { default_type text/event-stream; return 200 '$(esc "$CHUNKS")'; }
           location /sse/v1/messages { default_type text/event-stream; return 200 '$(esc "$STREAM")'; }
           location / { default_type application/json; return 200 '$REPLY'; } }
CONF
)"
nginx -c "$work/up.conf" -p "$work" & pids+=($!)
python3 scripts/bench/sse.py server $SSEUP openai & pids+=($!)
ep() { # ID URL FORMAT [MAP]
  local meta="{\"format\": \"$3\""
  [ -n "${4:-}" ] && meta="$meta, \"model_map\": [[\"claude-*\", \"$4\"]]"
  printf '{"id": "%s", "base_url": "%s", "api_key": "k", "priority": 1, "metadata": %s}}' "$1" "$2" "$meta"
}
cat >"$work/cache.json" <<JSON
{"profiles": {
 "plain":  {"name": "plain",  "endpoints": [$(ep b0000001 "http://127.0.0.1:$UP" anthropic)]},
 "mapped": {"name": "mapped", "endpoints": [$(ep b0000002 "http://127.0.0.1:$UP" anthropic glm-4.6)]},
 "openai": {"name": "openai", "endpoints": [$(ep b0000003 "http://127.0.0.1:$UP/v1" openai glm-4.6)]},
 "sa":     {"name": "sa",     "endpoints": [$(ep b0000004 "http://127.0.0.1:$UP/sse" anthropic)]},
 "so":     {"name": "so",     "endpoints": [$(ep b0000005 "http://127.0.0.1:$UP/sse/v1" openai)]},
 "rss":    {"name": "rss",    "endpoints": [$(ep b0000006 "http://127.0.0.1:$SSEUP/v1" openai)]}}}
JSON
start() { # CLUSTER PORT
  mkdir -p "$work/$1"
  QCC_HOME=$work/$1 QCC_CONFIG=$work/cache.json "$QCC" proxy start --cluster "$1" --port "$2" --log-level warn \
    --max-body 10000000 --no-access-log --max-connections 4000 >/dev/null 2>&1 & pids+=($!)
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$2/_qcc/status" && return; sleep 0.1; done
  echo "translate: qcc did not start" >&2; exit 1
}
start plain $QP; start mapped $QM; start openai $QO; start sa $QSA; start so $QSO; start rss $QR
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
for c in plain mapped openai; do # each answers before it is measured
  port=$QP; [ $c = mapped ] && port=$QM; [ $c = openai ] && port=$QO
  code=$(curl -s -o "$work/$c.out" -w '%{http_code}' -H 'content-type: application/json' --data-binary @"$work/body.json" "http://127.0.0.1:$port/v1/messages")
  [ "$code" = 200 ] || { echo "translate: $c answered $code: $(head -c 300 "$work/$c.out")" >&2; exit 1; }
done
echo "translate: $ROUNDS rounds of ${SECS}s, a $(($(wc -c <"$work/body.json") / 1024)) KB body"
# qcc's own CPU time (user + system, in clock ticks) from /proc.
cpu() { awk '{print $14 + $15}' "/proc/$(pgrep -f "proxy start --cluster $1 " | head -1)/stat"; }
tick=$(getconf CLK_TCK)
printf '%-6s %-4s %-7s %12s %10s %10s %10s %14s\n' round conn body req/s p50 p90 p99 'qcc cpu/req'
for r in $(seq 1 "$ROUNDS"); do
  for conns in "$CONNS" 1; do
    for which in plain mapped openai; do
      port=$QP; [ $which = mapped ] && port=$QM; [ $which = openai ] && port=$QO
      c0=$(cpu $which)
      out=$(wrk -t1 -c"$conns" -d"${SECS}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/v1/messages")
      c1=$(cpu $which)
      n=$(awk '/requests in/ {print $1}' <<<"$out")
      printf '%-6s %-4s %-7s %12s %10s %10s %10s %12sus\n' "$r" "$conns" "$which" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
        "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "90%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
        "$(awk -v a="$c0" -v b="$c1" -v n="$n" -v t="$tick" 'BEGIN {printf "%.0f", (b - a) / t / n * 1e6}')"
    done
  done
done
# Time to the first text delta: qcc holds a stream's head until its first content event, so the
# first byte a client gets comes with the first delta.
small='{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello."}]}'
first() { # PORT -> median ms over $FIRST requests
  for _ in $(seq 1 "$FIRST"); do
    curl -s -o /dev/null -w '%{time_starttransfer}\n' -H 'content-type: application/json' -d "$small" "http://127.0.0.1:$1/v1/messages"
  done | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int(NR/2)+1]*1000}'
}
for _ in 1 2; do
  printf 'first delta, median of %s: anthropic %s ms, translated %s ms\n' "$FIRST" "$(first $QSA)" "$(first $QSO)"
done
# Many translated streams open at once (one chunk a second for 10 s each).
pid=$(pgrep -f "proxy start --cluster rss " | head -1)
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
before=$(rss)
python3 scripts/bench/sse.py streams "http://127.0.0.1:$QR/" "$STREAMS" 10 >"$work/streams.out" & sp=$!
sleep 6
during=$(rss)
wait $sp || true
printf 'RSS with %s translated streams open: %s KiB (idle before: %s KiB); %s\n' "$STREAMS" "$during" "$before" "$(cat "$work/streams.out")"
