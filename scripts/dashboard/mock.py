#!/usr/bin/env python3
"""A tiny Anthropic-shaped upstream for the dashboard test (loopback only).

  mock.py PORT MODE_FILE    answers POST /v1/messages with 200 and a usage block, or with 500
                            while MODE_FILE contains "fail" (the test flips it), or after
                            SECS seconds while it contains "slow SECS".
"""
import http.server
import json
import sys
import time

PORT, MODE = int(sys.argv[1]), sys.argv[2]
OK = json.dumps({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
                 "content": [{"type": "text", "text": "hi"}],
                 "usage": {"input_tokens": 12, "output_tokens": 7}}).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        mode = open(MODE).read().split()
        failing = mode == ["fail"]
        if mode[:1] == ["slow"]:
            time.sleep(float(mode[1]))
        body = b'{"type":"error","error":{"type":"api_error","message":"mock down"}}' if failing else OK
        self.send_response(500 if failing else 200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
