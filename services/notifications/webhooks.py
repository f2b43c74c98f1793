"""The webhook transport: an HTTP transport that connects only to addresses it has checked itself, so neither
a redirect nor DNS rebinding reaches inside, and the checks of a target URL (the sender is in loops.py)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from typing import Any

import httpx

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedTarget(Exception):
    """The target resolves to an address a webhook must not reach."""


def embedded(ip: IP) -> list[IP]:
    """The address itself plus any IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    out: list[IP] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            out.append(ip.ipv4_mapped)
        if ip.sixtofour:
            out.append(ip.sixtofour)
        if ip.teredo:
            out.extend(ip.teredo)
        if ip in _NAT64:
            out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def forbidden(ip: IP) -> bool:
    """Loopback, private, link-local (and so the cloud metadata address), unique-local, multicast, reserved,
    unspecified, shared (CGNAT) or otherwise not globally routable."""
    return any(
        not a.is_global or a.is_multicast or a.is_reserved or a.is_loopback or a.is_link_local or a.is_private
        for a in embedded(ip)
    )


def parse_allow_list(entries: list[str]) -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int | None]]:
    out = []
    for entry in entries:
        net, _, port = entry.partition("#")
        out.append((ipaddress.ip_network(net.strip(), strict=False), int(port) if port else None))
    return out


def literal_ip(host: str) -> IP | None:
    """A host written as an address, including the integer form (``2130706433``)."""
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h)
    except ValueError:
        pass
    if h.isdigit():
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(int(h))
    return None


class GuardedTransport(httpx.AsyncBaseTransport):
    """Resolves the host itself, refuses if any address is forbidden, then connects to that checked address
    (Host header and TLS server name stay the original name), so what was checked is what is reached."""

    def __init__(self, allow: list[str] | None = None, **transport: Any) -> None:
        self.allow = parse_allow_list(allow or [])
        self.inner = httpx.AsyncHTTPTransport(retries=0, **transport)

    def _allowed(self, ip: IP, port: int) -> bool:
        if not forbidden(ip):
            return True
        return any(ip in net and (p is None or p == port) for net, p in self.allow)

    async def resolve(self, host: str, port: int) -> list[IP]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses: list[IP] = []
        for info in infos:
            addr = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if addr not in addresses:
                addresses.append(addr)
        return addresses

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await self.resolve(host, port)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}", request=request) from exc
        if not addresses:
            raise BlockedTarget(f"{host} resolves to nothing")
        bad = [str(a) for a in addresses if not self._allowed(a, port)]
        if bad:
            raise BlockedTarget(f"{host} resolves to a private or reserved address ({', '.join(bad)})")
        target = addresses[0]
        if url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        request.url = url.copy_with(host=str(target))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def check_url(url: str, allow: list[str] | None = None) -> list[str]:
    """Problems with a webhook URL that can be seen without resolving it (the sender checks again, resolved)."""
    try:
        u = httpx.URL(url)
    except Exception:
        return ["not a URL"]
    errors = []
    if u.scheme not in ("http", "https"):
        errors.append("scheme must be http or https")
    if not u.host:
        errors.append("host is missing")
    if u.userinfo:
        errors.append("credentials in the URL are not allowed")
    ip = literal_ip(u.host) if u.host else None
    port = u.port or (443 if u.scheme == "https" else 80)
    allowed = parse_allow_list(allow or [])
    if ip is not None and any(ip in net and (p is None or p == port) for net, p in allowed):
        return errors
    if ip is not None and forbidden(ip):
        errors.append("host is a private, loopback, link-local or reserved address")
    if u.host in ("localhost",) or u.host.endswith(".localhost"):
        errors.append("host is a local name")
    return errors


__all__ = ["BlockedTarget", "GuardedTransport", "check_url", "forbidden", "literal_ip"]
