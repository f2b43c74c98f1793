"""deploy/nginx/render.py: civic.conf for one machine, with nothing but the addresses changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.gateway import load_render, nginx_binary
from tests.deploy.layout import NGINX_CONF, UPSTREAMS

render = load_render()
PORTS = {name: f"127.0.0.1:{9100 + i}" for i, name in enumerate(UPSTREAMS)}


def _strip_addresses(text: str) -> list[str]:
    skip = ("resolver ", "server ", "listen ", "access_log /", "172.30.81.0/24 ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(skip)]


def test_only_addresses_change(tmp_path: Path) -> None:
    original = NGINX_CONF.read_text()
    local = render.rewrite(original, listen="127.0.0.1:9000", upstreams=PORTS, access_log=tmp_path / "a.log")
    assert _strip_addresses(local) == _strip_addresses(original)
    directives = [line.split("#", 1)[0] for line in local.splitlines()]
    assert not [d for d in directives if "resolve" in d]
    for name, address in PORTS.items():
        assert f"server {address};" in local
        assert f"{name}:8000" not in local
    assert "listen 127.0.0.1:9000;" in local
    assert f"access_log {tmp_path / 'a.log'} civic;" in local


def test_a_changed_civic_conf_is_refused_not_half_rewritten(tmp_path: Path) -> None:
    original = NGINX_CONF.read_text()
    line = "server surveys:8000 resolve;"
    doubled = original.replace(line, f"{line}\n    {line}")
    with pytest.raises(render.RenderError, match="surveys"):
        render.rewrite(doubled, listen="127.0.0.1:9000", upstreams=PORTS, access_log=tmp_path / "a.log")
    renamed = original.replace("listen 8080;", "listen 8081;")
    with pytest.raises(render.RenderError, match="listen"):
        render.rewrite(renamed, listen="127.0.0.1:9000", upstreams=PORTS, access_log=tmp_path / "a.log")


def test_rendered_configuration_is_accepted_by_nginx(tmp_path: Path) -> None:
    nginx = nginx_binary()
    if nginx is None:
        pytest.skip("nginx is not installed: apt-get install -y --no-install-recommends nginx-light (.ci/run does)")
    conf = render.render(tmp_path / "gw", port=9000, upstreams=PORTS, nginx=nginx)
    argv = [a for a in render.command(conf, nginx) if a not in ("-g", "daemon off;")]
    result = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert f"pid {tmp_path.resolve() / 'gw' / 'nginx.pid'};" in conf.read_text()


def test_the_web_network_is_set_or_left_out(tmp_path: Path) -> None:
    original = NGINX_CONF.read_text()
    kept = render.rewrite(
        original, listen="127.0.0.1:9000", upstreams=PORTS, access_log=tmp_path / "a.log", web_network="10.9.0.0/16"
    )
    assert "10.9.0.0/16 1;" in kept and "172.30.81.0/24" not in kept
    # On one machine the web client shares loopback with every other client: nobody's header is kept.
    none = render.rewrite(original, listen="127.0.0.1:9000", upstreams=PORTS, access_log=tmp_path / "a.log")
    assert "172.30.81.0/24" not in none and "$civic_from_web" in none
