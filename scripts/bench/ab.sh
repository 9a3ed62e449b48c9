#!/usr/bin/env bash
# Two qcc builds back to back under the same load, in alternating rounds, on loopback: the way
# to see what a change to the hot path did when the machine's speed moves by 15 % between runs.
# Both proxies serve the same fixed-reply nginx upstream (plain, or TLS with TLS=1); wrk runs
# ROUNDS x SECS against each in turn and prints req/s and latency percentiles per round.
#
#   scripts/bench/ab.sh OLD_QCC NEW_QCC                 # ROUNDS=4 SECS=6 CONNS=32
#   CONNS=256 TLS=1 scripts/bench/ab.sh old new
#   KEY=1 MAP=1 scripts/bench/ab.sh old new   # a client key with a daily budget; a model map
#   RULES=1 scripts/bench/ab.sh old new        # request rules: a field the body carries cut out
#   ARGS_OLD=--no-access-log scripts/bench/ab.sh qcc qcc   # one build, a flag apart (history off/on)
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/load.sh
[ $# -eq 2 ] || { echo "usage: scripts/bench/ab.sh OLD_QCC NEW_QCC" >&2; exit 2; }
OLD=$1 NEW=$2
ROUNDS=${ROUNDS:-4} SECS=${SECS:-6} CONNS=${CONNS:-32} TLS=${TLS:-0} KEY=${KEY:-0} MAP=${MAP:-0} RULES=${RULES:-0}
need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk || ! need openssl; then
  apt-get update -qq && apt-get install -y -qq nginx wrk openssl curl >/dev/null
fi
UP=18281 UPS=18282 QA=18291 QB=18292
scratch # $work, and $pids stopped on exit
# A CA and a certificate for 127.0.0.1 signed by it (webpki refuses a CA as the server's own).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ab CA" -keyout "$work/ca.key" -out "$work/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$work/up.key" -out "$work/up.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$work/ext.cnf"
openssl x509 -req -in "$work/up.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
  -extfile "$work/ext.cnf" -out "$work/up.pem" 2>/dev/null
nginx_conf "$work/up.conf" up 4096 "$(cat <<CONF
  server { listen 127.0.0.1:$UP backlog=4096; listen 127.0.0.1:$UPS ssl backlog=4096;
           ssl_certificate $work/up.pem; ssl_certificate_key $work/up.key;
           location / { default_type application/json; return 200 '$REPLY'; } }
CONF
)"
nginx -c "$work/up.conf" -p "$work" & pids+=($!)
if [ "$TLS" = 1 ]; then url="https://127.0.0.1:$UPS"; else url="http://127.0.0.1:$UP"; fi
map=""; [ "$MAP" = 1 ] && map=', "metadata": {"model_map": [["claude-*", "glm-4.6"]]}'
[ "$RULES" = 1 ] && map=', "metadata": {"rules": {"drop_fields": ["context_management"]}}'
cat >"$work/cache.json" <<JSON
{"profiles": {"c": {"name": "c", "endpoints": [
  {"id": "b0000001", "base_url": "$url", "api_key": "sk-bench-endpoint-key", "priority": 1, "ca_file": "$work/ca.pem"$map}]}}}
JSON
post_lua "$work/post.lua"
# With rules, the body carries what they cut (as Claude Code's does).
[ "$RULES" = 1 ] && sed -i 's/"max_tokens":64,/"max_tokens":64,"context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},/' "$work/post.lua"
auth=()
if [ "$KEY" = 1 ]; then
  # One client key (with a daily budget, so its requests reserve an estimate), in both homes.
  mkdir -p "$work/keys" "$work/old" "$work/new"
  key=$(QCC_HOME=$work/keys QCC_CONFIG=$work/cache.json "$NEW" key add bench --daily-tokens 1000000000000 2>/dev/null)
  cp "$work/keys/keys.json" "$work/old/"; cp "$work/keys/keys.json" "$work/new/"
  sed -i "s/proxy-managed/$key/" "$work/post.lua"
  auth=(-H "x-api-key: $key")
fi
start() { # BINARY PORT NAME [FLAGS]
  mkdir -p "$work/$3"
  # shellcheck disable=SC2086 # (FLAGS: words on purpose)
  QCC_HOME=$work/$3 QCC_CONFIG=$work/cache.json "$1" proxy start --cluster c --port "$2" --log-level warn ${4:-} \
    >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "${auth[@]}" "http://127.0.0.1:$2/_qcc/status"; then
      # One request must get through: a load of errors measures nothing.
      code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -d '{}' "http://127.0.0.1:$2/v1/messages")
      [ "$code" = 200 ] || { echo "ab: $1 answers $code, not 200: check the setup" >&2; exit 1; }
      return
    fi
    sleep 0.1
  done
  echo "ab: $1 did not start" >&2; exit 1
}
start "$OLD" $QA old "${ARGS_OLD:-}"
start "$NEW" $QB new "${ARGS_NEW:-}"
echo "ab: $ROUNDS rounds of ${SECS}s, $CONNS connections, $([ "$TLS" = 1 ] && echo TLS || echo plain) upstream$([ "$KEY" = 1 ] && echo ", a client key with a budget")$([ "$MAP" = 1 ] && echo ", a model map")$([ "$RULES" = 1 ] && echo ", request rules")"
printf '%-6s %-4s %12s %10s %10s %10s\n' round build req/s p50 p90 p99
for r in $(seq 1 "$ROUNDS"); do
  for which in old new; do
    port=$QA; [ $which = new ] && port=$QB
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$work/post.lua" "http://127.0.0.1:$port/v1/messages")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out"); p90=$(awk '$1 == "90%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    printf '%-6s %-4s %12s %10s %10s %10s\n' "$r" "$which" "$rps" "$p50" "$p90" "$p99"
  done
done
