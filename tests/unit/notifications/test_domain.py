"""Pure rules of the notifications service: dates, signed links, retries, webhook signatures, SSRF checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
from datetime import UTC, datetime

import pytest

from services.notifications import domain
from services.notifications.webhooks import check_url, forbidden, literal_ip


def test_german_meeting_time_as_people_write_it() -> None:
    start = datetime(2021, 10, 28, 16, 0, tzinfo=UTC)
    end = datetime(2021, 10, 28, 18, 0, tzinfo=UTC)
    assert domain.when(start, end, "Europe/Berlin", "de") == "Donnerstag, 28. Oktober 2021, 18:00\u201320:00 Uhr"
    assert domain.when(start, end, "Europe/Berlin", "en") == "Thursday, 28 October 2021, 6:00 PM \u2013 8:00 PM"
    # Winter time: the same wall clock is an hour later in UTC.
    assert domain.day(datetime(2021, 12, 2, 17, 0, tzinfo=UTC), "Europe/Berlin", "de") == (
        "Donnerstag, 2. Dezember 2021, 18:00 Uhr"
    )


def test_signed_links_verify_and_reject_tampering() -> None:
    token = domain.sign_token("s3cret", "unsubscribe", "0b7c8d9e-0000-4000-8000-000000000001")
    assert domain.verify_token("s3cret", "unsubscribe", token) == "0b7c8d9e-0000-4000-8000-000000000001"
    assert domain.verify_token("s3cret", "confirm", token) is None  # a link for one purpose is not another's
    assert domain.verify_token("other", "unsubscribe", token) is None
    assert domain.verify_token("s3cret", "unsubscribe", token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert domain.verify_token("s3cret", "unsubscribe", "garbage") is None
    # A mangled link with non-ASCII characters is an invalid link, not a TypeError (found by the API test).
    assert domain.verify_token("s3cret", "unsubscribe", token[:-1] + "ä") is None


def test_smtp_answers_are_classified() -> None:
    assert domain.smtp_answer(250, "OK").ok
    assert domain.smtp_answer(550, "no such user").permanent
    temp = domain.smtp_answer(451, "try later")
    assert not temp.ok and not temp.permanent
    refused = domain.smtp_answer(None, "connection refused")
    assert not refused.ok and not refused.permanent


def test_email_retry_delays_grow_with_jitter_and_cap() -> None:
    rng = random.Random(7)
    delays = [domain.email_retry_delay(n, 30, 3600, rng) for n in range(1, 10)]
    assert 15 <= delays[0] <= 30
    assert 60 <= delays[2] <= 120
    assert all(1800 <= d <= 3600 for d in delays[7:])
    assert len({round(d, 6) for d in delays}) == len(delays)


def test_webhook_schedule_spans_about_three_days() -> None:
    from services.notifications.settings import NotificationSettings

    schedule = NotificationSettings().webhook_retry_schedule
    total = sum(schedule)
    assert 2.5 * 86400 <= total <= 3.5 * 86400
    assert domain.webhook_retry_delay(len(schedule) + 1, schedule) is None
    assert 4.5 <= (domain.webhook_retry_delay(1, schedule) or 0) <= 5.5


def test_webhook_signature_matches_the_standard_webhooks_test_vector() -> None:
    # The example from the Standard Webhooks specification and its reference libraries.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    sig = domain.webhook_signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_hmac_sha256_matches_githubs_published_vector() -> None:
    # The same primitive, against another published vector (hex form).
    mac = hmac.new(b"It's a Secret to Everybody", b"Hello, World!", hashlib.sha256).hexdigest()
    assert mac.startswith("757107ea")
    secret = domain.new_webhook_secret(b"It's a Secret to Everybody")
    assert base64.b64decode(secret.removeprefix("whsec_")) == b"It's a Secret to Everybody"


def test_patterns_with_wildcards() -> None:
    assert domain.matches(["civic.registration.*"], "civic.registration.registration.confirmed.v1")
    assert not domain.matches(["civic.registration.*"], "civic.surveys.survey.closed.v1")
    assert domain.matches(["*"], "civic.content.content.published.v1")
    assert domain.matches(["civic.*.deadline.approaching.v1"], "civic.surveys.deadline.approaching.v1")


def test_personal_fields_are_stripped() -> None:
    env = {"id": "x", "type": "t", "data": {"registration_id": "r", "contact": {"email": "a@example.org"}}}
    out = domain.strip_personal(env, ("contact", "ticket_code"))
    assert out["data"] == {"registration_id": "r"}
    assert env["data"]["contact"]  # the original is untouched


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fd00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::a00:1",
        "2002:7f00:1::",
        "ff02::1",
        "::",
    ],
)
def test_forbidden_addresses(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "1.1.1.1"])
def test_public_addresses_pass(address: str) -> None:
    assert not forbidden(ipaddress.ip_address(address))


def test_literal_hosts_in_every_spelling() -> None:
    assert literal_ip("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_ip("[::1]") == ipaddress.ip_address("::1")
    assert literal_ip("example.org") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://2130706433/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/",
        "ftp://example.org/",
        "http://user:pw@example.org/",
    ],
)
def test_registration_refuses_urls_that_are_visibly_internal(url: str) -> None:
    assert check_url(url)


def test_registration_accepts_a_public_url() -> None:
    assert check_url("https://hooks.example.org/civic") == []


# -- addresses on the wire and inboxes (issue 14) -------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "wire", "utf8"),
    [
        ("person@example.org", "person@example.org", False),
        ("x@bücher.example", "x@xn--bcher-kva.example", False),
        ("jörg@example.org", "jörg@example.org", True),
        ("jörg@müller.de", "jörg@xn--mller-kva.de", True),
    ],
)
def test_wire_addresses_write_domains_in_idna_and_flag_utf8_local_parts(address: str, wire: str, utf8: bool) -> None:
    assert domain.wire_address(address) == domain.WireAddress(wire, utf8)


@pytest.mark.parametrize(
    "address", ["no-at-sign", "a@", "@b.de", "a\r\nb@c.de", "a@b\x00.de", "a@b\u00fc\u0308\u200d.de"]
)
def test_what_no_envelope_can_carry_is_undeliverable(address: str) -> None:
    with pytest.raises(domain.Undeliverable):
        domain.wire_address(address)


def test_tokens_outside_ascii_are_simply_not_valid() -> None:
    token = domain.sign_token("s", "confirm", "abc")
    assert domain.verify_token("s", "confirm", token) == "abc"
    assert domain.verify_token("s", "confirm", "jörg." + token.split(".")[1]) is None
    assert domain.verify_token("s", "confirm", token + "ä") is None


def test_plus_tagged_addresses_share_one_inbox_key() -> None:
    key = domain.mailbox_key("s", "opfer@example.org")
    assert domain.mailbox_key("s", "Opfer+1@Example.org") == domain.mailbox_key("s", "opfer+x@example.org") == key
    assert domain.mailbox_key("s", "other@example.org") != key
