"""Demo data: two tenants modelled on the reference cases, loaded through the content service's own use cases.

Run ``python -m civic.demo`` (DATABASE_URL as for the services) or call ``load_content_demo``. Loading twice
changes nothing: a tenant whose process exists is left as it is (references and QR codes are upserts).
People are invented and reachable only at example.org addresses.

The meeting and survey the county's process refers to live in the registration and surveys services; the
lead creates them through those services' APIs and passes their ids here. Without ids, fixed placeholder ids
are used; the page leaves them out until events with those ids arrive.

The story is dated around today: the county's first phase and its kick-off meeting (two weeks ahead) are
current, so the process page shows a current phase and an open registration. The poster QR codes lead to the
web client's pages (CIVIC_LINK_* templates).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid5

import asyncpg

from services.content import schemas, use_cases
from services.content.service import definition
from services.content.store import Store
from shared import db
from shared.bus.outbox import Outbox
from shared.clock import Clock, SystemClock
from shared.links import link
from shared.settings import Settings
from shared.unit_of_work import PostgresUnitOfWork, UnitsOfWork

DEMO_NAMESPACE = UUID("6b1f2a6e-3c2d-4f55-9a57-0d6f2b7c9e10")
KICKOFF_MEETING_ID = uuid5(DEMO_NAMESPACE, "kreis-dithmarschen/kickoff")
SURVEY_ID = uuid5(DEMO_NAMESPACE, "kreis-dithmarschen/survey")
#: The county's open survey: its slug, which the poster's QR code leads to (/umfrage/kreis-dithmarschen/<slug>).
SURVEY_SLUG = "dithmarschen-digital"
#: The kick-off is this many days ahead of the day the demo is loaded; registration closes three days before.
KICKOFF_IN_DAYS = 14


#: How the demo tenants' pages look and what they link to (the web client's CIVIC_WEB_TENANTS in ``make up``).
DEMO_SITES: dict[str, dict[str, Any]] = {
    "kreis-dithmarschen": {
        "name": "Kreis Dithmarschen",
        "colour": "#00508c",
        "imprint_url": "https://www.dithmarschen.de/impressum",
        "privacy_url": "https://www.dithmarschen.de/datenschutz",
        "accessibility_url": "https://www.dithmarschen.de/barrierefreiheit",
        "contact_email": "beteiligung@example.org",
    },
    "stadt-detmold": {
        "name": "Stadt Detmold",
        "colour": "#8a1538",
        "imprint_url": "https://www.detmold.de/impressum",
        "privacy_url": "https://www.detmold.de/datenschutz",
        "accessibility_url": "https://www.detmold.de/barrierefreiheit",
        "contact_email": "smartcity@example.org",
    },
}


def T(de: str, en: str | None = None) -> schemas.Text:
    return schemas.Text(de=de, en=en)


@dataclass
class Loaded:
    tenants: dict[str, dict[str, Any]] = field(default_factory=dict)


Uow = PostgresUnitOfWork[Store]


async def _publish(uow: Uow, tenant: str, what: str, id_: UUID, clock: Clock, base: str) -> None:
    links = use_cases.Links(base, Settings().links)
    await use_cases.publish(uow, tenant, what, id_, at=None, now=clock.now(), links=links)


async def _qr(uow: Uow, tenant: str, code: str, data: schemas.QrIn, now: Any) -> None:
    """The code with this target; a code from an earlier run is pointed at it (printed codes keep working)."""
    async with uow:
        created = await uow.store.create_qr(tenant, code, schemas.fields(data), now)
    if created is None:
        patch = schemas.QrPatch(target_kind=data.target_kind, target_url=data.target_url, target_id=data.target_id)
        await use_cases.retarget_qr(uow, tenant, code, schemas.changes(patch), now)


async def _load_detmold(uow: Uow, clock: Clock, base: str) -> dict[str, Any]:
    tenant, now = "stadt-detmold", clock.now()
    today = now.date()
    async with uow:
        existing = await uow.store.process_by_slug(tenant, "smart-city")
    if existing is None:
        p = await use_cases.create_process(
            uow,
            tenant,
            schemas.fields(
                schemas.ProcessIn(
                    slug="smart-city",
                    title=T("Modellprojekt Smart Cities", "Smart Cities model project"),
                    motto=T(
                        "Die co-kreative Stadt. Hand in Hand und mit Kreativität in eine neue Zukunft.",
                        "The co-creative town. Hand in hand and with creativity into a new future.",
                    ),
                    summary=T(
                        "Die Stadt ist eine von 28 Kommunen, die als Modellprojekt Smart Cities gefördert werden. "
                        "Das Programm 2021 steht unter dem Motto „Gemeinsam aus der Krise: Raum für Zukunft“.",
                        "The town is one of 28 municipalities funded as a Smart Cities model project.",
                    ),
                    funding=[
                        schemas.FundingFact(
                            label=T("Bundesförderung Modellprojekte Smart Cities", "Federal Smart Cities funding"),
                            amount=5_600_000,
                            source=T("Bundesministerium (Förderprogramm Modellprojekte Smart Cities)"),
                        )
                    ],
                )
            ),
            now,
        )
        pid = p["id"]
        await use_cases.add_phase(
            uow,
            tenant,
            pid,
            schemas.fields(
                schemas.PhaseIn(
                    title=T("Strategiephase", "Strategy phase"),
                    description=T(
                        "Die Digitalisierungsstrategie wird überarbeitet und im September 2022 im Stadtrat "
                        "verabschiedet.",
                        "The digital strategy is revised and adopted by the town council in September 2022.",
                    ),
                    starts_on=today - timedelta(days=60),
                    ends_on=today + timedelta(days=120),
                )
            ),
        )
        await use_cases.add_phase(
            uow,
            tenant,
            pid,
            schemas.fields(
                schemas.PhaseIn(
                    title=T("Umsetzungsphase", "Implementation phase"),
                    description=T(
                        "Die Maßnahmen der Strategie werden umgesetzt.", "The strategy's measures are carried out."
                    ),
                    starts_on=today + timedelta(days=121),
                )
            ),
        )
        steps = [
            ("1.1", "step", T("Digitalisierungsstrategie überarbeiten", "Revise the digital strategy"),
             "Die Strategie fügt sich als Teilstrategie in die **Nachhaltigkeitsstrategie** ein."),
            ("1.2", "step", T("Öffentlichkeit beteiligen: Digitale Ethik / Kinder- und Jugendbeteiligung",
                              "Involve the public: digital ethics / children and youth"),
             "Gemeinsam sprechen wir über Werte in der digitalen Stadtgesellschaft. "
             "Für Kinder und Jugendliche gibt es Mitmach-Formate."),
            ("1.3", "step", T("Erste Maßnahmen umsetzen", "First measures"),
             "In den ersten 12 Monaten werden fünf schnell umsetzbare Projekte realisiert."),
            ("1.3.1", "quick_project", T("Beteiligungsplattform weiterentwickeln", "Extend the participation platform"),
             "Wir bauen die Funktionen der Beteiligungsplattform weiter aus."),
            ("1.3.2", "quick_project", T("Zusammenarbeitsplattform einführen", "Introduce a collaboration platform"),
             "Eine Plattform, über die wir mit der Stadtgesellschaft Projekte umsetzen."),
            ("1.3.3", "quick_project", T("QR-Codes - Push statt Pull", "QR codes - push instead of pull"),
             "Wie können QR-Codes das Leben in der Stadt sozialer und nachhaltiger machen?"),
            ("1.3.4", "quick_project", T("Pop-Up Makerspace", "Pop-up makerspace"),
             "Im Kreativquartier entsteht auf Zeit ein Ort zum Ausprobieren digitaler Geräte. Fokus: Möbel bauen."),
            ("1.3.5", "quick_project", T("Kultur trifft digital", "Culture meets digital"),
             "Kinder werden zu Expert*innen für digitalen Sound, digitale Technik und digitale Realitäten."),
        ]  # fmt: skip
        for number, kind, title, body in steps:
            await use_cases.add_step(
                uow,
                tenant,
                pid,
                schemas.fields(schemas.StepIn(number=number, kind=kind, title=title, body=T(body))),
            )
        await use_cases.add_contact(
            uow,
            tenant,
            pid,
            schemas.fields(
                schemas.ContactIn(
                    name="Jana Beispiel",
                    role=T("Referentin Digitalisierung", "Digitalisation officer"),
                    unit=T("Stabsstelle Digitalisierung", "Digitalisation unit"),
                    email="digitalisierung@example.org",
                    phone="+49 5231 000 000",
                    address="Rathaus, Beispielplatz 1, 32756 Detmold",
                    opening_hours=T("Mo-Fr 8-12 Uhr, Do 14-17 Uhr", "Mon-Fri 8-12, Thu 2-5 pm"),
                )
            ),
        )
        news = await use_cases.create_article(
            uow,
            tenant,
            schemas.fields(
                schemas.ArticleIn(
                    kind="news",
                    slug="erster-platz-kooperationsprojekt",
                    process_id=pid,
                    title=T("1. Platz als Bestes Kooperationsprojekt", "First prize for the best cooperation project"),
                    summary=T("Die interkommunale Zusammenarbeit wurde beim eGovernment-Wettbewerb ausgezeichnet."),
                    body=T(
                        "Die interkommunale Zusammenarbeit der Digitalisierungsbeauftragten im Kreis wurde beim "
                        "eGovernment-Wettbewerb als Sieger in der Kategorie **„Bestes Kooperationsprojekt“** "
                        "ausgewählt.\n\n"
                        "[Mehr zum Wettbewerb](https://example.org/wettbewerb)",
                        "The cooperation of the district's digitalisation officers won the category "
                        "**best cooperation project**.",
                    ),
                )
            ),
            now,
        )
        page = await use_cases.create_article(
            uow,
            tenant,
            schemas.fields(
                schemas.ArticleIn(
                    kind="page",
                    slug="nachbarschafts-app",
                    process_id=pid,
                    title=T("Nachbarschafts-App", "Neighbourhood app"),
                    body=T(
                        "Die Nachbarschafts-App verbindet Menschen in der Stadt: kurzer Plausch, Nachbarschaftshilfe "
                        "oder gute Idee. **Einfach den QR-Code scannen!**",
                        "The neighbourhood app connects people in town. **Just scan the QR code!**",
                    ),
                )
            ),
            now,
        )
        await _publish(uow, tenant, "process", pid, clock, base)
        await _publish(uow, tenant, "article", news["id"], clock, base)
        await _publish(uow, tenant, "article", page["id"], clock, base)
    else:
        pid = existing["id"]
    code = "detmold-app"
    # The poster leads to the town's page about the app (which links the app stores), not to a store directly.
    await _qr(
        uow,
        tenant,
        code,
        schemas.QrIn(
            target_kind="page",
            target_url=link(Settings().links, base, "page", tenant=tenant, slug="nachbarschafts-app"),
            label="Nachbarschafts-App",
            error_correction="Q",
        ),
        now,
    )
    return {"process_id": str(pid), "slug": "smart-city", "qr_codes": [code], "created": existing is None}


async def _load_dithmarschen(uow: Uow, clock: Clock, base: str, meeting_id: UUID, survey_id: UUID) -> dict[str, Any]:
    tenant, now = "kreis-dithmarschen", clock.now()
    today = now.date()
    kickoff = today + timedelta(days=KICKOFF_IN_DAYS)
    async with uow:
        existing = await uow.store.process_by_slug(tenant, "dithmarschen-digital")
    if existing is None:
        p = await use_cases.create_process(
            uow,
            tenant,
            schemas.fields(
                schemas.ProcessIn(
                    slug="dithmarschen-digital",
                    title=T("Dithmarschen Digital (DiDi)", "Dithmarschen Digital (DiDi)"),
                    motto=T("Digitale Modellkommune", "Digital model municipality"),
                    summary=T(
                        "Eine kreisweite Digitalisierungsstrategie und eine digitale Agenda, erarbeitet gemeinsam mit "
                        "Ämtern, Städten und Gemeinden - und mit Bürger*innen sowie Expert*innen aus Wirtschaft, "
                        "Verbänden und Vereinen.",
                        "A county-wide digital strategy and digital agenda, developed together with offices, towns and "
                        "municipalities, citizens and experts.",
                    ),
                    funding=[
                        schemas.FundingFact(
                            label=T("Förderung des Landes", "State funding"),
                            amount=100_000,
                            source=T(
                                "Landesprogramm „Digitale Modellkommunen“",
                                "State programme 'digital model municipalities'",
                            ),
                            period=T(
                                "zwei Jahre, Bewilligungszeitraum bis 1. November 2022",
                                "two years, until 1 November 2022",
                            ),
                        )
                    ],
                )
            ),
            now,
        )
        pid = p["id"]
        await use_cases.add_phase(
            uow,
            tenant,
            pid,
            schemas.fields(
                schemas.PhaseIn(
                    title=T("Auftakt und Online-Umfrage", "Kick-off and online survey"),
                    description=T(
                        "Wir laden zur Auftaktveranstaltung ein und fragen in einer Online-Umfrage nach Ihren Ideen.",
                        "We invite you to the kick-off meeting and ask for your ideas in an online survey.",
                    ),
                    starts_on=today - timedelta(days=7),
                    ends_on=kickoff + timedelta(days=14),
                )
            ),
        )
        await use_cases.add_phase(
            uow,
            tenant,
            pid,
            schemas.fields(
                schemas.PhaseIn(
                    title=T("Strategie erarbeiten", "Developing the strategy"),
                    description=T(
                        "In Arbeitsgruppen entsteht aus den Ergebnissen die Digitalisierungsstrategie.",
                        "Working groups turn the results into the digital strategy.",
                    ),
                    starts_on=kickoff + timedelta(days=15),
                    ends_on=kickoff + timedelta(days=380),
                )
            ),
        )
        for number, title in (
            ("1", T("Handlungsfelder festlegen: Bildung, Gesundheit, Mobilität", "Fields of action")),
            ("2", T("Gemeinsam Lösungen entwickeln", "Developing solutions together")),
        ):
            await use_cases.add_step(uow, tenant, pid, schemas.fields(schemas.StepIn(number=number, title=title)))
        await use_cases.add_contact(
            uow,
            tenant,
            pid,
            schemas.fields(
                schemas.ContactIn(
                    name="Robin Muster",
                    role=T("Projektkoordination", "Project coordination"),
                    unit=T("Stabsstelle Digitalisierung, IT und Organisationsmanagement"),
                    email="didi@example.org",
                    phone="+49 481 000 000",
                    address="Kreisverwaltung, Beispielstraße 1, 25746 Heide",
                    opening_hours=T("Mo-Do 8-16 Uhr, Fr 8-12 Uhr"),
                )
            ),
        )
        page = await use_cases.create_article(
            uow,
            tenant,
            schemas.fields(
                schemas.ArticleIn(
                    kind="page",
                    slug="termine",
                    process_id=pid,
                    title=T("Termine", "Dates"),
                    body=T(
                        f"## Auftaktveranstaltung am {kickoff.day}.{kickoff.month}. in Heide\n\n"
                        "18-20 Uhr im Berufsbildungszentrum Heide. Die Anmeldung schließt drei Tage vorher.\n\n"
                        "## Online-Umfrage\n\n"
                        "Die Teilnahme ist anonym und dauert durchschnittlich zehn Minuten. "
                        "Alternativ den QR-Code auf den Plakaten mit dem Smartphone scannen."
                    ),
                )
            ),
            now,
        )
        await _publish(uow, tenant, "process", pid, clock, base)
        await _publish(uow, tenant, "article", page["id"], clock, base)
    else:
        pid = existing["id"]
    await use_cases.add_reference(uow, tenant, pid, "meeting", meeting_id)
    await use_cases.add_reference(uow, tenant, pid, "survey", survey_id)
    links = Settings().links
    code = "didi-umfrage"
    await _qr(
        uow,
        tenant,
        code,
        schemas.QrIn(
            target_kind="survey",
            target_id=survey_id,
            target_url=link(links, base, "survey", tenant=tenant, slug=SURVEY_SLUG),
            label="QR-Code für die Befragung",
            error_correction="M",
        ),
        now,
    )
    await _qr(
        uow,
        tenant,
        "didi-auftakt",
        schemas.QrIn(
            target_kind="meeting",
            target_id=meeting_id,
            target_url=link(links, base, "meeting", tenant=tenant, meeting_id=meeting_id),
            label="QR-Code für die Anmeldung zur Auftaktveranstaltung",
            error_correction="M",
        ),
        now,
    )
    return {
        "process_id": str(pid),
        "slug": "dithmarschen-digital",
        "meeting_id": str(meeting_id),
        "survey_id": str(survey_id),
        "qr_codes": [code, "didi-auftakt"],
        "created": existing is None,
    }


async def load_content_demo(
    pool: asyncpg.Pool | None = None,
    *,
    settings: Settings | None = None,
    clock: Clock | None = None,
    kickoff_meeting_id: UUID = KICKOFF_MEETING_ID,
    survey_id: UUID = SURVEY_ID,
) -> dict[str, Any]:
    """Load both demo tenants; each in one transaction. Migrates the content schema when given no pool."""
    s = settings or Settings()
    clk = clock or SystemClock()
    own = pool is None
    if pool is None:
        await db.migrate(s.database_url, definition.schema, definition.all_migrations())
        pool = await db.create_pool(s.database_url, definition.schema, max_size=2)
    uows = UnitsOfWork(pool, Outbox("content", clock=clk), Store)
    base = s.public_base_url.rstrip("/")
    try:
        out: dict[str, Any] = {}
        async with pool.acquire() as conn:
            # Serialise concurrent loaders, so two runs at once cannot both find a tenant missing.
            async with conn.transaction():
                await conn.execute("select pg_advisory_xact_lock(hashtext('content-demo'))")
                out["stadt-detmold"] = await _load_detmold(uows.joined(conn), clk, base)
            async with conn.transaction():
                await conn.execute("select pg_advisory_xact_lock(hashtext('content-demo'))")
                out["kreis-dithmarschen"] = await _load_dithmarschen(
                    uows.joined(conn), clk, base, kickoff_meeting_id, survey_id
                )
        for tenant in out.values():
            tenant["short_links"] = [f"{base}/q/{c}" for c in tenant["qr_codes"]]
        return out
    finally:
        if own:
            await pool.close()


async def create_demo_meeting(base_url: str, settings: Settings) -> UUID:
    """The county's kick-off, created and published through the registration service's own API (idempotent:
    an existing demo meeting is reused). Dated two weeks ahead so a newcomer can register right away."""
    import httpx

    from shared.http.auth import mint_token

    token = mint_token(tenant="kreis-dithmarschen", roles=["staff"], subject="demo", settings=settings)
    headers = {"Authorization": f"Bearer {token}"}
    title = "Auftaktveranstaltung Dithmarschen Digital"
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        existing = (await client.get("/api/registration/staff/meetings")).raise_for_status().json()
        for meeting in existing:
            if meeting["title"] == title:
                return UUID(str(meeting["id"]))
        day = date.today() + timedelta(days=KICKOFF_IN_DAYS)
        body = {
            "title": title,
            "description": "Informationen und Ideen zur kreisweiten Digitalisierungsstrategie.",
            "venue": {
                "name": "Berufsbildungszentrum (Demo)",
                "street": "Beispielstraße 2",
                "postal_code": "25746",
                "city": "Heide",
                "accessibility": "Stufenloser Zugang über den Haupteingang, Aufzug, barrierefreies WC, "
                "Induktionsschleife im Saal.",
            },
            "max_companions": 2,
            "questions": [
                {
                    "id": "themen",
                    "label": "Welche Themen interessieren Sie besonders?",
                    "kind": "multiple",
                    "options": ["Bildung", "Gesundheit", "Mobilität"],
                }
            ],
            "starts_at": f"{day.isoformat()}T18:00:00",
            "ends_at": f"{day.isoformat()}T20:00:00",
            "capacity": 50,
            "waitlist": True,
            "registration_closes_at": f"{(day - timedelta(days=3)).isoformat()}T23:59:00",
            "attestations": [{"id": "3g", "text": "Für die Teilnahme gilt die 3G-Regel."}],
        }
        created = (await client.post("/api/registration/staff/meetings", json=body)).raise_for_status().json()
        meeting_id = UUID(str(created["id"]))
        (await client.post(f"/api/registration/staff/meetings/{meeting_id}/publish")).raise_for_status()
        return meeting_id


def demo_survey_body(today: date) -> dict[str, Any]:
    """The county's anonymous survey on online services, open from yesterday for four weeks: every kind of
    question the surveys service has, one display condition, results public after closing."""

    def options(*labels: tuple[str, str]) -> list[dict[str, str]]:
        return [{"id": i, "label": label} for i, label in labels]

    return {
        "title": "Digitale Angebote im Kreis Dithmarschen",
        "slug": SURVEY_SLUG,
        "introduction": (
            "Für welche Informationen oder Dienstleistungen nutzen Sie das Internet? Welche digitalen Angebote, "
            "zum Beispiel aus Kultur, Gesundheit und Verwaltung, sollte der Kreis verbessern oder ausbauen?\n\n"
            "Die Befragung der Stabsstelle Digitalisierung soll vor allem die Bedarfe und Erwartungen der "
            "Einwohnerinnen und Einwohner erheben. Ihre Antworten fließen in die Digitalisierungsstrategie ein."
        ),
        "estimated_minutes": 10,
        "opens_at": f"{(today - timedelta(days=1)).isoformat()}T00:00:00+01:00",
        "closes_at": f"{(today + timedelta(days=28)).isoformat()}T23:59:00+01:00",
        "results_public": True,
        "sections": [
            {
                "id": "nutzung",
                "title": "Was Sie heute nutzen",
                "questions": [
                    {"id": "online", "kind": "yes_no", "required": True,
                     "text": "Haben Sie schon einmal ein Online-Angebot der Kreisverwaltung genutzt?"},
                    {"id": "welche", "kind": "multiple_choice", "max_selections": 3,
                     "text": "Welche Angebote waren das?",
                     "condition": {"question": "online", "any_of": ["yes"]},
                     "options": options(("kfz", "Kfz-Zulassung"), ("abfall", "Abfallkalender"),
                                        ("bibliothek", "Onleihe der Bibliotheken"),
                                        ("termine", "Terminvergabe im Kreishaus"))},
                    {"id": "geraet", "kind": "single_choice", "text": "Womit sind Sie meistens im Internet?",
                     "options": options(("telefon", "Mit dem Smartphone"), ("rechner", "Mit einem Computer"),
                                        ("tablet", "Mit einem Tablet"), ("gar-nicht", "Ich nutze das Internet kaum"))},
                    {"id": "zufrieden", "kind": "scale", "min": 1, "max": 5,
                     "text": "Wie zufrieden sind Sie mit den digitalen Angeboten des Kreises?",
                     "help": "1 heißt gar nicht zufrieden, 5 heißt sehr zufrieden."},
                ],
            },
            {
                "id": "verbessern",
                "title": "Was besser werden soll",
                "questions": [
                    {"id": "bereiche", "kind": "ranking", "text": "Welcher Bereich ist Ihnen am wichtigsten?",
                     "options": options(("verwaltung", "Verwaltung"), ("gesundheit", "Gesundheit"),
                                        ("kultur", "Kultur"), ("mobilitaet", "Mobilität"))},
                    {"id": "bewertung", "kind": "matrix", "min": 1, "max": 5,
                     "text": "Wie bewerten Sie die Online-Angebote in diesen Punkten?",
                     "help": "1 heißt sehr schlecht, 5 heißt sehr gut.",
                     "rows": options(("finden", "Leicht zu finden"), ("verstehen", "Leicht zu verstehen"),
                                     ("handy", "Auf dem Smartphone gut bedienbar"))},
                ],
            },
            {
                "id": "zum-schluss",
                "title": "Zum Schluss",
                "questions": [
                    {"id": "besuche", "kind": "number", "min": 0, "max": 100, "integer": True,
                     "text": "Wie oft waren Sie im letzten Jahr persönlich im Kreishaus?"},
                    {"id": "idee", "kind": "free_text", "max_length": 1000,
                     "text": "Was sollte der Kreis als Erstes digital anbieten?"},
                ],
            },
        ],
    }  # fmt: skip


async def create_demo_survey(base_url: str, settings: Settings, today: date | None = None) -> UUID:
    """The county's survey, created and published through the surveys service's own API (idempotent: the
    existing demo survey is reused). Open now, so the poster's QR code leads to a survey one can answer."""
    import httpx

    from shared.http.auth import mint_token

    token = mint_token(tenant="kreis-dithmarschen", roles=["staff"], subject="demo", settings=settings)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        for survey in (await client.get("/api/surveys/surveys")).raise_for_status().json():
            if survey["slug"] == SURVEY_SLUG:
                return UUID(str(survey["id"]))
        body = demo_survey_body(today or date.today())
        created = (await client.post("/api/surveys/surveys", json=body)).raise_for_status().json()
        survey_id = UUID(str(created["id"]))
        (await client.post(f"/api/surveys/surveys/{survey_id}/publish")).raise_for_status()
        return survey_id


