"""Benchmark: the public process page (full render vs. ETag revalidation) and QR short-link redirects.

The content service runs as in production (``civic.runner`` under uvicorn in a subprocess, one worker, no
access log, its bus loops and its page cache's LISTEN connection running), on a scratch database of its own
with the demo data loaded; the load comes from a ``bench.loadgen`` process of its own over HTTP/1.1
keep-alive connections (closed loop, ``--requests`` per figure after a warm-up), and the generator's own CPU
share is printed beside each figure so a reader can see it is not the limit. In the same run, ``/healthz`` of
the same server is measured as the baseline: the ceiling of this server on this machine, for a request that
touches neither the database nor the page builder.

Figures: requests/s of
- ``process_page_full``: GET of the Detmold process page without ``If-None-Match`` (200 with the body; the
  page is kept in the process, so after the warm-up this is the cached page: services/content/pages.py);
- ``process_page_304``: the same request with the current ETag in ``If-None-Match`` (304 without a body);
- ``qr_redirect``: GET /q/<code> (one upsert of the day's counter row, 302).

    DATABASE_URL=... REDIS_URL=... python -m bench.content [--requests 5000] [--connections 16]

Last lines: ``process_page_vs_healthz`` (target ≥ 0.8) and ``process_page_304_vs_healthz`` (target ≥ 0.9).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import NamedTuple

import asyncpg
import httpx

from bench.common import ADMIN_URL, REDIS_URL, drop_scratch, free_port, server, wait_ready, with_database
from bench.common import load as generate


class Figure(NamedTuple):
    rps: float
    generator_cpu: float  # share of one core the load generator used


PAGE = "/api/content/public/stadt-detmold/processes/smart-city"
QR = "/q/detmold-app"


async def measure(port: int, path: str, n: int, connections: int, headers: dict[str, str], expect: int) -> Figure:
    """Requests per second and the generator's CPU share for ``n`` GETs of ``path`` from a ``bench.loadgen``
    process, after a warm-up (connections open, the server's caches warm)."""
    requests = [{"method": "GET", "path": path, "headers": headers} for _ in range(n)]
    await generate(port, requests[: connections * 4], connections=connections)
    result = await generate(port, requests, connections=connections)
    wrong = [s for s in result["statuses"] if s != expect]
    if wrong:
        raise RuntimeError(f"{path}: expected {expect}, got {wrong[0]} ({len(wrong)} of {n})")
    return Figure(n / result["elapsed"], result["cpu_seconds"] / result["elapsed"])


async def main(n: int, connections: int) -> None:
    admin_url, redis_url = ADMIN_URL, REDIS_URL
    name = f"civic_bench_content_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    url = with_database(admin_url, name)
    prefix = f"bench{secrets.token_hex(4)}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stack = contextlib.ExitStack()
    try:
        from civic.demo import load_content_demo
        from shared.settings import Settings

        await load_content_demo(settings=Settings(DATABASE_URL=url, REDIS_URL=redis_url, public_base_url=base))
        env = {"CIVIC_PUBLIC_BASE_URL": base, "CIVIC_LOG_JSON": "false"}
        # Popen returns at once; the server is awaited over HTTP below.
        stack.enter_context(server(url, prefix, port, "content", redis_url=redis_url, env=env))
        await wait_ready(base)
        async with httpx.AsyncClient() as probe:
            first = await probe.get(f"{base}{PAGE}")
            first.raise_for_status()
            etag = first.headers["etag"]
            size = len(first.content)

        runs: list[tuple[str, Callable[[], Awaitable[Figure]]]] = [
            ("baseline_healthz", lambda: measure(port, "/healthz", n, connections, {}, 200)),
            ("process_page_full", lambda: measure(port, PAGE, n, connections, {}, 200)),
            ("process_page_304", lambda: measure(port, PAGE, n, connections, {"If-None-Match": etag}, 304)),
            ("qr_redirect", lambda: measure(port, QR, n, connections, {}, 302)),
        ]
        results: dict[str, Figure] = {}
        for label, run in runs:
            results[label] = await run()
        print(
            f"content benchmark: civic.runner under uvicorn (1 worker, bus loops on) at {base}, "
            f"{connections} keep-alive connections from a bench.loadgen process, {n} requests per figure, "
            f"page body {size} bytes, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        floor = results["baseline_healthz"].rps
        for label, f in results.items():
            print(
                f"  {label:<20} {f.rps:9.0f} req/s   ({f.rps / floor:5.2f} x baseline /healthz)"
                f"   load generator CPU {f.generator_cpu * 100:3.0f} % of a core"
            )
        print(f"  304 vs full render   {results['process_page_304'].rps / results['process_page_full'].rps:5.2f} x")
        print(f"process_page_rps: {results['process_page_full'].rps:.0f}")
        print(f"process_page_vs_healthz: {results['process_page_full'].rps / floor:.2f}")
        print(f"process_page_304_vs_healthz: {results['process_page_304'].rps / floor:.2f}")
    finally:
        stack.close()
        await drop_scratch(name, prefix)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench.content")
    parser.add_argument("--requests", type=int, default=5000, help="requests per figure")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.connections))
