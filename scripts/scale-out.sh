#!/usr/bin/env bash
# Two qcc processes behind HAProxy (docs/scale-out.md), on loopback, and what that setup promises:
#   - a Claude Code session stays on one qcc (balance hdr(x-claude-code-session-id)),
#   - stopping one qcc (SIGTERM: it drains) loses no request: its in-flight requests finish,
#     HAProxy sends the rest to the other one.
# Installs Debian's haproxy if missing. Bounded: 600 requests, stops by itself. Run by .ci/run.
#
#   scripts/scale-out.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v haproxy >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq haproxy >/dev/null; }
cargo build -q
QCC=$PWD/target/debug/qcc
. scripts/bench/load.sh
scratch # $work, and $pids stopped on exit
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "scale-out: nothing on port $1" >&2; exit 1; }

# One upstream that takes 200 ms per answer, so requests are in flight when a qcc stops.
UP=$(free_port)
echo "slow 0.2" >"$work/mode"
python3 scripts/dashboard/mock.py "$UP" "$work/mode" & pids+=($!)
wait_port "$UP"
cat >"$work/cache.json" <<JSON
{"profiles": {"team": {"name": "team", "endpoints": [
  {"id": "a0000001", "base_url": "http://127.0.0.1:$UP", "api_key": "sk-scale-a", "priority": 1}]}}}
JSON

# The team's keys are made once and copied to each instance (each counts its own limits).
mkdir -p "$work/q1" "$work/q2"
KEY=$(QCC_HOME=$work/q1 QCC_CONFIG=$work/cache.json "$QCC" key add team 2>/dev/null)
cp "$work/q1/keys.json" "$work/q2/keys.json"

P1=$(free_port) P2=$(free_port) LB=$(free_port)
for q in q1 q2; do
  port=$P1; [ "$q" = q2 ] && port=$P2
  QCC_HOME=$work/$q QCC_CONFIG=$work/cache.json "$QCC" proxy start --cluster team --port "$port" \
    --access-log "$work/$q.access" --drain-timeout 20 >"$work/$q.out" 2>&1 & pids+=($!)
  eval "PID_$q=\$!"
  wait_port "$port"
done

cat >"$work/haproxy.cfg" <<CFG
global
    maxconn 1000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
frontend claude
    bind 127.0.0.1:$LB
    default_backend qcc
backend qcc
    balance hdr(x-claude-code-session-id)
    hash-type consistent
    server q1 127.0.0.1:$P1 check inter 250ms fall 1 rise 2
    server q2 127.0.0.1:$P2 check inter 250ms fall 1 rise 2
CFG
haproxy -c -q -f "$work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.out" 2>&1 & pids+=($!)
wait_port "$LB"
sleep 0.6   # both servers checked up

# 16 sessions, 8 clients on keep-alive connections, 600 requests; q1 gets SIGTERM a third of the way.
python3 - "$LB" "$KEY" "$PID_q1" "$work/stopped_at" <<'PY'
import http.client, json, os, signal, sys, threading, time
port, key, q1, stopped_file = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
TOTAL, CLIENTS = 600, 8
done, lock, bad = [0], threading.Lock(), []
body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
def client(n):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(TOTAL // CLIENTS):
        session = "sess%04d-0000-4000-8000-000000000000" % ((n * 2 + i) % 16)
        hdrs = {"content-type": "application/json", "x-api-key": key, "x-claude-code-session-id": session}
        try:
            conn.request("POST", "/v1/messages", body, hdrs)
            r = conn.getresponse(); r.read()
            status = r.status
        except Exception as e:
            status = repr(e); conn.close(); conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        with lock:
            done[0] += 1
            if status != 200: bad.append(status)
            if done[0] == TOTAL // 3:
                open(stopped_file, "w").write(str(time.time()))
                os.kill(q1, signal.SIGTERM)
threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
[t.start() for t in threads]; [t.join(timeout=120) for t in threads]
print("scale-out: %d requests, %d not 200 %s" % (done[0], len(bad), bad[:5]))
sys.exit(1 if bad or done[0] != TOTAL else 0)
PY

# q1 drained and exited on its own; sessions stayed put while both ran.
for _ in $(seq 100); do kill -0 "$PID_q1" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID_q1" 2>/dev/null; then echo "scale-out: q1 did not exit after SIGTERM" >&2; exit 1; fi
python3 - "$work/q1.access" "$work/q2.access" "$(cat "$work/stopped_at")" <<'PY'
import json, sys, time, calendar
def lines(p): return [json.loads(l) for l in open(p) if l.strip()]
def at(r): return calendar.timegm(time.strptime(r["time"][:19], "%Y-%m-%dT%H:%M:%S"))
stopped = float(sys.argv[3])
q1, q2 = lines(sys.argv[1]), lines(sys.argv[2])
s1 = {r["session"] for r in q1}
s2_before = {r["session"] for r in q2 if at(r) < int(stopped)}
print("scale-out: q1 served %d requests of %d sessions before it stopped; q2 served %d (%d sessions before)" %
      (len(q1), len(s1), len(q2), len(s2_before)))
if not s1 or not s2_before: sys.exit("scale-out: one qcc got no sessions: the balance is not by session")
if s1 & s2_before: sys.exit("scale-out: sessions on both qcc while both ran: %s" % sorted(s1 & s2_before))
if any(r["status"] != "200" for r in q1 + q2): sys.exit("scale-out: a qcc logged a non-200")
PY
echo "scale-out: ok (no request lost across a drain; sessions sticky)"
