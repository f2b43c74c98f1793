"""Benchmark: the process page through the web client against the same data's JSON API call.

Two uvicorn subprocesses: the content service (``civic.runner``, bus loops on) on a scratch database with the
demo data, and the web client (``civic web``) calling it over HTTP, as the gateway would be called. The load
comes from ``bench.loadgen`` in its own process (keep-alive connections, all requests wanted at once):

- ``api``: GET /api/content/public/stadt-detmold/processes/smart-city (the JSON a front end would fetch);
- ``web``: GET /stadt-detmold/verfahren/smart-city (the web client fetches that JSON, renders the HTML page).

Each figure is the better of ``--rounds`` rushes of ``--requests`` requests. On a machine others share (two
cores here) figures are noisy; the ratio of the two, measured in the same run, is what to compare.

    DATABASE_URL=... REDIS_URL=... python -m bench.web [--requests 2000] [--connections 16] [--rounds 3]

Last line: ``web_vs_api: <web requests/s divided by api requests/s>`` (target: at least 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys

import asyncpg
import httpx

from bench.common import ADMIN_URL, REDIS_URL, free_port, load, server, stopping, wait_ready, with_database

API_PAGE = "/api/content/public/stadt-detmold/processes/smart-city"
WEB_PAGE = "/stadt-detmold/verfahren/smart-city"


async def rate(port: int, path: str, requests: int, connections: int, rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        result = await load(port, [{"method": "GET", "path": path}] * requests, connections=connections)
        bad = [s for s in result["statuses"] if s != 200]
        if bad:
            raise SystemExit(f"{path}: {len(bad)} answers were not 200 (first: {bad[0]})")
        best = max(best, requests / result["elapsed"])
    return best


async def main(requests: int, connections: int, rounds: int) -> None:
    name = f"civic_bench_web_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    await admin.execute(f'create database "{name}"')
    await admin.close()
    url = with_database(ADMIN_URL, name)
    api_port, web_port = free_port(), free_port()
    api_base, web_base = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{web_port}"
    stack = contextlib.ExitStack()
    try:
        from civic.demo import DEMO_SITES, load_content_demo
        from shared.settings import Settings

        await load_content_demo(settings=Settings(DATABASE_URL=url, REDIS_URL=REDIS_URL, public_base_url=web_base))
        prefix = f"bench{secrets.token_hex(4)}"
        stack.enter_context(server(url, prefix, api_port, "content", env={"CIVIC_PUBLIC_BASE_URL": web_base}))
        await wait_ready(api_base)
        web_env = {
            **os.environ,
            "CIVIC_WEB_API_BASE_URL": api_base,
            "CIVIC_PUBLIC_BASE_URL": web_base,
            "CIVIC_WEB_TENANTS": json.dumps(DEMO_SITES),
            "CIVIC_LOG_LEVEL": "WARNING",
            "CIVIC_LOG_JSON": "false",
        }
        argv = [sys.executable, "-m", "civic.cli", "web", "--port", str(web_port)]
        # Popen returns at once; the web client is awaited over HTTP below.
        stack.enter_context(stopping(subprocess.Popen(argv, env=web_env)))  # noqa: ASYNC220
        await wait_ready(web_base)
        async with httpx.AsyncClient() as probe:
            page = await probe.get(f"{web_base}{WEB_PAGE}")
            data = await probe.get(f"{api_base}{API_PAGE}")
            page.raise_for_status()
            data.raise_for_status()
            assert "Modellprojekt Smart Cities" in page.text, page.text[:500]
        api_rps = await rate(api_port, API_PAGE, requests, connections, rounds)
        web_rps = await rate(web_port, WEB_PAGE, requests, connections, rounds)
        print(
            f"web benchmark: content service and web client each a uvicorn subprocess (1 worker), bench.loadgen "
            f"with {connections} keep-alive connections, best of {rounds} rushes of {requests} requests; "
            f"{os.cpu_count()} cores shared with the load generator (noisy when others use the machine)",
            flush=True,
        )
        print(f"  api  {API_PAGE:<56} {api_rps:8.0f} req/s  JSON {len(data.content)} bytes")
        print(f"  web  {WEB_PAGE:<56} {web_rps:8.0f} req/s  HTML {len(page.content)} bytes")
        print(f"web_vs_api: {web_rps / api_rps:.2f}")
    finally:
        stack.close()
        admin = await asyncpg.connect(ADMIN_URL)
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench.web")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.connections, args.rounds))
