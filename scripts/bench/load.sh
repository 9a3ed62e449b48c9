# Sourced by scripts/bench.sh and scripts/bench/cost.sh: what the bench upstream answers and what
# wrk sends, the same for every measurement.

# The fixed reply of the bench upstream (a Messages reply with usage, as qcc reads it).
REPLY='{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"Hello from the bench upstream."}],"stop_reason":"end_turn","usage":{"input_tokens":12,"output_tokens":8}}'

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
