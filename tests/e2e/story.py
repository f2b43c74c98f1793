"""The county's participation process, told once and run against any deployment (tests/e2e/test_story_*.py).

A county publishes its process, invites to a kick-off meeting, people register, cancel and move up from the
waiting list, reminders go out as the (moved) clock approaches the deadlines, a survey is reached through its
QR short link and answered, tickets are checked at the door, one person has their data erased, and a webhook
subscriber follows the registration events. Every step is checked on its real effect (HTTP answers, mail in the
SMTP sink, rows in the database, requests at the webhook receiver), polling, never sleeping.

Decisions the story makes:
- of the two people registered by staff after a phone call, one gave an e-mail address too and gets every mail
  the online registrants get; the other gave only a phone number and gets no mail at all (checked);
- mail kinds are told apart by their German subject line (the templates' ``subject`` blocks);
- the webhook's timestamps are the services' (moved) clock, so the receiver checks signatures, not freshness.
"""

from __future__ import annotations

import collections
import html
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any, TypeVar, cast
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx

from shared.contracts.registry import REGISTRY
from tests.e2e.support import Mail, WebhookReceiver, classify, link_to, tables_holding, verify_standard_webhook
from tests.qr import decode_png
from tests.support import eventually, staff_headers

TENANT = "kreis-dithmarschen"
BERLIN = ZoneInfo("Europe/Berlin")
#: How long any effect may take to show; generous for a loaded CI machine (polls return as soon as it shows).
WAIT = 60.0
SEATS = 50
PEOPLE = 60
#: Registered by staff after a phone call: one with an e-mail address, one with a phone number only.
BY_PHONE_WITH_EMAIL, BY_PHONE_ONLY = 10, 20
CANCELLING = (5, 7)
#: Subscribes to the process's news and has not registered: gets the "registration closes" reminders.
NEIGHBOUR = "nachbarin@example.org"
#: Registered and subscribed: no "registration closes" reminder; later asks for erasure.
ERASED = 3
CONTACT_EMAIL = "beteiligung@kreis-dithmarschen.example.org"
CONTACT_OBFUSCATED = "beteiligung [at] kreis-dithmarschen [dot] example [dot] org"


T = TypeVar("T")


async def until(probe: Callable[[], Awaitable[T]], what: str) -> T:
    """Poll ``probe`` until it returns something truthy (up to WAIT seconds)."""
    return await eventually(probe, timeout=WAIT, interval=0.1, what=what)


