"""Webhook delivery: Standard Webhooks signatures, retries for about three days, and a transport that
connects only to addresses it has checked itself, so neither a redirect nor DNS rebinding reaches inside."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from datetime import timedelta
from typing import Any

import httpx

from services.notifications import domain, repository
from services.notifications.domain import Answer
from services.notifications.settings import NotificationSettings
from shared.bus.backoff import Backoff
from shared.bus.errors import TRANSIENT
from shared.bus.outbox import Pending
from shared.contracts.notifications import NotificationFailedV1, NotificationSentV1
from shared.service import ServiceContext

log = logging.getLogger(__name__)

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


class WebhookSender:
    def __init__(self, ctx: ServiceContext, settings: NotificationSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.client = httpx.AsyncClient(
            transport=GuardedTransport(settings.allow_private_targets),
            follow_redirects=False,
            timeout=settings.webhook_timeout_seconds,
            headers={"user-agent": "civic-webhooks/1"},
        )
        self._slots = asyncio.Semaphore(max(1, settings.webhook_concurrency))

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        try:
            while not stop.is_set():
                try:
                    n = await self.send_due()
                    backoff.reset()
                except TRANSIENT as exc:
                    log.warning("webhook sender waiting for the database", extra={"error": repr(exc)})
                    await backoff.wait(stop)
                    continue
                if n == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.sender_poll_seconds)
        finally:
            await self.client.aclose()

    async def send_due(self) -> int:
        s, now = self.settings, self.ctx.clock.now()
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            rows = await repository.claim(
                conn, "webhook", now, now + timedelta(seconds=s.lease_seconds), s.sender_batch_size
            )
        if not rows:
            return 0
        async with self.ctx.pool.acquire() as conn:
            endpoints = {
                e["id"]: e
                for e in await conn.fetch(
                    "select * from webhook_endpoints where id = any($1)", list({r["endpoint_id"] for r in rows})
                )
            }
        results = await asyncio.gather(*(self._send(r, endpoints.get(r["endpoint_id"])) for r in rows))
        await self._record(rows, results)
        return len(rows)

    async def _send(self, row: Any, endpoint: Any) -> tuple[Answer, bool]:
        if endpoint is None or not endpoint["enabled"] or endpoint["tenant"] != row["tenant"]:
            return Answer(False, True, "endpoint disabled or deleted"), False
        body = (row["body"] or "{}").encode()
        msg_id = str(row["cause_event_id"])
        timestamp = int(self.ctx.clock.now().timestamp())
        headers = {
            # Structured mode of the CloudEvents HTTP binding.
            "content-type": "application/cloudevents+json; charset=utf-8",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": domain.webhook_signature(endpoint["secret"], msg_id, timestamp, body),
        }
        async with self._slots:
            try:
                response = await self.client.post(endpoint["url"], content=body, headers=headers)
            except BlockedTarget as exc:
                return Answer(False, True, f"refused target: {exc}"), False
            except httpx.HTTPError as exc:
                return Answer(False, False, f"no answer: {type(exc).__name__}: {exc}"[:1000]), False
        if 300 <= response.status_code < 400:
            return Answer(False, False, f"{response.status_code} redirect not followed"), False
        return domain.webhook_answer(response.status_code, response.reason_phrase)

    async def _record(self, rows: list[Any], results: list[tuple[Answer, bool]]) -> None:
        now = self.ctx.clock.now()
        updates: list[tuple[Any, ...]] = []
        events: list[Pending] = []
        disable: list[Any] = []
        for row, (a, gone) in zip(rows, results, strict=True):
            common = {
                "delivery_id": row["id"],
                "cause_event_id": row["cause_event_id"],
                "channel": "webhook",
                "template": row["template"],
            }
            if gone:
                disable.append(row["endpoint_id"])
            if a.ok:
                updates.append((row["id"], "sent", now, a.text, now))
                events.append(Pending(NotificationSentV1(**common), row["tenant"]))
                continue
            delay = (
                None
                if a.permanent
                else domain.webhook_retry_delay(row["attempts"], self.settings.webhook_retry_schedule)
            )
            state = "given_up" if delay is None else "failed"
            updates.append((row["id"], state, now + timedelta(seconds=delay or 0), a.text, None))
            events.append(
                Pending(NotificationFailedV1(**common, permanent=delay is None, reason=a.text), row["tenant"])
            )
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "update deliveries set state = $2, next_attempt_at = $3, last_answer = $4, sent_at = $5,"
                " lease_until = null where id = $1 and state = 'sending'",
                updates,
            )
            if disable:
                await conn.execute(
                    "update webhook_endpoints set enabled = false, disabled_reason = '410 Gone' where id = any($1)",
                    list(set(disable)),
                )
            await self.ctx.outbox.write(conn, events)


def endpoint_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "url": row["url"],
        "event_types": list(row["event_types"]),
        "description": row["description"],
        "enabled": row["enabled"],
        "disabled_reason": row["disabled_reason"],
        "created_at": row["created_at"].isoformat(),
    }


__all__ = ["BlockedTarget", "GuardedTransport", "WebhookSender", "check_url", "endpoint_json", "forbidden"]
