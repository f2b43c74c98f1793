"""Who sent a request: the peer's address, or the client named in ``X-Forwarded-For`` when (and only when)
the peer is a trusted proxy (``CIVIC_TRUSTED_PROXIES``: the gateway, the web process; loopback by default).

Walking ``X-Forwarded-For`` from the right, every hop that is itself a trusted proxy is skipped; the first
address that is not is the client. What a client writes into the header itself stands further left and is
never reached, so no client can choose the address its rate limits count under.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=16)
def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _trusted(address: str, trusted: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in trusted)


def client_address(request: Request, trusted_proxies: Iterable[str]) -> str:
    peer = request.client.host if request.client else "unknown"
    trusted = networks(tuple(trusted_proxies))
    if not _trusted(peer, trusted):
        return peer
    hops = [h.strip() for v in request.headers.getlist("x-forwarded-for") for h in v.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # not an address: the chain cannot be read further than the proxy we know
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer
