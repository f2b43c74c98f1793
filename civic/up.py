"""``make up``: the whole system in one process, as a newcomer first meets it.

Runs the four services on one port with the same URL paths as behind the gateway, on whatever DATABASE_URL
and REDIS_URL say (``make up`` starts embedded servers when they are unset), with a local SMTP sink whose
mail is readable at /dev/mail, and with the demo data loaded. Prints where to look.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import uvicorn

from civic.mailsink import MailSink

STATE = Path(os.environ.get("CIVIC_STATE_DIR", Path(__file__).resolve().parent.parent / ".civic"))


async def main(port: int, smtp_port: int, demo: bool) -> None:
    sink = MailSink(STATE / "mail", port=smtp_port).start()
    # The notifications service reads its SMTP server from these (services/notifications/settings.py).
    os.environ.setdefault("CIVIC_NOTIFICATIONS_SMTP_HOST", "127.0.0.1")
    os.environ.setdefault("CIVIC_NOTIFICATIONS_SMTP_PORT", str(smtp_port))
    os.environ.setdefault("CIVIC_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    os.environ.setdefault("CIVIC_LOG_JSON", "false")

    from civic.runner import build_app

    app = build_app()
    app.include_router(sink.router())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, proxy_headers=False)
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            await serving
            return
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    summary = ""
    if demo:
        from civic.demo import load_demo

        summary = await load_demo(base)
    print(
        f"\ncivic is running at {base}\n"
        f"  API documentation  {base}/docs\n"
        f"  received mail      {base}/dev/mail   (SMTP sink on 127.0.0.1:{smtp_port})\n"
        f"  health / metrics   {base}/readyz  {base}/metrics\n"
        f"  staff token        .venv/bin/civic token --tenant kreis-dithmarschen --roles staff\n"
        f"{summary}\nStop with Ctrl-C.\n",
        file=sys.stderr,
        flush=True,
    )
    try:
        await serving
    finally:
        sink.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="civic.up")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CIVIC_PORT", "8000")))
    parser.add_argument("--smtp-port", type=int, default=int(os.environ.get("CIVIC_SMTP_SINK_PORT", "1025")))
    parser.add_argument("--no-demo", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.smtp_port, not args.no_demo))
