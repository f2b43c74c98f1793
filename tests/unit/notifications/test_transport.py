"""The webhook transport connects to the address it checked, never to a name resolved again later."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from services.notifications.webhooks import IP, BlockedTarget, GuardedTransport


class FixedDns(GuardedTransport):
    def __init__(self, answers: list[str], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.answers = [ipaddress.ip_address(a) for a in answers]
        self.seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            self.seen.append(request)
            return httpx.Response(204)

        self.inner = httpx.MockTransport(record)  # type: ignore[assignment]

    async def resolve(self, host: str, port: int) -> list[IP]:
        return self.answers


async def test_connects_to_the_checked_address_with_the_original_host_header() -> None:
    transport = FixedDns(["93.184.215.14"])
    async with httpx.AsyncClient(transport=transport) as client:
        r = await client.post("https://hooks.example.org/civic", content=b"{}")
    assert r.status_code == 204
    sent = transport.seen[0]
    assert sent.url.host == "93.184.215.14"
    assert sent.headers["host"] == "hooks.example.org"
    assert sent.extensions["sni_hostname"] == "hooks.example.org"


@pytest.mark.parametrize("answers", [["93.184.215.14", "10.0.0.5"], ["::ffff:192.168.0.1"], ["fd00::1"]])
async def test_a_name_with_any_private_answer_is_refused(answers: list[str]) -> None:
    # A rebinding name answers with a public and a private address: refused before any connection.
    transport = FixedDns(answers)
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(BlockedTarget):
            await client.post("http://rebind.example.org/", content=b"{}")
    assert transport.seen == []


async def test_allow_list_is_per_network_and_port() -> None:
    transport = FixedDns(["127.0.0.1"], allow=["127.0.0.1/32#8080"])
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.post("http://127.0.0.1:8080/", content=b"")).status_code == 204
        with pytest.raises(BlockedTarget):
            await client.post("http://127.0.0.1:8081/", content=b"")
