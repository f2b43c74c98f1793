"""A lean HTTP/1.1 load generator for the benchmarks, run in its own process.

httpx spends several hundred microseconds of CPU per request; on a two-core machine a load generator like that
takes the server's second core and caps what the benchmark can see. This one sends requests prepared in
advance over keep-alive connections and reads only the status line, ``Content-Length`` and the body, so the
server is what gets measured.

Two modes:

- rush (closed loop, the default): every request is wanted at the same moment; each one's latency counts from
  the start of the run to its answer, the time spent waiting for a free connection included.
- open loop (``"rate"`` given, requests per second): request *i* is wanted at ``start + i / rate`` whether or
  not earlier ones were answered (a fixed arrival rate); its latency counts from that moment to its answer, so
  a slow server is not hidden by a client that waits for it (no coordinated omission).

    python -m bench.loadgen < spec.json > result.json

``spec``: ``{"host", "port", "connections", "rate"?, "requests": [{"method", "path", "body", "headers"}...]}``;
the result: ``{"elapsed", "latencies", "answered_at", "statuses", "bodies", "cpu_seconds"}`` in the order of the
requests (bodies parsed as JSON; ``answered_at`` on ``time.monotonic()``, the clock every process of the machine
shares, so other processes' timestamps compare with it; ``cpu_seconds`` is this process's own CPU time over the
run, for the share of a core the generator used).
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
    try:
        return status, await reader.readexactly(length) if length else b""
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        # Not a closed idle connection (the answer had begun): never sent again.
        raise RuntimeError(f"the connection closed in the middle of an answer: {exc!r}") from exc


def parse(body: bytes) -> Any:
    """The body as JSON, or as text when it is not JSON (a proxy's or server's plain error page)."""
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body.decode(errors="replace")


#: A connection's reader and writer; a list, so a connection the server closed can be replaced in place.
Stream = list[Any]


async def run(host: str, port: int, connections: int, requests: list[bytes], rate: float | None) -> dict[str, Any]:
    n = len(requests)
    latencies = [0.0] * n
    answered = [0.0] * n
    statuses = [0] * n
    bodies: list[bytes] = [b""] * n
    streams: list[Stream] = [
        list(await asyncio.open_connection(host, port)) for _ in range(max(1, min(connections, n)))
    ]
    cpu0 = time.process_time()
    t0 = time.monotonic()

    async def exchange(stream: Stream, i: int, wanted: float) -> None:
        for again in (False, True):
            if stream[0].at_eof() or again:
                # The server closed the connection while it was idle (uvicorn does after 5 s of keep-alive): a
                # new one, as any HTTP client would, so a slow start of many connections does not fail the run.
                stream[1].close()
                stream[:] = await asyncio.open_connection(host, port)
            reader, writer = stream
            try:
                writer.write(requests[i])
                statuses[i], bodies[i] = await read_response(reader)
                break
            except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
                # The server closed the idle connection just as this request went out, before the check above
                # could see it: it read none of the request, so the request goes once more on a new connection,
                # as HTTP clients do. Part of an answer's head, or a second failure, fails the run.
                if again or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
        answered[i] = time.monotonic()
        latencies[i] = answered[i] - wanted

    if rate is None:
        next_index = iter(range(n))

        async def worker(stream: Stream) -> None:
            for i in next_index:
                await exchange(stream, i, t0)

        await asyncio.gather(*(worker(s) for s in streams))
    else:
        free: asyncio.Queue[Stream] = asyncio.Queue()
        for s in streams:
            free.put_nowait(s)

        async def one(i: int, wanted: float) -> None:
            stream = await free.get()  # waiting for a connection counts: the clock runs from ``wanted``
            try:
                await exchange(stream, i, wanted)
            finally:
                free.put_nowait(stream)

        tasks = []
        for i in range(n):
            wanted = t0 + i / rate
            delay = wanted - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, wanted)))
        await asyncio.gather(*tasks)
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    for _, w in streams:
        w.close()
    return {
        "elapsed": elapsed,
        "latencies": latencies,
        "answered_at": answered,
        "statuses": statuses,
        "bodies": [parse(b) for b in bodies],
        "cpu_seconds": cpu,
    }


async def main() -> None:
    spec = json.load(sys.stdin)
    host, port = spec["host"], int(spec["port"])
    requests = [encode(host, port, r) for r in spec["requests"]]
    rate = float(spec["rate"]) if spec.get("rate") else None
    json.dump(await run(host, port, int(spec["connections"]), requests, rate), sys.stdout)


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        asyncio.run(main())
    else:
        uvloop.run(main())
