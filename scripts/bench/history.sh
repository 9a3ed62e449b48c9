#!/usr/bin/env bash
# What a request-history search costs while the proxy serves (issue 31): a 100 MB access log
# (about 250,000 lines), searched through /_qcc/logs for a rare match (a full scan) and for the
# newest page; the time to the first page, and wrk's latency for normal traffic measured alone
# and during back-to-back full-scan searches. Loopback only, bounded, stops by itself.
#
#   scripts/bench/history.sh            # SECS=8 CONNS=32 SIZE_MB=100
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/load.sh
SECS=${SECS:-8} CONNS=${CONNS:-32} SIZE_MB=${SIZE_MB:-100}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk || ! need curl; then
  apt-get update -qq && apt-get install -y -qq nginx wrk curl >/dev/null
fi
cargo build --release -q
QCC=$PWD/target/release/qcc
UP=18381 PORT=18391
scratch
nginx_conf "$work/up.conf" up 4096 "  server { listen 127.0.0.1:$UP backlog=4096;
           location / { default_type application/json; return 200 '$REPLY'; } }"
nginx -c "$work/up.conf" -p "$work" & pids+=($!)
cat >"$work/cache.json" <<JSON
{"profiles": {"c": {"name": "c", "endpoints": [
  {"id": "b0000001", "base_url": "http://127.0.0.1:$UP", "api_key": "sk-bench-endpoint-key", "priority": 1}]}}}
JSON
# A log of SIZE_MB in the shape qcc writes, oldest first; one line in the middle is the rare one.
python3 - "$work/access.log" "$SIZE_MB" <<'PY'
import json, sys
path, mb = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    i, size, target = 0, 0, mb * 1024 * 1024
    while size < target:
        key = "needle" if i == 120000 else ["alice", "bob", "ci-bot"][i % 3]
        line = json.dumps({"time": "2026-11-%02dT%02d:%02d:%02d.000000" % (1 + i // 86400 % 28, i // 3600 % 24, i // 60 % 60, i % 60),
            "method": "POST", "path": "/v1/messages", "endpoint": "b0000001", "endpoint_name": "main",
            "status": "200" if i % 50 else "503", "attempts": 1, "ttfb_ms": 420, "duration_ms": 3100,
            "bytes_in": 18000, "bytes_out": 5200, "session": "s%07d" % (i % 997), "key": key,
            "model_requested": None, "model_sent": None, "skipped_for_headroom": None,
            "tried": [{"endpoint": "b0000001", "name": "main", "outcome": "200", "ms": 3100}],
            "tokens": {"model": "claude-sonnet-4-5", "input": 12, "output": 400, "cache_creation": 0, "cache_read": 15000}},
            separators=(",", ":")) + "\n"
        f.write(line); size += len(line); i += 1
print("history: %d lines, %.0f MB" % (i, size / 1048576))
PY
QCC_HOME=$work/h QCC_CONFIG=$work/cache.json "$QCC" proxy start --cluster c --port $PORT --log-level warn \
  --access-log "$work/access.log" >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/_qcc/status" && break; sleep 0.1; done
post_lua "$work/post.lua"
q() { curl -s -o "$work/page.json" -w '%{time_total}' "http://127.0.0.1:$PORT/_qcc/logs?$1"; }
echo "history: newest page (no filter):      $(q 'n=50') s"
echo "history: newest page of one key:       $(q 'n=50&key=bob') s"
echo "history: the one rare line (full scan): $(q 'n=50&key=needle') s, $(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(len(p["entries"]), "found,", p["scanned_bytes"]//1048576, "MiB read")' "$work/page.json")"
lat() { wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$work/post.lua" "http://127.0.0.1:$PORT/v1/messages" |
  awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {printf "%s req/s, p50 %s, p99 %s", r, p50, p99}'; }
echo "history: traffic alone:                $(lat)"
( end=$((SECONDS + SECS + 1)); n=0; while [ $SECONDS -lt $end ]; do q 'n=50&key=needle' >/dev/null; n=$((n+1)); done
  echo "$n" >"$work/searches" ) &
searcher=$!
sleep 0.3
echo "history: traffic during full scans:    $(lat)"
wait $searcher
echo "history: $(cat "$work/searches") full-scan searches ran during that run"
