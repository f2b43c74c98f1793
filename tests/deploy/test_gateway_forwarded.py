"""The gateway keeps the citizen's address that the web client names in X-Forwarded-For, and only the web
client's: from anywhere else the header is replaced by the address nginx saw. The upstreams here are one small
HTTP server that answers with the X-Forwarded-For it received."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from civic.devservers import free_port
from tests.deploy.gateway import load_render, nginx_binary
from tests.deploy.layout import UPSTREAMS

render = load_render()


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = (self.headers.get("X-Forwarded-For") or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _gateway(tmp_path: Path, web_network: str | None) -> Iterator[str]:
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed: apt-get install -y --no-install-recommends nginx-light (.ci/run does)")
    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    upstream = f"127.0.0.1:{echo.server_address[1]}"
    port = free_port()
    conf = render.render(
        tmp_path / "gw", port=port, upstreams=dict.fromkeys(UPSTREAMS, upstream), nginx=nginx, web_network=web_network
    )
    proc = subprocess.Popen(render.command(conf, nginx), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {proc.stderr.read() if proc.stderr else ''}") from None
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(5)
        echo.shutdown()


def test_the_web_clients_requests_keep_the_citizens_address(tmp_path: Path) -> None:
    with _gateway(tmp_path, web_network="127.0.0.1/32") as base:
        got = httpx.get(f"{base}/api/registration/meetings", headers={"X-Forwarded-For": "203.0.113.7"}).text
    assert got == "203.0.113.7, 127.0.0.1"


def test_any_other_clients_header_is_replaced(tmp_path: Path) -> None:
    with _gateway(tmp_path, web_network=None) as base:
        got = httpx.get(f"{base}/api/registration/meetings", headers={"X-Forwarded-For": "203.0.113.7"}).text
        plain = httpx.get(f"{base}/api/surveys/surveys").text
    assert got == "127.0.0.1"
    assert plain == "127.0.0.1"
