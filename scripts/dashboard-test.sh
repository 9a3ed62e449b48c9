#!/usr/bin/env bash
# The dashboard in a real headless browser, and /metrics through promtool (run by .ci/run).
# Installs what it needs: Debian's chromium and prometheus (for promtool), npm's playwright-core.
# Everything runs on 127.0.0.1 and stops by itself.
#
#   scripts/dashboard-test.sh [SCREENSHOT]      (default target/dashboard.png)
set -euo pipefail
cd "$(dirname "$0")/.."
shot=${1:-$PWD/target/dashboard.png}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need chromium || ! need promtool || ! need curl; then
  apt-get update -qq && apt-get install -y -qq chromium prometheus curl >/dev/null
fi
need node || { apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
cargo build -q
QCC=$PWD/target/debug/qcc

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true   # the proxies finish their last writes into $work first
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
(cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund -s playwright-core@1 >/dev/null)
cp scripts/dashboard/browse.mjs "$work/"   # beside its node_modules

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UPA=$(free_port) UPB=$(free_port)
echo fail >"$work/mode-a"; echo ok >"$work/mode-b"
python3 scripts/dashboard/mock.py "$UPA" "$work/mode-a" & pids+=($!)
python3 scripts/dashboard/mock.py "$UPB" "$work/mode-b" & pids+=($!)
for port in "$UPA" "$UPB"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
cat >"$work/cache.json" <<JSON
{"profiles": {"team": {"name": "team", "endpoints": [
  {"id": "a0000001", "base_url": "http://127.0.0.1:$UPA", "api_key": "sk-dash-a", "priority": 1,
   "metadata": {"name": "primary"}},
  {"id": "b0000001", "base_url": "http://127.0.0.1:$UPB", "api_key": "sk-dash-b", "priority": 2,
   "metadata": {"name": "backup"}}]}}}
JSON

start() { # name extra-args... -> sets $url
  local port; port=$(free_port)
  QCC_HOME=$work/$1 QCC_CONFIG=$work/cache.json "$QCC" proxy start --cluster team --port "$port" \
    --verify-interval 3600 "${@:2}" >"$work/$1.out" 2>&1 & pids+=($!)
  url=http://127.0.0.1:$port
  for _ in $(seq 100); do curl -s -o /dev/null "$url/_qcc/" && return; sleep 0.1; done
  echo "dashboard-test: proxy $1 did not start" >&2; cat "$work/$1.out" >&2; exit 1
}
traffic() { # url [key]
  for _ in 1 2 3; do
    curl -s -o /dev/null -X POST "$1/v1/messages" -H 'content-type: application/json' ${2:+-H "x-api-key: $2"} \
      -d '{"model":"m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
  done
}

start open; traffic "$url"
export THIRD_URL=http://127.0.0.1:$UPB
echo ok >"$work/mode-a"   # the primary answers again; the page's "Probe now" must restore it
mkdir -p "$(dirname "$shot")"
node "$work/browse.mjs" "$url/_qcc/" "$shot"
# What the page changed is in the files, as the CLI would have written it; no key left the proxy.
grep -q "sk-dash-rotated-0002" "$work/cache.json" && ! grep -q 'sk-dash-third-0001' "$work/cache.json" \
  || { echo "dashboard-test: the rotated key is not in the config" >&2; exit 1; }
grep -q '"priority": 7' "$work/cache.json" || { echo "dashboard-test: the edited priority is not saved" >&2; exit 1; }
! grep -q 'sk-dash-fourth' "$work/cache.json" || { echo "dashboard-test: the removed endpoint is still in the config" >&2; exit 1; }
grep -q '"strategy": "round_robin"' "$work/cache.json" || { echo "dashboard-test: the strategy is not saved" >&2; exit 1; }
grep -q '"name": "carol"' "$work/open/keys.json" || { echo "dashboard-test: the key is not saved" >&2; exit 1; }
rm "$work/open/keys.json"
QCC_HOME=$work/open QCC_CONFIG=$work/cache.json "$QCC" endpoint remove team third >/dev/null 2>&1

echo fail >"$work/mode-a"
# A second cluster that team's Haiku requests are routed to: its own row in the clusters section.
QCC_HOME=$work/open QCC_CONFIG=$work/cache.json "$QCC" endpoint add cheap --url "http://127.0.0.1:$UPB" \
  --key sk-dash-cheap-0005 --name cheap-1 >/dev/null 2>&1
QCC_HOME=$work/open QCC_CONFIG=$work/cache.json "$QCC" route add team --model 'claude-*haiku*' --to cheap >/dev/null
start keyed --access-key dash-key-123; traffic "$url" dash-key-123
EXPECT_ROUTE="model claude-*haiku* → cheap" node "$work/browse.mjs" "$url/_qcc/" "$work/keyed.png" dash-key-123

curl -s -H 'x-api-key: dash-key-123' "$url/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt" || { echo "dashboard-test: promtool rejects /metrics" >&2; exit 1; }
grep -q '^qcc_requests_total{endpoint="b0000001",name="backup",cluster="team",class="2xx"} 3$' "$work/metrics.txt" || { echo "dashboard-test: counters missing" >&2; exit 1; }
QCC_HOME=$work/open QCC_CONFIG=$work/cache.json "$QCC" route remove team 1 >/dev/null
# Client keys: an admin key opens the page; a user's key shows in the keys table.
QCC_HOME=$work/team QCC_CONFIG=$work/cache.json "$QCC" key add admin --admin >"$work/admin.key"
QCC_HOME=$work/team QCC_CONFIG=$work/cache.json "$QCC" key add bob --rpm 100 --daily-usd 5 >"$work/bob.key"
start team --access-log "$work/team.access"; traffic "$url" "$(cat "$work/bob.key")"
node "$work/browse.mjs" "$url/_qcc/" "$(dirname "$shot")/dashboard-keys.png" "$(cat "$work/admin.key")" bob
curl -s -H "x-api-key: $(cat "$work/admin.key")" "$url/metrics" >"$work/team-metrics.txt"
promtool check metrics <"$work/team-metrics.txt" || { echo "dashboard-test: promtool rejects /metrics with keys" >&2; exit 1; }
grep -q '^qcc_key_requests_today{key="bob"} 3$' "$work/team-metrics.txt" || { echo "dashboard-test: key series missing" >&2; exit 1; }

echo "dashboard-test: ok (promtool check metrics passed; screenshot $shot)"
