#!/usr/bin/env bash
# Operator-style end-to-end test: drives the built qcc the way a deployment script would.
# Run by `cargo test` (tests/ops.rs), which starts the mock upstreams and passes:
#   QCC_BIN   the built binary
#   GOOD_URL  a mock upstream answering 200 JSON
#   DEAD_URL  an address that refuses connections
set -euo pipefail
: "${QCC_BIN:?}" "${GOOD_URL:?}" "${DEAD_URL:?}"
# The tools come from the machine (.ci/run installs them); a test never installs anything.
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "ops.sh: needs $tool on PATH (Debian: apt-get install $tool)" >&2; exit 1; }
done

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export QCC_HOME="$work/home" QCC_CONFIG="$work/cache.json" HOME="$work"
unset QCC_ACCESS_KEY CLAUDE_CONFIG_DIR NOTIFY_SOCKET

fail() {
  echo "ops.sh: FAIL: $*" >&2
  [ -f "$QCC_HOME/proxy.log" ] && tail -40 "$QCC_HOME/proxy.log" >&2
  exit 1
}
step() { echo "ops.sh: $*"; }

# Wait (bounded) until a command succeeds.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 100); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for: $what"
}

DEAD_KEY=sk-ant-dead-000000000000000000001111
GOOD_KEY=sk-ant-good-000000000000000000002222
NEW_KEY=sk-ant-new-0000000000000000000003333

step "configure a cluster: a dead primary, a working secondary"
dead_id=$("$QCC_BIN" endpoint add ops --url "$DEAD_URL" --key "$DEAD_KEY" --priority 1 --max-failures 1)
good_id=$("$QCC_BIN" endpoint add ops --url "$GOOD_URL" --key "$GOOD_KEY" --priority 2)
[[ "$dead_id" =~ ^[0-9a-f]{8}$ ]] || fail "endpoint add printed '$dead_id', not an id"

step "status before start: not running, non-zero exit"
if "$QCC_BIN" proxy status >"$work/st" 2>&1; then fail "proxy status succeeded with no proxy"; fi
grep -qi "not running" "$work/st" || fail "proxy status did not say 'not running': $(cat "$work/st")"

step "a stale pid file does not block a start"
mkdir -p "$QCC_HOME"
echo '{"pid": 999999, "host": "127.0.0.1", "port": 1, "start_time": "2025-10-17T10:00:00.000000"}' >"$QCC_HOME/proxy.pid"

step "start in the background and wait until ready"
"$QCC_BIN" proxy start --cluster ops --host 127.0.0.1 --port 0 --verify-interval 3600 >"$work/out" 2>"$work/err" &
pid=$!
wait_for "ANTHROPIC_BASE_URL line" grep -q '^ANTHROPIC_BASE_URL=' "$work/out"
base=$(sed -n 's/^ANTHROPIC_BASE_URL=//p' "$work/out")
wait_for "pid file" test -s "$QCC_HOME/proxy.pid"
[ "$(jq -r .pid "$QCC_HOME/proxy.pid")" = "$pid" ] || fail "pid file names $(jq -r .pid "$QCC_HOME/proxy.pid"), not $pid"
[ "$(jq -r .port "$QCC_HOME/proxy.pid")" = "${base##*:}" ] || fail "pid file port differs from $base"

step "a second start on the same state dir fails and leaves the first alone"
if "$QCC_BIN" proxy start --cluster ops --port 0 >"$work/out2" 2>"$work/err2"; then fail "second start succeeded"; fi
grep -q "already running" "$work/err2" || fail "second start said: $(cat "$work/err2")"
kill -0 "$pid" || fail "first proxy died"

step "status"
"$QCC_BIN" proxy status >"$work/st" || fail "proxy status failed"
grep -q "ops" "$work/st" || fail "proxy status does not name the cluster"

step "a request fails over from the dead primary to the secondary"
code=$(curl -sS -o "$work/resp" -w '%{http_code}' -X POST "$base/v1/messages" \
  -H 'content-type: application/json' -H 'x-api-key: proxy-managed' -d '{"model":"m","max_tokens":1}')
[ "$code" = 200 ] || fail "request got $code: $(cat "$work/resp")"

step "the failure shows in queue status"
"$QCC_BIN" queue status --json >"$work/q" || fail "queue status failed"
[ "$(jq -r .failed_endpoints_count "$work/q")" = 1 ] || fail "queue: $(cat "$work/q")"
[ "$(jq -r '.failed_endpoints[0]' "$work/q")" = "$dead_id" ] || fail "queue does not hold $dead_id"
[ "$(jq -r .stats.total_failed "$work/q")" = 1 ] || fail "total_failed: $(cat "$work/q")"
"$QCC_BIN" queue status | grep -q "$dead_id" || fail "queue status table lacks $dead_id"
"$QCC_BIN" health status | grep -q "$good_id" || fail "health status table lacks $good_id"

step "reload with SIGHUP picks up a new endpoint, keeps connections and health"
new_id=$("$QCC_BIN" endpoint add ops --url "$GOOD_URL" --key "$NEW_KEY" --priority 3)
kill -HUP "$pid"
wait_for "reloaded endpoint set" sh -c "'$QCC_BIN' proxy status --json | jq -e '.endpoints | map(.id) | index(\"$new_id\")'"
"$QCC_BIN" proxy status --json >"$work/s"
[ "$(jq -r --arg id "$good_id" '.endpoints[] | select(.id==$id) | .health.total_requests' "$work/s")" = 1 ] \
  || fail "health of $good_id was not kept across reload: $(cat "$work/s")"

step "a broken config on reload is logged and the old one kept"
cp "$QCC_CONFIG" "$work/config.bak"
echo '{ broken' >"$QCC_CONFIG"
kill -HUP "$pid"
wait_for "reload error in log" grep -q "reload failed" "$QCC_HOME/proxy.log"
code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$base/v1/messages" -d '{}')
[ "$code" = 200 ] || fail "request after a broken reload got $code"
cp "$work/config.bak" "$QCC_CONFIG"

step "stop: SIGTERM, drain, pid file removed, exit code 0"
"$QCC_BIN" proxy stop >"$work/stop" || fail "proxy stop failed: $(cat "$work/stop")"
set +e
wait "$pid"
rc=$?
set -e
pid=""
[ "$rc" = 0 ] || fail "proxy exited with $rc"
[ ! -e "$QCC_HOME/proxy.pid" ] || fail "pid file left behind"
[ "$(jq -r '.stats.total_failed' "$QCC_HOME/failure_endpoints.json")" = 1 ] || fail "queue file not persisted"

step "no key appears in any log or output"
for key in "$DEAD_KEY" "$GOOD_KEY" "$NEW_KEY"; do
  if grep -rqF "$key" "$QCC_HOME/proxy.log" "$work/out" "$work/err" "$work/st" "$work/q" "$work/s" "$work/stop"; then
    fail "a key leaked into logs or output"
  fi
done

step "logs"
"$QCC_BIN" proxy logs -n 5 >"$work/logs" || fail "proxy logs failed"
[ "$(wc -l <"$work/logs")" -le 5 ] || fail "proxy logs -n 5 printed more than 5 lines"
grep -q "stopped" "$work/logs" || fail "last log lines do not show the stop"

echo "ops.sh: all checks passed"
