"""Benchmark: the public process page (full render vs. ETag revalidation) and QR short-link redirects.

The content app runs under uvicorn in a subprocess (one worker, no access log), on a scratch database of its
own with the demo data loaded; the load comes from this process over HTTP/1.1 keep-alive connections (httpx).
In the same run, ``/healthz`` of the same server is measured as the baseline: the ceiling of this server and
client on this machine, for a request that touches neither the database nor the page builder.

Figures: requests/s of
- ``process_page_full``: GET of the Detmold process page without ``If-None-Match`` (query, build, JSON, 200);
- ``process_page_304``: the same request with the current ETag in ``If-None-Match`` (the page is still built
  to compute its ETag, but no body is sent: the saving is transfer and the client's parsing, not the queries);
- ``qr_redirect``: GET /q/<code> (one upsert of the day's counter row, 302).

    DATABASE_URL=... REDIS_URL=... python -m bench.content [--seconds 5] [--connections 16]

Last line: ``process_page_rps: <full render requests/s>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable

import asyncpg
import httpx

from bench.common import ADMIN_URL, REDIS_URL, free_port, stopping, wait_ready, with_database

PAGE = "/api/content/public/stadt-detmold/processes/smart-city"
QR = "/q/detmold-app"


def serve(port: int) -> None:
    """The server side (run in the subprocess): the content service alone, without bus loops."""
    import uvicorn

    from services.content.service import definition
    from shared.http.app import create_app
    from shared.settings import Settings

    app = create_app([definition], Settings(), background=False)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def load(url: str, seconds: float, connections: int, headers: dict[str, str], expect: int) -> float:
    """Requests per second of ``connections`` concurrent keep-alive clients for ``seconds``."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30, follow_redirects=False) as client:
        # Warm up: connections open, caches of the server's database warm.
        await asyncio.gather(*(client.get(url, headers=headers) for _ in range(connections * 2)))
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                r = await client.get(url, headers=headers)
                if r.status_code != expect:
                    raise RuntimeError(f"{url}: expected {expect}, got {r.status_code}: {r.text[:200]}")
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return done / (time.perf_counter() - started)


async def main(seconds: float, connections: int) -> None:
    admin_url, redis_url = ADMIN_URL, REDIS_URL
    name = f"civic_bench_content_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    url = with_database(admin_url, name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stack = contextlib.ExitStack()
    try:
        from civic.demo import load_content_demo
        from shared.settings import Settings

        await load_content_demo(settings=Settings(DATABASE_URL=url, REDIS_URL=redis_url, public_base_url=base))
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "REDIS_URL": redis_url,
            "CIVIC_STREAM_PREFIX": f"bench{secrets.token_hex(4)}",
            "CIVIC_PUBLIC_BASE_URL": base,
            "CIVIC_LOG_JSON": "false",
            "CIVIC_LOG_LEVEL": "WARNING",
        }
        # Popen returns at once; the server is awaited over HTTP below.
        server = subprocess.Popen([sys.executable, "-m", "bench.content", "--serve", str(port)], env=env)  # noqa: ASYNC220
        stack.enter_context(stopping(server, timeout=10))
        await wait_ready(base, path="/healthz", attempts=200, interval=0.05)
        async with httpx.AsyncClient() as probe:
            first = await probe.get(f"{base}{PAGE}")
            first.raise_for_status()
            etag = first.headers["etag"]
            size = len(first.content)

        runs: list[tuple[str, Callable[[], object]]] = [
            ("baseline_healthz", lambda: load(f"{base}/healthz", seconds, connections, {}, 200)),
            ("process_page_full", lambda: load(f"{base}{PAGE}", seconds, connections, {}, 200)),
            ("process_page_304", lambda: load(f"{base}{PAGE}", seconds, connections, {"If-None-Match": etag}, 304)),
            ("qr_redirect", lambda: load(f"{base}{QR}", seconds, connections, {}, 302)),
        ]
        results: dict[str, float] = {}
        for label, run in runs:
            results[label] = await run()  # type: ignore[misc]
        print(
            f"content benchmark: uvicorn subprocess (1 worker) at {base}, {connections} keep-alive connections "
            f"from an httpx client in this process, {seconds:g}s per figure, page body {size} bytes",
            flush=True,
        )
        floor = results["baseline_healthz"]
        for label, rps in results.items():
            print(f"  {label:<20} {rps:9.0f} req/s   ({rps / floor:5.2f} x baseline /healthz)")
        print(f"  304 vs full render   {results['process_page_304'] / results['process_page_full']:5.2f} x")
        print(f"process_page_rps: {results['process_page_full']:.0f}")
    finally:
        stack.close()
        admin = await asyncpg.connect(admin_url)
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench.content")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
    else:
        asyncio.run(main(args.seconds, args.connections))
