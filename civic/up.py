"""``make up``: the whole system in one process, as a newcomer first meets it.

Runs the four services on one port with the same URL paths as behind the gateway, and the web client mounted
at ``/`` (everything the services do not answer; it calls their APIs over HTTP on the same port, as it calls the
gateway elsewhere), on whatever DATABASE_URL and REDIS_URL say (``make up`` starts embedded servers when they are
unset), with a local SMTP sink whose mail is readable at /dev/mail, and with the demo data loaded. Prints where
to look.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING

import uvicorn
from fastapi import FastAPI

from civic.devservers import state_dir
from civic.mailsink import MailSink
from civic.serving import QuietServer

if TYPE_CHECKING:
    from web.settings import WebSettings


async def main(port: int, smtp_port: int, demo: bool) -> None:
    sink = MailSink(state_dir() / "mail", port=smtp_port).start()
    # The notifications service reads its SMTP server from these (services/notifications/settings.py).
    os.environ.setdefault("CIVIC_NOTIFICATIONS_SMTP_HOST", "127.0.0.1")
    os.environ.setdefault("CIVIC_NOTIFICATIONS_SMTP_PORT", str(smtp_port))
    os.environ.setdefault("CIVIC_PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    os.environ.setdefault("CIVIC_LOG_JSON", "false")

    from civic.runner import build_app

    app = build_app()
    app.include_router(sink.router())
    web = mount_web(app, port, demo)
    server = QuietServer(
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
    console = console_lines(base, web.state.web_settings)
    if demo:
        from civic.demo import load_demo

        summary = await load_demo(base)
    print(
        f"\ncivic is running at {base}\n"
        f"  API documentation  {base}/docs\n"
        f"  received mail      {base}/dev/mail   (SMTP sink on 127.0.0.1:{smtp_port})\n"
        f"  health / metrics   {base}/readyz  {base}/metrics\n"
        f"  staff token        .venv/bin/civic token --tenant kreis-dithmarschen --roles staff\n"
        f"{console}"
        f"{summary}\nStop with Ctrl-C.\n",
        file=sys.stderr,
        flush=True,
    )
    try:
        await serving
    finally:
        await web.state.api.close()
        sink.stop()


def console_lines(base: str, settings: WebSettings) -> str:
    """How to sign in to the staff console: the provider when one is set, else the local sign-in."""
    if settings.oidc_issuer:
        return f"  staff console      {base}/verwaltung/anmelden   (OpenID Connect: {settings.oidc_issuer})\n"
    if settings.production:
        return ""
    tenants = ", ".join(sorted(settings.tenants)) or "any tenant name"
    return (
        f"  staff console      {base}/verwaltung/anmelden/lokal   (local sign-in, no password)\n"
        f"                     tenants: {tenants}; roles: staff, checkin, editor, admin (operators)\n"
    )


def mount_web(app: FastAPI, port: int, demo: bool) -> FastAPI:
    """The web client at ``/``, after every route of the services, calling them on this port."""
    from web.app import create_app
    from web.settings import WebSettings

    overrides: dict[str, object] = {"api_base_url": f"http://127.0.0.1:{port}"}
    if demo and not os.environ.get("CIVIC_WEB_TENANTS"):
        from civic.demo import DEMO_SITES

        overrides["tenants"] = DEMO_SITES
    web = create_app(WebSettings(**overrides))  # type: ignore[arg-type]
    app.mount("/", web)
    return web


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="civic.up")
    parser.add_argument("--port", type=int, default=int(os.environ.get("CIVIC_PORT", "8000")))
    parser.add_argument("--smtp-port", type=int, default=int(os.environ.get("CIVIC_SMTP_SINK_PORT", "1025")))
    parser.add_argument("--no-demo", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.smtp_port, not args.no_demo))