def berlin(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


#: Where the story begins: the services' clocks stand here when they start.
START = berlin("2021-10-01T10:00:00")


@dataclass
class Deployment:
    """One running civic as a client sees it, plus the test's handles on its surroundings."""

    name: str
    base_url: str
    #: The deployment's database with the administrator's credentials (to look into every schema).
    admin_database_url: str
    set_clock: Callable[[datetime], None]
    read_mail: Callable[[], list[EmailMessage]]
    #: The loopback port the notifications service is allowed to deliver webhooks to.
    webhook_port: int
    #: The tail of the services' logs, attached to a failure.
    logs: Callable[[], str] = lambda: ""


@dataclass
class Person:
    n: int
    channel: str = "online"
    email: str | None = None
    phone: str | None = None
    registration_id: str = ""
    secret: str = ""
    ticket: str | None = None
    status: str = ""

    @property
    def name(self) -> str:
        return f"Teilnehmende {self.n:02d}"


def people() -> list[Person]:
    out = []
    for n in range(1, PEOPLE + 1):
        p = Person(n, email=f"person{n:02d}@example.org")
        if n == BY_PHONE_WITH_EMAIL:
            p.channel, p.phone = "phone", "0481/97-3510"
        elif n == BY_PHONE_ONLY:
            p.channel, p.phone, p.email = "phone", "0481/97-3520", None
        out.append(p)
    return out


#: The survey: (question id, kind, options) and what respondent i answers.
SURVEY_QUESTIONS: list[dict[str, Any]] = [
    {
        "id": "massnahme",
        "kind": "single_choice",
        "text": "Welche Maßnahme ist Ihnen am wichtigsten?",
        "required": True,
        "options": [
            {"id": "radweg", "label": "Radwege zwischen den Dörfern"},
            {"id": "bus", "label": "Bus im Stundentakt"},
            {"id": "carsharing", "label": "Carsharing am Bahnhof"},
        ],
    },
    {
        "id": "verkehrsmittel",
        "kind": "multiple_choice",
        "text": "Womit sind Sie unterwegs?",
        "options": [
            {"id": "fahrrad", "label": "Fahrrad"},
            {"id": "bus", "label": "Bus"},
            {"id": "auto", "label": "Auto"},
        ],
    },
    {"id": "ehrenamt", "kind": "yes_no", "text": "Würden Sie sich ehrenamtlich beteiligen?"},
    {"id": "zufriedenheit", "kind": "scale", "text": "Wie zufrieden sind Sie heute?", "min": 1, "max": 5},
]
RESPONSES = 20


def answers_of(i: int) -> dict[str, Any]:
    modes = [["fahrrad"], ["bus", "auto"], ["fahrrad", "bus"], ["auto"]][i % 4]
    return {
        "massnahme": ["radweg", "bus", "carsharing"][i % 3],
        "verkehrsmittel": modes,
        "ehrenamt": i % 4 == 0,
        "zufriedenheit": i % 5 + 1,
    }


@dataclass
class Story:
    dep: Deployment
    http: httpx.AsyncClient
    staff: dict[str, str] = field(default_factory=lambda: staff_headers(TENANT, "staff"))
    people: list[Person] = field(default_factory=people)
    timings: list[tuple[str, float]] = field(default_factory=list)
    process_id: str = ""
    process_slug: str = "mobilitaet-dithmarschen"
    meeting_id: str = ""
    survey: dict[str, Any] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    receiver: WebhookReceiver | None = None

    def person(self, n: int) -> Person:
        return self.people[n - 1]

    # --- helpers ---------------------------------------------------------------------------------------------

    async def call(self, method: str, path: str, expect: int | tuple[int, ...] = 200, **kw: Any) -> Any:
        response = await self.http.request(method, path, **kw)
        allowed = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in allowed, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response

    async def json(self, method: str, path: str, expect: int | tuple[int, ...] = 200, **kw: Any) -> Any:
        return (await self.call(method, path, expect, **kw)).json()

    async def press_the_button(self, page_url: str) -> httpx.Response:
        """Open a page of the web client and send its one form, as a browser without JavaScript does (the CSRF
        cookie and hidden fields included); the answer is the redirect-after-POST."""
        page = await self.call("GET", page_url, 200)
        assert page.headers["content-type"].startswith("text/html"), page.headers
        found = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert found, page.text[:2000]
        fields = {
            k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text)
        }
        assert "csrf" in fields, fields
        return await self.call("POST", html.unescape(found.group(1)), 303, data=fields)

    def mails(self) -> list[Mail]:
        return [classify(m) for m in self.dep.read_mail()]

    def mails_of(self, kind: str) -> list[Mail]:
        return [m for m in self.mails() if m.kind == kind]

    async def wait_for_mails(self, kind: str, count: int, timeout: float = WAIT) -> list[Mail]:
        async def probe() -> list[Mail] | None:
            found = self.mails_of(kind)
            return found if len(found) >= count else None

        found = await eventually(probe, timeout=timeout, interval=0.2, what=f"{count} mails of kind {kind}")
        assert found is not None
        return found

    async def page(self) -> dict[str, Any]:
        path = f"/api/content/public/{TENANT}/processes/{self.process_slug}"
        return dict(await self.json("GET", path))

    async def page_meeting(self) -> dict[str, Any]:
        meetings = (await self.page())["meetings"]
        assert len(meetings) == 1, meetings
        return dict(meetings[0])

    async def step(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        started = time.monotonic()
        try:
            await body()
        except BaseException as exc:
            exc.add_note(f"in step {name!r} of the story against {self.dep.name}; logs:\n{self.dep.logs()}")
            raise
        self.timings.append((name, time.monotonic() - started))
        print(f"{self.timings[-1][1]:6.2f}s  {name}", flush=True)

    # --- 1. the process --------------------------------------------------------------------------------------

    async def publish_process(self) -> None:
        p = await self.json(
            "POST",
            "/api/content/staff/processes",
            201,
            headers=self.staff,
            json={
                "slug": self.process_slug,
                "title": {"de": "Mobilitätskonzept Dithmarschen", "en": "Dithmarschen mobility plan"},
                "motto": {"de": "Gemeinsam unterwegs"},
                "summary": {"de": "Wie wollen wir 2030 im Kreis unterwegs sein?"},
            },
        )
        self.process_id = p["id"]
        phases = [
            ("Bestandsaufnahme", "2021-09-01", "2021-10-15"),
            ("Beteiligung", "2021-10-16", "2021-11-30"),
            ("Umsetzung", "2022-01-01", None),
        ]
        for title, starts, ends in phases:
            await self.call(
                "POST",
                f"/api/content/staff/processes/{self.process_id}/phases",
                201,
                headers=self.staff,
                json={"title": {"de": title}, "starts_on": starts, "ends_on": ends},
            )
        await self.call(
            "POST",
            f"/api/content/staff/processes/{self.process_id}/contacts",
            201,
            headers=self.staff,
            json={
                "name": "Projektbüro Mobilität",
                "role": {"de": "Ansprechstelle für die Beteiligung"},
                "email": CONTACT_EMAIL,
                "phone": "0481 97-1000",
            },
        )
        await self.call("POST", f"/api/content/staff/processes/{self.process_id}/publish", headers=self.staff)

        response = await self.call("GET", f"/api/content/public/{TENANT}/processes/{self.process_slug}")
        page = response.json()
        assert page["title"] == "Mobilitätskonzept Dithmarschen"
        assert [ph["title"] for ph in page["phases"]] == [t for t, _, _ in phases]
        assert page["current_phase"]["title"] == "Bestandsaufnahme", page["current_phase"]
        assert [c["email"] for c in page["contacts"]] == [CONTACT_OBFUSCATED]
        assert CONTACT_EMAIL not in response.text

    # --- 2. the kick-off meeting -----------------------------------------------------------------------------

    async def publish_meeting(self) -> None:
        m = await self.json(
            "POST",
            "/api/registration/staff/meetings",
            201,
            headers=self.staff,
            json={
                "title": "Auftaktveranstaltung Mobilitätskonzept",
                "venue": {
                    "name": "Kreishaus, Sitzungssaal",
                    "street": "Stettiner Straße 30",
                    "postal_code": "25746",
                    "city": "Heide",
                },
                "starts_at": "2021-10-28T18:00:00",
                "ends_at": "2021-10-28T20:30:00",
                "capacity": SEATS,
                "waitlist": True,
                "registration_closes_at": "2021-10-25T23:59:00",
                "process_id": self.process_id,
            },
        )
        self.meeting_id = m["id"]
        assert m["status"] == "draft" and m["capacity"] == SEATS and m["waitlist"] is True
        assert datetime.fromisoformat(m["starts_at"]) == berlin("2021-10-28T18:00:00")
        assert datetime.fromisoformat(m["registration_closes_at"]) == berlin("2021-10-25T23:59:00")
        published = await self.json(
            "POST", f"/api/registration/staff/meetings/{self.meeting_id}/publish", headers=self.staff
        )
        assert published["status"] == "published"
        await self.call(
            "POST",
            f"/api/content/staff/processes/{self.process_id}/references",
            201,
            headers=self.staff,
            json={"kind": "meeting", "ref_id": self.meeting_id},
        )

        async def shown() -> dict[str, Any] | None:
            m = await self.page_meeting()
            return m if m["seats_left"] == SEATS and m["registration"] == "open" else None

        shown_meeting = await until(shown, "the meeting with 50 free seats on the process page")
        assert shown_meeting is not None
        assert shown_meeting["title"] == "Auftaktveranstaltung Mobilitätskonzept"
        assert shown_meeting["capacity"] == SEATS

    # --- subscribers and the webhook (before anything happens they should hear of) ---------------------------

    async def subscribe_once(self, address: str) -> dict[str, Any] | None:
        """Subscribe ``address`` to the process's news; None while notifications has not yet heard of the process
        (it learns of it from content's event, a moment after publication, and refuses the process until then)."""
        response = await self.call(
            "POST",
            "/api/notifications/subscriptions",
            (202, 422),
            json={"tenant": TENANT, "email": address, "process_id": self.process_id},
        )
        if response.status_code == 202:
            return cast(dict[str, Any], response.json())
        assert [e["code"] for e in response.json()["errors"]] == ["unknown_process"], response.text
        return None

    async def subscribe(self) -> None:
        assert self.receiver is not None
        self.webhook = await self.json(
            "POST",
            "/api/notifications/webhooks",
            201,
            headers=self.staff,
            json={"url": self.receiver.url, "event_types": ["civic.registration.*"], "description": "Kreis-App"},
        )
        assert self.webhook["secret"].startswith("whsec_")
        subscribers = [NEIGHBOUR, str(self.person(ERASED).email)]
        for address in subscribers:
            answer = await until(
                lambda address=address: self.subscribe_once(address), f"{address} subscribed to the process"
            )
            assert answer["state"] == "pending"
        mails = await self.wait_for_mails("subscription_confirm", len(subscribers))
        assert sorted(m.to for m in mails) == sorted(subscribers)
        for m in mails:
            link = link_to(m.text, "/abo/bestaetigen?")
            # The link leads to this deployment's confirm page (the one a subscriber's mail client would open),
            # which confirms only with its button (mail scanners follow links).
            assert link.startswith(f"{self.dep.base_url}/"), link
            done = await self.press_the_button(link)
            assert done.headers["location"] == "/abo/bestaetigt"

    # --- 3. sixty registrations ------------------------------------------------------------------------------

    async def register_everyone(self) -> None:
        for p in self.people:
            body: dict[str, Any] = {"name": p.name, "privacy_consent": True}
            if p.email:
                body["email"] = p.email
            if p.phone:
                body["phone"] = p.phone
            if p.channel == "phone":
                path = f"/api/registration/staff/meetings/{self.meeting_id}/registrations"
                reg = await self.json("POST", path, 201, headers=self.staff, json={**body, "channel": "phone"})
            else:
                reg = await self.json(
                    "POST", f"/api/registration/meetings/{self.meeting_id}/registrations", 201, json=body
                )
            p.registration_id, p.secret, p.ticket, p.status = (
                reg["id"],
                reg["secret"],
                reg["ticket_code"],
                reg["status"],
            )
            assert reg["channel"] == p.channel
            if p.n <= SEATS:
                assert p.status == "confirmed" and p.ticket, reg
            else:
                assert p.status == "waitlisted" and reg["position"] == p.n - SEATS, reg
        assert self.person(BY_PHONE_WITH_EMAIL).phone and self.person(BY_PHONE_ONLY).email is None
        staff_view = await self.json("GET", f"/api/registration/staff/meetings/{self.meeting_id}", headers=self.staff)
        assert (staff_view["confirmed_seats"], staff_view["waitlisted"], staff_view["seats_left"]) == (SEATS, 10, 0)
        phoned = await self.json("GET", f"/api/registration/registrations/{self.person(BY_PHONE_ONLY).secret}")
        assert phoned["phone"] == "+49481973520" and phoned["email"] is None and phoned["channel"] == "phone"

        confirmed = {m.to: m for m in await self.wait_for_mails("confirmed", SEATS - 1)}
        waitlisted = {m.to: m for m in await self.wait_for_mails("waitlisted", PEOPLE - SEATS)}
        for p in self.people:
            if p.email is None:
                assert not [m for m in self.mails() if p.name in m.text], "a phone-only registrant got mail"
                continue
            if p.n <= SEATS:
                mail = confirmed.pop(p.email)
                assert p.ticket and p.ticket in mail.text, f"{p.email}: ticket code not in the mail"
                assert p.name in mail.text
                (ics,) = mail.parts("text/calendar")
                calendar = ics.get_content()
                assert "BEGIN:VEVENT" in calendar
                assert "20211028T180000" in calendar or "20211028T160000Z" in calendar, calendar
                assert mail.parts("image/png"), f"{p.email}: no QR code"
            else:
                mail = waitlisted.pop(p.email)
                assert p.name in mail.text
        assert not confirmed and not waitlisted, (confirmed.keys(), waitlisted.keys())
        # The QR code in the mail is the ticket.
        first = next(m for m in self.mails_of("confirmed") if m.to == self.person(1).email)
        (png,) = first.parts("image/png")
        assert decode_png(png.get_content()) == self.person(1).ticket

        async def full() -> bool:
            m = await self.page_meeting()
            return bool(m["seats_left"] == 0 and m["registration"] == "waitlist")

        await until(full, "the process page showing the meeting full, with a waiting list")

    # --- 4. two cancel, two move up --------------------------------------------------------------------------

    async def cancel_and_promote(self) -> None:
        for n in CANCELLING:
            p = self.person(n)
            # Their own link, from the confirmation mail: the manage page, then cancelling on its confirmation page.
            mail = next(m for m in self.mails_of("confirmed") if m.to == p.email)
            link = link_to(mail.text, "/anmeldung/")
            assert link == f"{self.dep.base_url}/anmeldung/{p.secret}", link
            manage = await self.call("GET", link, 200)
            assert f'href="/anmeldung/{p.secret}/absagen"' in manage.text
            done = await self.press_the_button(f"{link}/absagen")
            assert done.headers["location"] == f"/anmeldung/{p.secret}?abgesagt=1"
            out = await self.json("GET", f"/api/registration/registrations/{p.secret}")
            assert out["status"] == "cancelled" and out["cancelled_by"] == "citizen", out
            p.status = "cancelled"
        promoted = [self.person(SEATS + 1), self.person(SEATS + 2)]
        for p in promoted:

            async def moved_up(p: Person = p) -> dict[str, Any] | None:
                view = await self.json("GET", f"/api/registration/registrations/{p.secret}")
                return view if view["status"] == "confirmed" else None

            view = await until(moved_up, f"registration {p.n} promoted")
            assert view is not None
            p.status, p.ticket = "confirmed", view["ticket_code"]
            assert p.ticket
        still_waiting = await self.json("GET", f"/api/registration/registrations/{self.person(SEATS + 3).secret}")
        assert still_waiting["status"] == "waitlisted" and still_waiting["position"] == 1, still_waiting

        mails = await self.wait_for_mails("promoted", 2)
        assert sorted(m.to for m in mails) == sorted(str(p.email) for p in promoted)
        for m, p in ((next(m for m in mails if m.to == p.email), p) for p in promoted):
            assert p.ticket and p.ticket in m.text
        cancelled = await self.wait_for_mails("cancelled", 2)
        assert sorted(m.to for m in cancelled) == sorted(str(self.person(n).email) for n in CANCELLING)

        staff_view = await self.json("GET", f"/api/registration/staff/meetings/{self.meeting_id}", headers=self.staff)
        assert (staff_view["confirmed_seats"], staff_view["waitlisted"]) == (SEATS, 8)
        page_meeting = await self.page_meeting()
        assert page_meeting["seats_left"] == 0 and page_meeting["registration"] == "waitlist", page_meeting

    # --- 6a. the survey: created, printed as a QR code, opened, answered ---------------------------------------

    async def prepare_survey(self) -> None:
        self.survey = await self.json(
            "POST",
            "/api/surveys/surveys",
            201,
            headers=self.staff,
            json={
                "title": "Wie sind Sie im Kreis unterwegs?",
                "slug": "unterwegs-2021",
                "opens_at": "2021-10-04T09:00:00+02:00",
                "closes_at": "2021-10-31T18:00:00+01:00",
                "results_public": True,
                "process_id": self.process_id,
                "sections": [{"title": "Ihre Meinung", "questions": SURVEY_QUESTIONS}],
            },
        )
        published = await self.json("POST", f"/api/surveys/surveys/{self.survey['id']}/publish", headers=self.staff)
        assert published["state"] == "published"
        await self.call(
            "POST",
            f"/api/content/staff/processes/{self.process_id}/references",
            201,
            headers=self.staff,
            json={"kind": "survey", "ref_id": self.survey["id"]},
        )
        qr = await self.json(
            "POST",
            "/api/content/staff/qr-codes",
            201,
            headers=self.staff,
            json={
                "target_kind": "survey",
                "target_url": self.survey["url"],
                "target_id": self.survey["id"],
                "label": "Plakat Bahnhof Heide",
            },
        )
        assert qr["short_link"] == f"{self.dep.base_url}/q/{qr['code']}", qr
        # The poster: what a phone's camera reads from the printed code is the short link.
        png = await self.call(
            "GET", f"/api/content/staff/qr-codes/{qr['code']}/image.png", headers=self.staff, params={"size": "s"}
        )
        self.survey["scanned"] = decode_png(png.content)
        assert self.survey["scanned"] == qr["short_link"]
        # Not open yet: answers are refused.
        refused = await self.call("POST", self.public_survey_path("responses"), 409, json={"answers": answers_of(0)})
        assert refused.json()["type"].endswith("survey-not-yet-open"), refused.text

    def public_survey_path(self, *rest: str) -> str:
        return "/".join([f"/api/surveys/public/{TENANT}/{self.survey['slug']}", *rest])

    async def answer_survey(self) -> None:
        self.dep.set_clock(berlin("2021-10-04T10:00:00"))
        redirect = await self.call("GET", self.survey["scanned"], 302)
        target = redirect.headers["location"]
        assert target == self.survey["url"], (target, self.survey["url"])
        # The poster leads to the survey's page in the web client; its questionnaire comes from this API.
        assert httpx.URL(target).path == f"/umfrage/{TENANT}/{self.survey['slug']}"
        path = self.public_survey_path()

        async def opened() -> dict[str, Any] | None:
            s = await self.json("GET", path)
            return s if s["state"] == "open" else None

        questionnaire = await until(opened, "the survey open after its opening time")
        assert questionnaire is not None
        asked = [q["id"] for section in questionnaire["sections"] for q in section["questions"]]
        assert asked == [q["id"] for q in SURVEY_QUESTIONS]

        keys = [uuid4().hex for _ in range(RESPONSES)]
        for i, key in enumerate(keys):
            body = {"answers": answers_of(i), "submission_key": key}
            await self.call("POST", f"{path}/responses", 201, json=body)
        # A phone on a shaky connection sends response 7 again: stored once.
        retried = await self.call(
            "POST", f"{path}/responses", 200, json={"answers": answers_of(7), "submission_key": keys[7]}
        )
        assert retried.headers.get("idempotent-replayed") == "true"
        live = await self.json("GET", f"/api/surveys/surveys/{self.survey['id']}/results", headers=self.staff)
        assert live["responses"] == RESPONSES, live
        await self.call("GET", self.public_survey_path("results"), 409)

        async def shown_open() -> bool:
            surveys = (await self.page())["surveys"]
            return len(surveys) == 1 and surveys[0]["status"] == "open"

        await until(shown_open, "the process page showing the survey open")

    # --- 5. reminders as the deadlines approach --------------------------------------------------------------

    async def registration_closes_reminders(self) -> None:
        # 72 h before registration closes (25 Oct, 23:59): the subscriber who has not registered hears of it.
        self.dep.set_clock(berlin("2021-10-23T00:00:00"))
        first = await self.wait_for_mails("reminder_registration_closes", 1)
        assert [m.to for m in first] == [NEIGHBOUR]
        # Past the 24 h mark: once more, and only once.
        self.dep.set_clock(berlin("2021-10-25T00:00:00"))
        both = await self.wait_for_mails("reminder_registration_closes", 2)
        assert [m.to for m in both] == [NEIGHBOUR, NEIGHBOUR]

        async def closed() -> bool:
            return bool((await self.page_meeting())["registration"] == "closed")

        self.dep.set_clock(berlin("2021-10-26T00:05:00"))
        await until(closed, "the process page showing registration closed")

    async def meeting_starts_reminders(self) -> None:
        attending = [p for p in self.people if p.status == "confirmed" and p.email]
        assert len(attending) == SEATS - 1
        # 72 h before 28 Oct, 18:00 was 25 Oct, 18:00: the clock already stands past it.
        first = await self.wait_for_mails("reminder_meeting_starts", len(attending))
        assert sorted(m.to for m in first) == sorted(str(p.email) for p in attending)
        self.dep.set_clock(berlin("2021-10-28T00:00:00"))
        both = await self.wait_for_mails("reminder_meeting_starts", 2 * len(attending))
        per_person = collections.Counter(m.to for m in both)
        assert set(per_person.values()) == {2} and len(per_person) == len(attending), per_person

    # --- 7. check-in at the door ------------------------------------------------------------------------------

    async def check_in(self) -> None:
        self.dep.set_clock(berlin("2021-10-28T18:30:00"))
        door = staff_headers(TENANT, "checkin")
        path = f"/api/registration/meetings/{self.meeting_id}/checkins"
        guest = self.person(1)
        view = await self.json("GET", f"/api/registration/registrations/{guest.secret}")
        assert view["ticket_code"] == guest.ticket
        scan = {"ticket": guest.ticket, "nonce": "door-a-scan-000001"}
        first = await self.json("POST", path, headers=door, json=scan)
        assert first["status"] == "checked_in" and first["repeat"] is False, first
        again = await self.json("POST", path, headers=door, json=scan)
        assert again["status"] == "checked_in" and again["repeat"] is True, again
        # The ticket from the confirmation mail of someone who cancelled since.
        gone = self.person(CANCELLING[0])
        mail = next(m for m in self.mails_of("confirmed") if m.to == gone.email)
        assert gone.ticket and gone.ticket in mail.text
        refused = await self.call(
            "POST", path, 409, headers=door, json={"ticket": gone.ticket, "nonce": "door-a-scan-000002"}
        )
        assert refused.json()["reason"] == "revoked", refused.text
        stats = await self.json("GET", f"/api/registration/staff/meetings/{self.meeting_id}/stats", headers=door)
        assert stats["checked_in"] == 1 and stats["confirmed"] == SEATS and stats["cancelled"] == 2, stats

    # --- 6b. the survey closes; its results ------------------------------------------------------------------

    async def close_survey(self) -> None:
        # 72 h before the survey closes, its process's subscribers are reminded (once).
        self.dep.set_clock(berlin("2021-10-30T12:00:00"))
        reminded = await self.wait_for_mails("reminder_survey_closes", 2)
        assert sorted(m.to for m in reminded) == sorted([NEIGHBOUR, str(self.person(ERASED).email)])

        self.dep.set_clock(datetime.fromisoformat("2021-10-31T18:01:00+01:00"))

        async def closed() -> dict[str, Any] | None:
            s = await self.json("GET", f"/api/surveys/surveys/{self.survey['id']}", headers=self.staff)
            return s if s["state"] == "closed" else None

        await until(closed, "the survey closed after its closing time")
        late = await self.call("POST", self.public_survey_path("responses"), 409, json={"answers": answers_of(1)})
        assert late.json()["type"].endswith("survey-closed"), late.text

        results = await self.json("GET", self.public_survey_path("results"))
        assert results["state"] == "closed" and results["responses"] == RESPONSES, results
        sent = [answers_of(i) for i in range(RESPONSES)]
        by_id = {q["id"]: q for q in results["questions"]}
        single = collections.Counter(a["massnahme"] for a in sent)
        assert {o["id"]: o["count"] for o in by_id["massnahme"]["options"]} == {
            k: single[k] for k in ("radweg", "bus", "carsharing")
        }
        multi = collections.Counter(o for a in sent for o in a["verkehrsmittel"])
        assert {o["id"]: o["count"] for o in by_id["verkehrsmittel"]["options"]} == {
            k: multi[k] for k in ("fahrrad", "bus", "auto")
        }
        yes = sum(1 for a in sent if a["ehrenamt"])
        assert (by_id["ehrenamt"]["yes"], by_id["ehrenamt"]["no"]) == (yes, RESPONSES - yes)
        scale = collections.Counter(str(a["zufriedenheit"]) for a in sent)
        assert by_id["zufriedenheit"]["distribution"] == {str(v): scale[str(v)] for v in range(1, 6)}

        async def shown_closed() -> bool:
            return bool((await self.page())["surveys"][0]["status"] == "closed")

        await until(shown_closed, "the process page showing the survey closed")

    # --- 8. erasure ------------------------------------------------------------------------------------------

    async def erase(self) -> None:
        p = self.person(ERASED)
        assert p.email
        before = await tables_holding(self.dep.admin_database_url, p.email)
        # The scan finds the address where it is expected before the erasure (so it can find it at all).
        assert "registration.registrations.email" in before and any(h.startswith("notifications.") for h in before), (
            before
        )
        out = await self.json("POST", "/api/registration/staff/erasures", headers=self.staff, json={"email": p.email})
        assert out["registration_ids"] == [p.registration_id], out

        async def gone() -> bool:
            return not await tables_holding(self.dep.admin_database_url, p.email or "")

        try:
            await eventually(gone, timeout=WAIT, interval=0.5, what=f"{p.email} gone from every table")
        except AssertionError as exc:
            left = await tables_holding(self.dep.admin_database_url, p.email)
            raise AssertionError(f"{p.email} still in {left}") from exc
        left_name = await tables_holding(self.dep.admin_database_url, p.name)
        assert not left_name, f"the name outlived the erasure in {left_name}"
        view = await self.json("GET", f"/api/registration/registrations/{p.secret}")
        assert view["email"] is None and view["name"] is None, view

    # --- 9. the webhook subscriber ---------------------------------------------------------------------------

    async def check_webhook(self) -> None:
        receiver = self.receiver
        assert receiver is not None
        endpoint = self.webhook["id"]

        async def all_delivered() -> list[dict[str, Any]] | None:
            rows = await self.json("GET", f"/api/notifications/webhooks/{endpoint}/deliveries", headers=self.staff)
            # The erasure itself is private (person.erased.v2): the last public event of the story is the check-in.
            last = any(r["template"] == "civic.registration.registration.checked_in.v1" for r in rows)
            done = last and all(r["state"] == "sent" for r in rows) and len(receiver.received) >= len(rows)
            return list(rows) if done else None

        deliveries = await eventually(all_delivered, timeout=WAIT, interval=0.3, what="every webhook delivered")
        assert deliveries is not None
        received = list(receiver.received)
        assert len(received) == len(deliveries), (len(received), len(deliveries))
        ids = [r.headers["webhook-id"] for r in received]
        assert len(set(ids)) == len(ids), "an event was delivered twice"
        secret = self.webhook["secret"]
        # The check itself rejects what was not signed with this secret.
        assert not verify_standard_webhook(secret, received[0].headers, received[0].body + b" ")
        assert not verify_standard_webhook("whsec_" + "A" * 44, received[0].headers, received[0].body)
        for r in received:
            assert verify_standard_webhook(secret, r.headers, r.body), f"bad signature on {r.headers}"
            assert r.event["id"] == r.headers["webhook-id"]
        types = collections.Counter(r.event["type"] for r in received)
        assert all(t.startswith("civic.registration.") for t in types), types
        # Only public events leave civic: who registered, was confirmed, waitlisted, promoted, cancelled or erased
        # travels on the private stream (docs/privacy.md) and never reaches a webhook.
        assert not [t for t in types if REGISTRY.get(t).visibility == "private"], types
        wanted = {"registration.checked_in": 1, "meeting.published": 1}
        got = {k: types[f"civic.registration.{k}.v1"] for k in wanted}
        assert got == wanted, types
        assert types["civic.registration.meeting.seats_changed.v1"] >= 1, types
        received_ids = {
            r.event["data"]["registration_id"]
            for r in received
            if r.event["type"] == "civic.registration.registration.received.v1"
        }
        assert received_ids == {p.registration_id for p in self.people}

        personal: list[str] = [NEIGHBOUR, "@example.org", "+49481", "0481/97", "Teilnehmende"]
        for p in self.people:
            personal += [p.secret] + ([p.ticket] if p.ticket else [])
        everything = "\n".join(r.body.decode() for r in received)
        leaked = sorted({s for s in personal if s in everything})
        assert not leaked, f"personal data or credentials in webhook bodies: {leaked}"

    # --- the whole story -------------------------------------------------------------------------------------

    def check_all_mail(self) -> None:
        """Every mail that went out, by recipient and kind: exactly these, none twice, none to anyone else."""
        expected: collections.Counter[tuple[str, str]] = collections.Counter()
        expected[(NEIGHBOUR, "subscription_confirm")] += 1
        expected[(NEIGHBOUR, "reminder_registration_closes")] += 2
        expected[(NEIGHBOUR, "reminder_survey_closes")] += 1
        erased = str(self.person(ERASED).email)
        expected[(erased, "subscription_confirm")] += 1
        expected[(erased, "reminder_survey_closes")] += 1
        for p in self.people:
            if p.email is None:
                continue
            expected[(p.email, "confirmed" if p.n <= SEATS else "waitlisted")] += 1
            if p.n in CANCELLING:
                expected[(p.email, "cancelled")] += 1
            if p.n in (SEATS + 1, SEATS + 2):
                expected[(p.email, "promoted")] += 1
            if p.status == "confirmed":
                expected[(p.email, "reminder_meeting_starts")] += 2
        got = collections.Counter((m.to, m.kind) for m in self.mails())
        assert got == expected, {"unexpected": got - expected, "missing": expected - got}


@dataclass(frozen=True)
class Told:
    """What a run of the story leaves for the tests to look at."""

    timings: list[tuple[str, float]]

    def report(self) -> str:
        total = sum(t for _, t in self.timings)
        return "\n".join([*(f"{t:6.2f}s  {name}" for name, t in self.timings), f"{total:6.2f}s  total"])


async def run_story(dep: Deployment) -> Told:
    """The whole story against one deployment."""
    dep.set_clock(START)
    receiver = WebhookReceiver(dep.webhook_port)
    async with httpx.AsyncClient(base_url=dep.base_url, timeout=30) as http:
        story = Story(dep, http, receiver=receiver)
        with receiver.running():
            await story.step("1 process published", story.publish_process)
            await story.step("subscribers and webhook", story.subscribe)
            await story.step("2 kick-off meeting published", story.publish_meeting)
            await story.step("6 survey created with QR code", story.prepare_survey)
            await story.step("3 sixty registrations and their mail", story.register_everyone)
            await story.step("4 two cancel, two promoted", story.cancel_and_promote)
            await story.step("6 survey opened via QR, answered", story.answer_survey)
            await story.step("5 registration-closes reminders", story.registration_closes_reminders)
            await story.step("5 meeting-starts reminders", story.meeting_starts_reminders)
            await story.step("7 check-in", story.check_in)
            await story.step("6 survey closed, results", story.close_survey)
            await story.step("8 erasure", story.erase)
            await story.step("9 webhook subscriber", story.check_webhook)
            await story.step("all mail, no duplicates", _sync(story.check_all_mail))
    return Told(story.timings)


def _sync(f: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        f()

    return run
