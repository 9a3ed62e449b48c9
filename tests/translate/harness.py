"""qcc's translation, end to end, as users' software sees it.

A mock OpenAI-compatible upstream checks every request it receives against the official `openai`
package's request types (pydantic's TypeAdapter over `CompletionCreateParams*`, no key the types
do not know) and the Chat Completions conversation rules (each `tool` message answers a call the
assistant message before it made; each such call is answered); it answers with the case's
recorded chunks, written as the case says (whole, or one byte at a time). The real qcc binary
translates; the official Anthropic SDK reads the answer with its stream accumulator
(`messages.stream(...).get_final_message()`), which refuses an invalid event sequence.

    python tests/translate/harness.py path/to/qcc
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import typing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import pydantic
from openai.types.chat import completion_create_params as ccp

QCC = sys.argv[1] if len(sys.argv) > 1 else "target/debug/qcc"
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "fixtures", "claude-code", "body-POST.json")

STREAMING = pydantic.TypeAdapter(ccp.CompletionCreateParamsStreaming)
NON_STREAMING = pydantic.TypeAdapter(ccp.CompletionCreateParamsNonStreaming)
KNOWN_KEYS = set(typing.get_type_hints(ccp.CompletionCreateParamsStreaming)) | {"stream"}


def check_request(body):
    """What a Chat Completions provider would refuse: raises with the reason."""
    unknown = set(body) - KNOWN_KEYS
    assert not unknown, f"keys the Chat Completions API does not have: {unknown}"
    (STREAMING if body.get("stream") else NON_STREAMING).validate_python(body)
    open_calls = []
    for i, m in enumerate(body["messages"]):
        if m["role"] == "tool":
            assert m["tool_call_id"] in open_calls, f"message {i}: tool message answers no open call"
            open_calls.remove(m["tool_call_id"])
            continue
        assert not open_calls, f"message {i}: calls {open_calls} left unanswered"
        if m["role"] == "assistant":
            open_calls = [c["id"] for c in m.get("tool_calls") or []]
            assert m.get("content") is not None or open_calls, f"message {i}: empty assistant message"
    assert not open_calls, f"calls {open_calls} left unanswered at the end"


def sse(*chunks, done=True):
    out = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    return out + ("data: [DONE]\n\n" if done else "")


def delta(**d):
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-mock",
            "choices": [{"index": 0, "delta": d, "finish_reason": None}]}


def finish(reason, **d):
    return {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": d, "finish_reason": reason}]}


def call(index, id=None, name=None, args=None):
    c = {"index": index, "function": {}}
    if id is not None:
        c["id"] = id
        c["type"] = "function"
    if name is not None:
        c["function"]["name"] = name
    if args is not None:
        c["function"]["arguments"] = args
    return c


USAGE = {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 7,
                                                      "prompt_tokens_details": {"cached_tokens": 10}}}

# model -> (status, content type, body, how it is written)
CASES = {
    "text": (200, "text/event-stream", sse(delta(role="assistant", content=""), delta(content="Hello"),
                                           delta(content=" world"), finish("stop"), USAGE), "whole"),
    "bytes": (200, "text/event-stream", sse(delta(content="one byte"), delta(content=" at a time é"),
                                            finish("stop"), USAGE), "bytes"),
    "reasoning": (200, "text/event-stream", sse(delta(reasoning_content="think"), delta(reasoning=" more"),
                                                delta(content="42"), finish("stop"), USAGE), "whole"),
    "fragments": (200, "text/event-stream", sse(
        delta(tool_calls=[call(0, "call_1", "Bash", "")]),
        delta(tool_calls=[call(0, args='{"comm')]), delta(tool_calls=[call(0, args='and": "ec')]),
        delta(tool_calls=[call(0, args='ho hi"}')]), finish("tool_calls"), USAGE), "bytes"),
    "parallel": (200, "text/event-stream", sse(
        delta(content="two at once"),
        delta(tool_calls=[call(0, "a", "Read", '{"pa'), call(1, "b", "Grep", '{"pat')]),
        delta(tool_calls=[call(1, args='tern": "x"}')]), delta(tool_calls=[call(0, args='th": "/y"}')]),
        finish("tool_calls"), USAGE), "whole"),
    "reused-index": (200, "text/event-stream", sse(
        delta(tool_calls=[call(0, "first", "A", "{}")]), delta(tool_calls=[call(0, "second", "B", '{"k": 1}')]),
        finish("tool_calls"), USAGE), "whole"),
    "no-id": (200, "text/event-stream", sse(
        delta(tool_calls=[{"index": 0, "function": {"name": "Bash", "arguments": '{"command": "ls"}'}}]),
        finish("tool_calls"), USAGE), "whole"),
    "empty-then-whole": (200, "text/event-stream", sse(
        delta(tool_calls=[call(0, "c1", "Glob", "")]), delta(tool_calls=[call(0, args="")]),
        delta(tool_calls=[call(0, args='{"pattern": "*.rs"}')]), finish("tool_calls"), USAGE), "whole"),
    "no-done": (200, "text/event-stream", sse(delta(content="no done"), finish("stop"), USAGE, done=False), "whole"),
    "length": (200, "text/event-stream", sse(delta(content="cut by"), finish("length"), USAGE), "whole"),
    "json": (200, "application/json", json.dumps({
        "id": "chatcmpl-9", "object": "chat.completion", "model": "gpt-mock",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "ok",
                     "tool_calls": [{"id": "call_9", "type": "function",
                                     "function": {"name": "Bash", "arguments": "{\"command\": \"pwd\"}"}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2}}), "whole"),
    "429": (429, "application/json", json.dumps({"error": {"message": "Rate limit reached for requests",
                                                           "type": "requests", "code": "rate_limit_exceeded"}}), "whole"),
    "500": (500, "application/json", json.dumps({"error": {"message": "The server had an error"}}), "whole"),
    "401": (401, "application/json", json.dumps({"error": {"message": "Incorrect API key provided",
                                                           "type": "invalid_request_error", "code": "invalid_api_key"}}), "whole"),
    "error-first": (200, "text/event-stream", sse({"error": {"message": "model overloaded", "code": 503}}), "whole"),
    "cut": (200, "text/event-stream", sse(delta(content="partial"), done=False), "cut"),
    # Tool input is always one JSON object: an id reused on another index is another call, and
    # arguments that never close fail over (before content) or end in an error (after).
    "reused-id": (200, "text/event-stream", sse(
        delta(tool_calls=[call(0, "call_1", "A", '{"a": 1}')]), delta(tool_calls=[call(1, "call_1", "C", '{"c": 3}')]),
        delta(tool_calls=[call(2, "call_3", "D", '{"d": 4}')]), finish("tool_calls"), USAGE), "whole"),
    "unterminated": (200, "text/event-stream", sse(
        delta(tool_calls=[call(0, "u1", "Bash", '{"unterminated": ')]), finish("tool_calls"), USAGE), "whole"),
    "text-then-unterminated": (200, "text/event-stream", sse(
        delta(content="let me run it"), delta(tool_calls=[call(0, "u1", "Bash", '{"command": "ls"}{"c": 3}')]),
        finish("tool_calls"), USAGE), "whole"),
    # The client's `stream` flag decides the shape, whatever the upstream sends.
    "sse-always": (200, "text/event-stream", sse(delta(content="streamed"),
                                                 delta(tool_calls=[call(0, "s1", "Bash", '{"command": "pwd"}')]),
                                                 finish("tool_calls"), USAGE), "whole"),
    # An answer that is not there, and a provider's error in a 200, are failed attempts.
    "empty-choices": (200, "text/event-stream", sse({"id": "c", "choices": []}, {"id": "c", "choices": [
        {"index": 0, "delta": None}]}, USAGE), "whole"),
    # A context-length error worded as Anthropic words it; a matched stop sequence; a legacy call.
    "context": (400, "application/json", json.dumps({"error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in "
                   "130512 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}), "whole"),
    "stop-seq": (200, "text/event-stream", sse(delta(content="1 2 3"), {"id": "chatcmpl-1", "choices": [
        {"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "END"}]}, USAGE), "whole"),
    "legacy-call": (200, "text/event-stream", sse(delta(function_call={"name": "Bash", "arguments": '{"comm'}),
                                                  delta(function_call={"arguments": 'and": "ls"}'}),
                                                  finish("function_call"), USAGE), "whole"),
    "error-200": (200, "application/json", json.dumps({"error": {"message": "Provider returned error", "code": 502,
                                                                 "metadata": {"provider_name": "X"}}}), "whole"),
    "garbage": (200, "text/event-stream", sse(delta(content="fine so far"), done=False) + "data: {not json\n\n", "whole"),
}


class Mock(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen = []
    problems = []
    backup = False

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        assert self.path.endswith("/chat/completions"), self.path
        Mock.seen.append({"path": self.path, "auth": self.headers.get("authorization"),
                          "x-api-key": self.headers.get("x-api-key"),
                          "anthropic": [h for h in self.headers if h.lower().startswith("anthropic-")],
                          "body": body, "backup": self.backup})
        try:
            check_request(body)
        except Exception as e:  # noqa: BLE001 - anything the checks or pydantic say
            Mock.problems.append(f"{body.get('model')}: {e}")
            return self.answer(400, "application/json", json.dumps({"error": {"message": f"harness: {e}"}}), "whole")
        if self.backup:
            return self.answer(*CASES["text"][:3], "whole")
        model = body["model"]
        if model.startswith("cc-"):
            model = "text"
        self.answer(*CASES[model])

    def answer(self, status, ctype, body, how):
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("x-ratelimit-remaining-requests", "99")
        if status == 429:
            self.send_header("retry-after", "7")
        if how == "cut":
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        pieces = [data[i:i + 1] for i in range(len(data))] if how == "bytes" else [data]
        for p in pieces:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class Backup(Mock):
    backup = True


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a proxy that stops resets its pooled connections: not a failure of any case


def serve(handler):
    srv = Server(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_qcc(home, cluster):
    port = free_port()
    env = dict(os.environ, QCC_HOME=home, QCC_CONFIG=os.path.join(home, "cache.json"))
    p = subprocess.Popen([QCC, "proxy", "start", "--cluster", cluster, "--port", str(port), "--host", "127.0.0.1",
                          "--no-access-log"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit(f"qcc did not start: {p.stderr.read().decode()}")


TOOLS = [{"name": "Bash", "description": "Run a command", "input_schema": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}]
HISTORY = [
    {"role": "user", "content": "list the files"},
    {"role": "assistant", "content": [{"type": "text", "text": "Running ls."},
                                      {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.rs\nb.rs"},
                                 {"type": "text", "text": "and now?"}]},
]


def stream(client, model, **kw):
    with client.messages.stream(model=model, max_tokens=256, system=[{"type": "text", "text": "be brief",
                                "cache_control": {"type": "ephemeral"}}], messages=HISTORY, tools=TOOLS, **kw) as s:
        return s.get_final_message()


failures = []


def case(name, fn):
    try:
        fn()
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}")


def main():
    main_up, backup_up = serve(Mock), serve(Backup)
    home = tempfile.mkdtemp(prefix="qcc-translate-")
    ep = lambda i, port, prio: {"id": f"a000000{i}", "base_url": f"http://127.0.0.1:{port}/v1", "api_key": "sk-up-secret-1234",
                                "priority": prio, "metadata": {"name": f"oai{i}", "format": "openai"}}
    cfg = {"profiles": {
        "t": {"name": "t", "endpoints": [ep(1, main_up.server_port, 1)]},
        "f": {"name": "f", "endpoints": [ep(2, main_up.server_port, 1), ep(3, backup_up.server_port, 2)]}}}
    with open(os.path.join(home, "cache.json"), "w") as f:
        json.dump(cfg, f)
    procs = []
    try:
        pt, url_t = start_qcc(home, "t")
        procs.append(pt)
        hf = tempfile.mkdtemp(prefix="qcc-translate-f-")
        with open(os.path.join(hf, "cache.json"), "w") as f:
            json.dump(cfg, f)
        pf, url_f = start_qcc(hf, "f")
        procs.append(pf)
        c = anthropic.Anthropic(base_url=url_t, api_key="client-key", max_retries=0)
        cf = anthropic.Anthropic(base_url=url_f, api_key="client-key", max_retries=0)

        def text():
            m = stream(c, "text")
            assert [b.type for b in m.content] == ["text"] and m.content[0].text == "Hello world", m.content
            assert m.stop_reason == "end_turn" and m.usage.output_tokens == 7 and m.usage.input_tokens == 20, m.usage
            assert m.usage.cache_read_input_tokens == 10, m.usage
            sent = Mock.seen[-1]
            assert sent["auth"] == "Bearer sk-up-secret-1234" and sent["x-api-key"] is None, sent["auth"]
            assert not sent["anthropic"], sent["anthropic"]
            msgs = sent["body"]["messages"]
            assert msgs[0] == {"role": "system", "content": "be brief"}, msgs[0]
            assert msgs[2]["tool_calls"][0]["function"] == {"name": "Bash", "arguments": '{"command":"ls"}'}, msgs[2]
            assert msgs[3] == {"role": "tool", "content": "a.rs\nb.rs", "tool_call_id": "toolu_01"}, msgs[3]
            assert sent["body"]["stream_options"] == {"include_usage": True}
        case("text (a tool turn in the history, usage from a final chunk without choices)", text)

        def bytes_():
            m = stream(c, "bytes")
            assert m.content[0].text == "one byte at a time é", m.content
        case("1-byte writes", bytes_)

        def reasoning():
            m = stream(c, "reasoning")
            assert [b.type for b in m.content] == ["thinking", "text"], m.content
            assert m.content[0].thinking == "think more" and m.content[1].text == "42"
        case("reasoning", reasoning)

        def fragments():
            m = stream(c, "fragments")
            assert [(b.type, b.id, b.input) for b in m.content] == [("tool_use", "call_1", {"command": "echo hi"})], m.content
            assert m.stop_reason == "tool_use"
        case("one tool call in many fragments, written a byte at a time", fragments)

        def parallel():
            m = stream(c, "parallel")
            got = [(b.type, getattr(b, "id", None), getattr(b, "input", None)) for b in m.content]
            assert got == [("text", None, None), ("tool_use", "a", {"path": "/y"}), ("tool_use", "b", {"pattern": "x"})], got
        case("two parallel tool calls interleaved by index", parallel)

        def reused():
            m = stream(c, "reused-index")
            assert [(b.id, b.name, b.input) for b in m.content] == [("first", "A", {}), ("second", "B", {"k": 1})], m.content
        case("two ids on one index", reused)

        def no_id():
            m = stream(c, "no-id")
            b = m.content[0]
            assert b.type == "tool_use" and b.id.startswith("toolu_") and b.input == {"command": "ls"}, b
        case("a call without id", no_id)

        def empty_then_whole():
            m = stream(c, "empty-then-whole")
            assert m.content[0].input == {"pattern": "*.rs"}, m.content
        case("arguments empty then whole", empty_then_whole)

        def no_done():
            m = stream(c, "no-done")
            assert m.content[0].text == "no done" and m.stop_reason == "end_turn"
        case("no [DONE]", no_done)

        def length():
            m = stream(c, "length")
            assert m.stop_reason == "max_tokens", m.stop_reason
        case("finish_reason length", length)

        def json_reply():
            m = c.messages.create(model="json", max_tokens=50, messages=HISTORY, tools=TOOLS)
            assert [b.type for b in m.content] == ["text", "tool_use"] and m.content[1].input == {"command": "pwd"}
            assert m.stop_reason == "tool_use" and m.usage.input_tokens == 5
        case("a non-streamed reply", json_reply)

        def status(model, exc, kind):
            def run():
                try:
                    stream(c, model)
                except exc as e:
                    assert e.body["error"]["type"] == kind, e.body
                    if model == "429":
                        assert e.response.headers.get("retry-after") == "7", e.response.headers
                    return
                raise AssertionError("no error")
            return run
        case("429 body", status("429", anthropic.RateLimitError, "rate_limit_error"))
        case("500 body", status("500", anthropic.InternalServerError, "api_error"))
        case("401 body", status("401", anthropic.AuthenticationError, "authentication_error"))

        def error_first():
            before = len(Mock.seen)
            m = stream(cf, "error-first")
            assert m.content[0].text == "Hello world", m.content
            assert [s["backup"] for s in Mock.seen[before:]] == [False, True], "failed over invisibly"
        case("an error before content fails over invisibly", error_first)

        def failover_500():
            m = stream(cf, "500")
            assert m.content[0].text == "Hello world"
        case("a 500 fails over to the next endpoint", failover_500)

        def cut():
            try:
                stream(c, "cut")
            except anthropic.APIStatusError as e:
                assert e.body["error"]["type"] == "api_error", e.body
                return
            except anthropic.APIError:
                return
            raise AssertionError("a cut stream read as complete")
        case("a cut after content ends with an error", cut)

        def garbage():
            try:
                stream(c, "garbage")
            except anthropic.APIStatusError as e:
                assert "malformed" in e.body["error"]["message"], e.body
                return
            raise AssertionError("a malformed chunk read as complete")
        case("a malformed chunk after content ends with an error event", garbage)

        def reused_id():
            m = stream(c, "reused-id")
            got = [(b.name, b.input) for b in m.content]
            assert got == [("A", {"a": 1}), ("C", {"c": 3}), ("D", {"d": 4})], got
            assert len({b.id for b in m.content}) == 3, [b.id for b in m.content]
        case("an id reused on another index is another call; the third is kept", reused_id)

        def fresh_f():
            # A proxy of its own: the main endpoint not yet queued by an earlier case.
            h = tempfile.mkdtemp(prefix="qcc-translate-f-")
            with open(os.path.join(h, "cache.json"), "w") as f:
                json.dump(cfg, f)
            p, url = start_qcc(h, "f")
            procs.append(p)
            return anthropic.Anthropic(base_url=url, api_key="client-key", max_retries=0)

        def unterminated_before_content():
            cf = fresh_f()
            before = len(Mock.seen)
            m = stream(cf, "unterminated")
            assert m.content[0].text == "Hello world", m.content
            assert [s["backup"] for s in Mock.seen[before:]] == [False, True], "failed over invisibly"
        case("arguments that never close, before content: failed over", unterminated_before_content)

        def invalid_after_content():
            try:
                m = stream(c, "text-then-unterminated")
            except anthropic.APIStatusError as e:
                assert "not a JSON object" in e.body["error"]["message"], e.body
                return
            raise AssertionError(f"invalid tool input read as complete: {m.content}")
        case("two objects joined as one input, after content: an error event, no tool runs", invalid_after_content)

        def json_for_a_stream():
            m = stream(c, "json")
            assert [b.type for b in m.content] == ["text", "tool_use"] and m.content[1].input == {"command": "pwd"}, m.content
            assert m.stop_reason == "tool_use" and m.usage.output_tokens == 2, m
        case("a JSON reply to a stream request reaches stream() as a stream", json_for_a_stream)

        def sse_for_create():
            m = c.messages.create(model="sse-always", max_tokens=50, messages=HISTORY, tools=TOOLS)
            assert isinstance(m, anthropic.types.Message), type(m)
            assert [b.type for b in m.content] == ["text", "tool_use"] and m.content[1].input == {"command": "pwd"}, m
            assert m.stop_reason == "tool_use" and m.usage.input_tokens == 20 and m.usage.output_tokens == 7, m.usage
        case("an event stream answering create() reaches it as one Message", sse_for_create)

        def empty_choices():
            cf = fresh_f()
            before = len(Mock.seen)
            m = stream(cf, "empty-choices")
            assert m.content[0].text == "Hello world", m.content
            assert [s["backup"] for s in Mock.seen[before:]] == [False, True], "failed over"
            try:
                stream(c, "empty-choices")
            except anthropic.APIStatusError as e:
                assert "without an answer" in e.body["error"]["message"], e.body
                return
            raise AssertionError("an empty stream read as a message")
        case("a stream of empty choices is a failed attempt, never an empty message", empty_choices)

        def error_in_a_200():
            cf = fresh_f()
            before = len(Mock.seen)
            m = cf.messages.create(model="error-200", max_tokens=50, messages=HISTORY)
            assert m.content[0].text == "Hello world", m.content
            assert [s["backup"] for s in Mock.seen[before:]] == [False, True], "failed over"
            try:
                c.messages.create(model="error-200", max_tokens=50, messages=HISTORY)
            except anthropic.APIStatusError as e:
                assert e.status_code == 502 and e.body["error"]["message"] == "Provider returned error", e.body
                return
            raise AssertionError("a provider's error read as a reply")
        case("a 200 that carries the provider's error fails over; alone, its message reaches the client", error_in_a_200)

        def context():
            try:
                stream(c, "context")
            except anthropic.BadRequestError as e:
                msg = e.body["error"]["message"]
                assert msg == "prompt is too long: 130512 tokens > 128000 maximum", msg
                import re
                m = re.search(r"prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)", msg, re.I)
                assert m and (m[1], m[2]) == ("130512", "128000"), msg  # Claude Code's own pattern
                return
            raise AssertionError("no error")
        case("a context-length error reads as Anthropic's 'prompt is too long: N tokens > M maximum'", context)

        def stop_seq():
            m = stream(c, "stop-seq", stop_sequences=["END"])
            assert m.stop_reason == "stop_sequence" and m.stop_sequence == "END", (m.stop_reason, m.stop_sequence)
        case("a stop sequence the provider says matched", stop_seq)

        def legacy_call():
            m = stream(c, "legacy-call")
            assert [(b.type, b.name, b.input) for b in m.content] == [("tool_use", "Bash", {"command": "ls"})], m.content
        case("a legacy function_call is a tool_use block", legacy_call)

        def tool_result_content():
            history = HISTORY[:2] + [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": [
                {"type": "search_result", "source": "https://example.com/a", "title": "A page",
                 "content": [{"type": "text", "text": "the answer is 42"}]},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes say hi"}}]}]}]
            with c.messages.stream(model="text", max_tokens=64, messages=history, tools=TOOLS) as s:
                s.get_final_message()
            tool = [m for m in Mock.seen[-1]["body"]["messages"] if m["role"] == "tool"][0]
            for want in ("A page", "https://example.com/a", "the answer is 42", "notes say hi"):
                assert want in tool["content"], tool
        case("search results and text documents in a tool result are kept", tool_result_content)

        def claude_code():
            import urllib.request
            with open(FIXTURE, "rb") as f:
                body = json.loads(f.read())
            body["model"] = "cc-" + body["model"]
            req = urllib.request.Request(url_t + "/v1/messages?beta=true", data=json.dumps(body).encode(), headers={
                "content-type": "application/json", "x-api-key": "client-key", "anthropic-version": "2023-06-01",
                "anthropic-beta": "claude-code-20250219"})
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read().decode()
                assert r.status == 200, text
            assert "event: message_stop" in text, text[-300:]
            sent = Mock.seen[-1]["body"]
            assert len(sent["tools"]) > 5 and sent["messages"][0]["role"] == "system", sent.keys()
        case("the real Claude Code request translates and validates", claude_code)

        def count_tokens():
            n = c.messages.count_tokens(model="text", messages=HISTORY)
            assert n.input_tokens > 0, n
        case("count_tokens answered locally", count_tokens)
    finally:
        for p in procs:
            p.terminate()
            p.wait(5)
    if Mock.problems:
        print("requests the OpenAI types refused:\n  " + "\n  ".join(Mock.problems))
    if failures or Mock.problems:
        raise SystemExit(f"{len(failures)} case(s) failed")
    print(f"all {len(CASES)} upstream behaviours translated; {len(Mock.seen)} requests validated")


if __name__ == "__main__":
    main()
