"""A fan-out mail filled in from its prototype is the mail ``build_email`` would have built for that recipient."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

from services.notifications.mails import UNSUBSCRIBE_SLOT as LINK
from services.notifications.mails import Prototype, Rendered, build_email, to_bytes

RENDERED = Rendered(
    "Anmeldeschluss naht: Auftaktveranstaltung Digitalstrategie",
    f"Guten Tag,\n\nnur noch bis Montag, 25. Oktober 2021, 23:59 Uhr.\n\nAbmelden: {LINK}\n",
    f'<p>Guten Tag,</p><p>nur noch bis Montag.</p><p><a href="{LINK}">Abmelden</a></p>',
)


def parsed(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def built(to: str, message_id: str, at: datetime, url: str) -> EmailMessage:
    personal = Rendered(RENDERED.subject, RENDERED.text.replace(LINK, url), RENDERED.html.replace(LINK, url))
    msg = build_email(
        personal,
        to=to,
        from_address="beteiligung@example.org",
        from_name="Kreis Dithmarschen",
        message_id=message_id,
        date=at,
        unsubscribe_url=url,
    )
    return parsed(to_bytes(msg))


def test_filled_prototype_matches_the_mail_built_for_each_recipient() -> None:
    proto = Prototype.of(RENDERED, from_address="beteiligung@example.org", from_name="Kreis Dithmarschen")
    at = datetime(2021, 10, 22, 9, 30, tzinfo=UTC)
    for i in range(3):
        to, mid = f"person{i}@example.org", f"<delivery-{i}@example.org>"
        url = f"http://civic.test/api/notifications/unsubscribe?token=tok{i}.sig{i}"
        got = parsed(proto.fill(to=to, message_id=mid, date=at, unsubscribe_url=url))
        want = built(to, mid, at, url)
        for header in ("Subject", "From", "To", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post"):
            assert got[header] == want[header], header
        for kind in ("plain", "html"):
            got_body, want_body = got.get_body((kind,)), want.get_body((kind,))
            assert got_body is not None and want_body is not None
            assert got_body.get_content() == want_body.get_content()
            assert url in got_body.get_content() and LINK not in got_body.get_content()
        assert got["List-Unsubscribe"] == f"<{url}>"
        assert "civic-slot" not in got.as_string()


def test_a_filled_shell_is_the_transactional_mail_build_email_builds() -> None:
    """A mail without an unsubscribe link (a registration's) from the shell of its subject, with its own
    bodies: the same headers (``Auto-Submitted``, no ``List-Unsubscribe``) and bodies as built directly."""
    shell = Prototype.of(
        Rendered(RENDERED.subject, "", ""),
        from_address="beteiligung@example.org",
        from_name="Kreis Dithmarschen",
        unsubscribe=False,
    )
    at = datetime(2021, 10, 22, 9, 30, tzinfo=UTC)
    for i, name in enumerate(("Anna Schmidt", "Jörg Müller")):
        to, mid = f"person{i}@example.org", f"<delivery-{i}@example.org>"
        own = Rendered(RENDERED.subject, f"Guten Tag {name},\n\nPlatz {i + 1}.\n", f"<p>Guten Tag {name},</p>")
        got = parsed(shell.fill(to=to, message_id=mid, date=at, unsubscribe_url=None, text=own.text, html=own.html))
        want = parsed(
            to_bytes(
                build_email(
                    own,
                    to=to,
                    from_address="beteiligung@example.org",
                    from_name="Kreis Dithmarschen",
                    message_id=mid,
                    date=at,
                )
            )
        )
        for header in ("Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted", "List-Unsubscribe"):
            assert got[header] == want[header], header
        assert got["Auto-Submitted"] == "auto-generated" and got["List-Unsubscribe"] is None
        for kind in ("plain", "html"):
            got_body, want_body = got.get_body((kind,)), want.get_body((kind,))
            assert got_body is not None and want_body is not None
            assert got_body.get_content() == want_body.get_content()
            assert name in got_body.get_content()
        assert "civic-slot" not in got.as_string()