async def load_demo(base_url: str, *, settings: Settings | None = None) -> str:
    """The demo for ``civic.up``: the kick-off meeting (registration API), then the content tenants that refer to
    it; returns where to look."""
    s = settings or Settings()
    meeting_id = await create_demo_meeting(base_url, s)
    survey_id = await create_demo_survey(base_url, s)
    result = await load_content_demo(settings=s, kickoff_meeting_id=meeting_id, survey_id=survey_id)
    links = s.links
    lines = ["  pages to open:"]
    for tenant, info in result.items():
        lines.append(f"    {tenant:<20} {base_url}/{tenant}")
        lines.append(f"    {'':<20} {link(links, base_url, 'process', tenant=tenant, slug=info['slug'])}")
        lines += [f"    {'':<20} poster QR {base_url}/q/{code}" for code in info["qr_codes"]]
    kickoff = link(links, base_url, "meeting", tenant="kreis-dithmarschen", meeting_id=meeting_id)
    lines += [
        f"  kick-off meeting     {kickoff}",
        "                       register there, then open the mail's link at /dev/mail",
        f"  open survey          {link(links, base_url, 'survey', tenant='kreis-dithmarschen', slug=SURVEY_SLUG)}",
        f"  JSON API             {base_url}/api/content/public/kreis-dithmarschen/processes/dithmarschen-digital",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Load civic's content demo tenants (idempotent).")
    parser.add_argument("--kickoff-meeting-id", type=UUID, default=KICKOFF_MEETING_ID)
    parser.add_argument("--survey-id", type=UUID, default=SURVEY_ID)
    args = parser.parse_args(argv)
    result = asyncio.run(load_content_demo(kickoff_meeting_id=args.kickoff_meeting_id, survey_id=args.survey_id))
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
