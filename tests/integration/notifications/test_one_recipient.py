"""One recipient never touches another's mail: an address the server or SMTP cannot take fails alone, and
internationalised addresses go out as RFC 6531 allows (docs/notifications.md, "International addresses")."""

from __future__ import annotations

from collections import Counter

from shared.settings import Settings
from tests.integration.notifications.support import envelope, mail_settings, meeting, running_service, smtp_server
from tests.integration.notifications.test_mail import confirmed
from tests.support import eventually

PLAIN = [f"nachbar{i}@example.org" for i in range(6)]


async def _settled(svc, n: int) -> list:  # type: ignore[no-untyped-def,type-arg]
    rows = await svc.rows("select address, state, last_answer, attempts from deliveries")
    return rows if len(rows) == n and all(r["state"] in ("sent", "given_up") for r in rows) else []


async def test_an_address_the_server_cannot_take_fails_alone_and_the_batch_goes_out_once(settings: Settings) -> None:
    """Without SMTPUTF8 at the server: a non-ASCII local part is given up on its own, an IDN domain is sent
    in its IDNA form, and every other mail of the same claim is sent exactly once."""
    with smtp_server() as smtp:
        # One claim holds them all, so a failure that escaped its delivery would strand the whole batch.
        async with running_service(settings, mail_settings(smtp.port, sender_batch_size=50)) as svc:
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            addresses = [*PLAIN[:3], "jörg@example.org", "x@bücher.example", *PLAIN[3:]]
            for a in addresses:
                await svc.feed(envelope(confirmed(m.meeting_id, a), svc.tenant, f"meeting/{m.meeting_id}"))
            rows = await eventually(lambda: _settled(svc, len(addresses)), timeout=20, what="every delivery settled")
            by_address = {r["address"]: r for r in rows}
            assert by_address["jörg@example.org"]["state"] == "given_up"
            assert "international addresses" in by_address["jörg@example.org"]["last_answer"]
            assert by_address["jörg@example.org"]["attempts"] == 1
            for a in [*PLAIN, "x@bücher.example"]:
                assert by_address[a]["state"] == "sent", by_address[a]
                assert by_address[a]["attempts"] == 1
            received = Counter(rcpt for rcpts in smtp.sink.envelopes for rcpt in rcpts)
            assert received == Counter([*PLAIN, "x@xn--bcher-kva.example"])  # each once, the IDN as IDNA
            assert sorted(x["To"] for x in smtp.sink.messages) == sorted([*PLAIN, "x@xn--bcher-kva.example"])


async def test_a_server_offering_smtputf8_gets_the_international_address_as_it_is(settings: Settings) -> None:
    with smtp_server(smtputf8=True) as smtp:
        async with running_service(settings, mail_settings(smtp.port)) as svc:
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            for a in ("jörg@bücher.example", PLAIN[0]):
                await svc.feed(envelope(confirmed(m.meeting_id, a), svc.tenant, f"meeting/{m.meeting_id}"))
            rows = await eventually(lambda: _settled(svc, 2), timeout=20, what="both settled")
            assert {r["state"] for r in rows} == {"sent"}, [tuple(r) for r in rows]
            received = Counter(rcpt for rcpts in smtp.sink.envelopes for rcpt in rcpts)
            assert received == Counter(["jörg@xn--bcher-kva.example", PLAIN[0]])
            assert sorted(x["To"] for x in smtp.sink.messages) == sorted(["jörg@xn--bcher-kva.example", PLAIN[0]])
