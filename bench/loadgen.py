"""A lean HTTP/1.1 load generator for the benchmarks, run in its own process.

httpx spends several hundred microseconds of CPU per request; on a two-core machine a load generator like that
takes the server's second core and caps what the benchmark can see. This one sends requests prepared in
advance over keep-alive connections and reads only the status line, ``Content-Length`` and the body, so the
server is what gets measured.

Every request is wanted at the same moment (a rush): each one's latency counts from the start of the run to its
answer, the time spent waiting for a free connection included.

    python -m bench.loadgen < spec.json > result.json

``spec``: ``{"host", "port", "connections", "requests": [{"method", "path", "body", "headers"}...]}``; the
result: ``{"elapsed", "latencies", "statuses", "bodies"}`` in the order of the requests (bodies parsed as JSON).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any


def encode(host: str, port: int, request: dict[str, Any]) -> bytes:
    body = json.dumps(request["body"]).encode() if request.get("body") is not None else b""
    lines = [f"{request.get('method', 'POST')} {request['path']} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in (request.get("headers") or {}).items()]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise ValueError("chunked responses are not supported by the load generator")
    return status, await reader.readexactly(length) if length else b""


def parse(body: bytes) -> Any:
    """The body as JSON, or as text when it is not JSON (a proxy's or server's plain error page)."""
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body.decode(errors="replace")


async def rush(host: str, port: int, connections: int, requests: list[bytes]) -> dict[str, Any]:
    n = len(requests)
    latencies = [0.0] * n
    statuses = [0] * n
    bodies: list[bytes] = [b""] * n
    next_index = iter(range(n))
    streams = [await asyncio.open_connection(host, port) for _ in range(min(connections, n))]
    t0 = time.perf_counter()

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in next_index:
            writer.write(requests[i])
            statuses[i], bodies[i] = await read_response(reader)
            latencies[i] = time.perf_counter() - t0

    await asyncio.gather(*(worker(r, w) for r, w in streams))
    elapsed = time.perf_counter() - t0
    for _, w in streams:
        w.close()
    return {
        "elapsed": elapsed,
        "latencies": latencies,
        "statuses": statuses,
        "bodies": [parse(b) for b in bodies],
    }


async def main() -> None:
    spec = json.load(sys.stdin)
    host, port = spec["host"], int(spec["port"])
    requests = [encode(host, port, r) for r in spec["requests"]]
    json.dump(await rush(host, port, int(spec["connections"]), requests), sys.stdout)


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(main())
    else:
        uvloop.run(main())
