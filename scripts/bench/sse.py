#!/usr/bin/env python3
"""SSE helpers for scripts/bench.sh (loopback only, bounded in count and time).

  sse.py server PORT [openai]        upstream: POST/GET -> text/event-stream; each event carries
                                     the CLOCK_MONOTONIC time (ns) it was written at.
                                     ?events=N&gap_ms=M (defaults 20, 50). `openai`: Chat
                                     Completions chunks instead (a translated stream: the
                                     request's model "bench:N:M" says events and gap).
  sse.py latency URL N               one stream of N events: prints p50/p99 of (arrival - sent) in µs
  sse.py streams URL CONC SECONDS    CONC concurrent slow streams held for SECONDS; prints ok/failed
"""
import asyncio
import sys
import time
import urllib.parse


async def serve(port, openai=False):
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin1").split("\r\n")
                target = lines[0].split(" ")[1]
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                q = urllib.parse.parse_qs(urllib.parse.urlparse(target).query)
                n = int(q.get("events", ["20"])[0])
                gap = int(q.get("gap_ms", ["50"])[0]) / 1000
                if openai and b'"bench:' in body:
                    n, gap = body.split(b'"bench:')[1].split(b'"')[0].decode().split(":")
                    n, gap = int(n), int(gap) / 1000
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\n\r\n")
                await writer.drain()
                for i in range(n):
                    if openai:
                        finish = '"stop"' if i == n - 1 else "null"
                        data = (f'data: {{"choices":[{{"index":0,"delta":{{"content":"tick {i} "}},'
                                f'"finish_reason":{finish}}}]}}\n\n').encode()
                    else:
                        data = f"event: tick\ndata: {{\"i\": {i}, \"t\": {time.monotonic_ns()}}}\n\n".encode()
                    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    await writer.drain()
                    await asyncio.sleep(gap)
                if openai:
                    data = b"data: [DONE]\n\n"
                    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


async def open_stream(url, events, gap_ms):
    u = urllib.parse.urlparse(url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port)
    path = f"{u.path or '/'}v1/messages?events={events}&gap_ms={gap_ms}".replace("//v1", "/v1")
    body = (f'{{"model":"bench:{events}:{gap_ms}","stream":true,"max_tokens":16,'
            f'"messages":[{{"role":"user","content":"hi"}}]}}').encode()
    writer.write(f"POST {path} HTTP/1.1\r\nhost: {u.hostname}\r\ncontent-type: application/json\r\n"
                 f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


async def latency(url, n):
    reader, writer = await open_stream(url, n, 20)
    samples = []
    buf = b""
    while len(samples) < n:
        chunk = await asyncio.wait_for(reader.read(65536), 30)
        if not chunk:
            break
        now = time.monotonic_ns()
        buf += chunk
        while b'"t": ' in buf:
            start = buf.index(b'"t": ') + 5
            end = buf.index(b"}", start)
            samples.append((now - int(buf[start:end])) / 1000)
            buf = buf[end:]
    writer.close()
    samples.sort()
    if not samples:
        print("p50_us=nan p99_us=nan n=0")
        return
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"p50_us={p(0.5):.0f} p99_us={p(0.99):.0f} n={len(samples)}")


async def streams(url, conc, seconds):
    events = max(1, int(seconds))  # one event per second

    async def one():
        try:
            reader, writer = await open_stream(url, events, 1000)
            got = 0
            while True:
                chunk = await asyncio.wait_for(reader.read(65536), seconds + 30)
                if not chunk:
                    break
                got += chunk.count(b"event: ")
            writer.close()
            return got >= events  # (a translated stream has its message events around the deltas)
        except Exception:
            return False

    results = await asyncio.gather(*(one() for _ in range(conc)))
    print(f"ok={sum(results)} failed={conc - sum(results)}")


def main():
    mode = sys.argv[1]
    if mode == "server":
        asyncio.run(serve(int(sys.argv[2]), openai=sys.argv[3:4] == ["openai"]))
    elif mode == "latency":
        asyncio.run(latency(sys.argv[2], int(sys.argv[3])))
    elif mode == "streams":
        asyncio.run(streams(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
