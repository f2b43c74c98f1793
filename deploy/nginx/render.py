"""Render deploy/nginx/civic.conf as a stand-alone nginx configuration for one machine without Docker.

The routing is taken unchanged from civic.conf (the file docker compose uses); only what differs on one
machine is rewritten: the upstream servers become 127.0.0.1 ports, Docker's resolver goes, the gateway listens
on the given port, and pid, logs and temporary files live under one directory, so nginx runs as an ordinary
process of the user who starts it:

    python deploy/nginx/render.py --dir /tmp/civic-gateway --port 8000
    nginx -c /tmp/civic-gateway/nginx.conf -p /tmp/civic-gateway -e /tmp/civic-gateway/error.log -g 'daemon off;'

Default ports: registration 8101, surveys 8102, notifications 8103, content 8104, the web client (``civic web``)
8105; each can be changed with ``--upstream NAME=HOST:PORT``.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CIVIC_CONF = HERE / "civic.conf"
SERVICES = ("registration", "surveys", "notifications", "content")
#: What the gateway proxies to: the services and the web client.
UPSTREAMS = (*SERVICES, "web")
DEFAULT_PORTS = {"registration": 8101, "surveys": 8102, "notifications": 8103, "content": 8104, "web": 8105}
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class RenderError(ValueError):
    """civic.conf no longer has the shape this script rewrites; fix the script together with the file."""


def _replace(pattern: str, repl: str, text: str, *, count: int, what: str) -> str:
    new, n = re.subn(pattern, lambda _m: repl, text, flags=re.MULTILINE)
    if n != count:
        raise RenderError(f"expected {count} {what} in civic.conf, found {n}")
    return new


def rewrite(
    conf: str, *, listen: str, upstreams: dict[str, str], access_log: Path, web_network: str | None = None
) -> str:
    """civic.conf with one-machine addresses; everything else stays as it is. ``web_network``: where the web
    client's requests come from (their X-Forwarded-For is kept); none by default, since on one machine the web
    client and other local clients share loopback."""
    conf = _replace(r"^resolver .*;\n", "", conf, count=1, what="resolver lines")
    conf = _replace(
        r"^(\s*)172\.30\.81\.0/24 1;\n",
        f"    {web_network} 1;\n" if web_network else "",
        conf,
        count=1,
        what="web network lines",
    )
    for name in UPSTREAMS:
        conf = _replace(
            rf"^(\s*)server {name}:8000 resolve;$",
            f"    server {upstreams[name]};",
            conf,
            count=1,
            what=f"upstream servers of {name}",
        )
    conf = _replace(r"^(\s*)listen 8080;$", f"    listen {listen};", conf, count=1, what="listen lines")
    conf = _replace(
        r"^(\s*)access_log /var/log/nginx/access\.log civic;$",
        f"    access_log {access_log} civic;",
        conf,
        count=1,
        what="access_log lines",
    )
    return conf


def compiled_without(nginx: str | None) -> set[str]:
    """Modules an nginx binary was built without (its temp path directives would be unknown)."""
    if not nginx:
        return set()
    out = subprocess.run([nginx, "-V"], capture_output=True, text=True, check=False).stderr
    return set(re.findall(r"--without-http_(\w+?)_module", out))


def render(
    run_dir: Path,
    *,
    port: int,
    host: str = "127.0.0.1",
    upstreams: dict[str, str] | None = None,
    nginx: str | None = None,
    web_network: str | None = None,
) -> Path:
    """Write ``run_dir/nginx.conf`` (and create the directories it names); returns its path."""
    run_dir = run_dir.resolve()
    addresses = {name: f"127.0.0.1:{DEFAULT_PORTS[name]}" for name in UPSTREAMS} | (upstreams or {})
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    temp = run_dir / "temp"
    without = compiled_without(nginx)
    temp_lines = []
    for kind in TEMP_PATHS:
        if kind in without:
            continue
        (temp / kind).mkdir(parents=True, exist_ok=True)
        temp_lines.append(f"    {kind}_temp_path {temp / kind};")
    # Started by root, nginx's workers would run as `nobody` and could not use temp paths under a private
    # directory; they run as the directory's owner instead. Ordinary users need (and may give) no `user`.
    user = f"user {pwd.getpwuid(run_dir.stat().st_uid).pw_name};\n" if os.geteuid() == 0 else ""
    body = rewrite(
        CIVIC_CONF.read_text(),
        listen=f"{host}:{port}",
        upstreams=addresses,
        access_log=run_dir / "logs" / "access.log",
        web_network=web_network,
    )
    text = (
        f"# Rendered by deploy/nginx/render.py from deploy/nginx/civic.conf; do not edit.\n"
        f"{user}"
        f"worker_processes 1;\n"
        f"pid {run_dir / 'nginx.pid'};\n"
        f"error_log {run_dir / 'logs' / 'error.log'} warn;\n"
        f"events {{\n    worker_connections 512;\n}}\n"
        f"http {{\n"
        f"    default_type application/octet-stream;\n"
        + "\n".join(temp_lines)
        + "\n\n"
        + "\n".join(f"    {line}" if line else "" for line in body.splitlines())
        + "\n}\n"
    )
    path = run_dir / "nginx.conf"
    path.write_text(text)
    return path


def version(nginx: str) -> tuple[int, ...]:
    out = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in found.groups()) if found else (0, 0, 0)


def command(conf: Path, nginx: str = "nginx") -> list[str]:
    """The command line that runs the rendered configuration in the foreground."""
    run_dir = conf.parent
    argv = [nginx, "-c", str(conf), "-p", str(run_dir)]
    # Before the configuration is read nginx logs to its built-in error log path; -e (nginx 1.19.5+) moves that
    # too, so that nothing outside run_dir needs to be writable.
    if version(nginx) >= (1, 19, 5):
        argv += ["-e", str(run_dir / "logs" / "error.log")]
    return [*argv, "-g", "daemon off;"]


def _upstream(value: str) -> tuple[str, str]:
    name, _, address = value.partition("=")
    if name not in UPSTREAMS or ":" not in address:
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT with NAME one of {', '.join(UPSTREAMS)}")
    return name, address


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, type=Path, help="directory for nginx.conf, pid, logs and temp files")
    p.add_argument("--port", required=True, type=int, help="port the gateway listens on")
    p.add_argument("--host", default="127.0.0.1", help="address the gateway listens on")
    p.add_argument("--upstream", action="append", type=_upstream, default=[], metavar="NAME=HOST:PORT")
    p.add_argument("--nginx", default="nginx", help="nginx binary (asked which modules it lacks)")
    p.add_argument(
        "--web-network", metavar="CIDR", help="where the web client's requests come from (X-Forwarded-For kept)"
    )
    args = p.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    conf = render(
        args.dir,
        port=args.port,
        host=args.host,
        upstreams=dict(args.upstream),
        nginx=args.nginx,
        web_network=args.web_network,
    )
    print(" ".join(repr(a) if " " in a else a for a in command(conf, args.nginx)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
