"""Which address a request counts under: X-Forwarded-For only from trusted proxies (CIVIC_TRUSTED_PROXIES)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from shared.http.clients import client_address
from shared.http.ratelimit import mailbox
from shared.settings import Settings

LOOPBACK = Settings().trusted_proxies


def request(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", v.encode()) for v in forwarded]
    return Request({"type": "http", "client": (peer, 5000), "headers": headers})


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.5", ["198.51.100.1"], LOOPBACK, "203.0.113.5"),  # an untrusted peer's header is ignored
        ("10.0.0.7", ["198.51.100.1"], LOOPBACK, "10.0.0.7"),  # private is not trusted by default
        ("127.0.0.1", ["198.51.100.1"], LOOPBACK, "198.51.100.1"),  # the web process on the same host
        ("::1", ["2001:db8::5"], LOOPBACK, "2001:db8::5"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], LOOPBACK, "198.51.100.1"),  # what the client wrote is left of it
        ("172.20.0.2", ["6.6.6.6, 198.51.100.1, 127.0.0.1"], ["172.20.0.2/32", "127.0.0.1"], "198.51.100.1"),
        ("172.20.0.2", ["6.6.6.6", "198.51.100.1"], ["172.20.0.0/16"], "198.51.100.1"),  # several headers
        ("127.0.0.1", ["not-an-address"], LOOPBACK, "127.0.0.1"),
        ("127.0.0.1", [], LOOPBACK, "127.0.0.1"),
        ("::ffff:127.0.0.1", ["198.51.100.1"], LOOPBACK, "198.51.100.1"),
    ],
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    peer: str, forwarded: list[str], trusted: list[str], expected: str
) -> None:
    assert client_address(request(peer, *forwarded), trusted) == expected


def test_trusted_proxies_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVIC_TRUSTED_PROXIES", "172.20.0.2, 10.42.0.0/16")
    assert Settings().trusted_proxies == ["172.20.0.2", "10.42.0.0/16"]
    monkeypatch.setenv("CIVIC_TRUSTED_PROXIES", "not-a-network")
    with pytest.raises(ValueError):
        Settings()


def test_plus_tags_reach_one_mailbox() -> None:
    assert mailbox("Opfer+1@Example.org") == mailbox("opfer+zwei@example.org") == "opfer@example.org"
