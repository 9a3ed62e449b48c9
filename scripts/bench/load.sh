# Sourced by scripts/bench.sh and scripts/bench/*.sh: what the bench upstream answers and what
# wrk sends, the same for every measurement.

# The fixed reply of the bench upstream (a Messages reply with usage, as qcc reads it).
REPLY='{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"Hello from the bench upstream."}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":8}}'

# The fixed streamed reply: a Messages event stream of 16 events (10 text deltas), as the API
# sends it; qcc reads every event's name and parses message_start and message_delta for usage.
STREAM=$(
  d='{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, "}}'
  printf 'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[],"stop_reason":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}\n\n'
  printf 'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
  printf 'event: ping\ndata: {"type": "ping"}\n\n'
  for _ in 1 2 3 4 5 6 7 8 9 10; do printf 'event: content_block_delta\ndata: %s\n\n' "$d"; done
  printf 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
  printf 'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":20}}\n\n'
  printf 'event: message_stop\ndata: {"type":"message_stop"}\n\n.'
)
STREAM=${STREAM%.} # (the dot kept the last blank line from $(...))

# post_lua FILE: the wrk script of a small Messages POST, as Claude Code sends it (headers trimmed).
post_lua() {
  cat >"$1" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = "proxy-managed"
wrk.headers["anthropic-version"] = "2023-06-01"
wrk.body = '{"model":"claude-bench","max_tokens":64,"messages":[{"role":"user","content":"Say hello."}]}'
LUA
}

# nginx_conf FILE NAME CONNECTIONS HTTP: an nginx config for the bench (one worker, in the
# foreground, files under the file's folder, named NAME), whose http block holds the common
# settings and then HTTP (servers, upstreams). Every nginx of the bench scripts starts here.
nginx_conf() {
  local dir
  dir=$(dirname "$1")
  cat >"$1" <<CONF
worker_processes 1;
daemon off;
pid $dir/$2.pid;
error_log $dir/$2.err warn;
events { worker_connections $3; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $dir/$2_body;
  proxy_temp_path $dir/$2_proxy;
$4
}
CONF
}

# scratch: a fresh directory in $work, and $pids (append every process started) stopped on exit
# (TERM, then KILL for any that lingers), the directory removed.
scratch() {
  work=$(mktemp -d)
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.2
        for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
}
