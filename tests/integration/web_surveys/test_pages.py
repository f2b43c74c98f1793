"""The survey pages against the real surveys service: landing, steps, errors, save and resume, review,
idempotent submission, thank-you, closed and not-yet-open pages, public results."""

from __future__ import annotations

import re
from datetime import datetime

from tests.integration.web_surveys.rig import Pages, forms_of, title_of

STEP1 = {
    "q-online": "yes",
    "q-which": ["car", "waste"],
    "q-age": "young",
    "q-sat": "4",
    "q-visits": "12",
}
STEP2 = {
    "q-rank-health": "2",
    "q-rank-culture": "3",
    "q-rank-admin": "1",
    "q-grid-speed": "2",
    "q-grid-ease": "3",
    "q-idea": "Mehr Termine online",
}


async def test_the_whole_way_through_with_errors_resume_and_a_double_submission(site: Pages) -> None:
    s = await site.service.open_survey()
    base = f"/umfrage/{site.service.tenant}/{s['slug']}"
    landing = await site.get(base)
    assert landing.status_code == 200 and "Dauert etwa 10 Minuten." in landing.text
    assert "Was anonym hier bedeutet" in landing.text
    step1 = await site.follow(await site.submit(landing, {}, "/beginnen"))
    assert step1.status_code == 200, step1.text
    assert title_of(step1.text).startswith("Schritt 1 von 3: What you use")
    assert '<progress max="3" value="1"' in step1.text
    # Errors: a summary linking to each field, messages in German, what was typed is still there.
    bad = await site.submit(step1, {"q-which": ["car", "waste", "library"], "q-visits": "viele", "aktion": "weiter"})
    assert bad.status_code == 400 and title_of(bad.text).startswith("Fehler: Schritt 1 von 3")
    # The summary names each question beside its message.
    online = r'href="#q-online"><span>Do you use the county&#39;s online services\?</span> Bitte wählen Sie eine'

    assert re.search(online, bad.text)
    assert re.search(r'href="#q-visits"><span>Visits per year</span>: Bitte geben Sie eine Zahl ein', bad.text)
    assert 'value="viele"' in bad.text
    step2 = await site.follow(await site.submit(bad, STEP1 | {"aktion": "weiter"}))
    assert title_of(step2.text).startswith("Schritt 2 von 3: What should improve")
    # Ranking with a place given twice: the page's own check.
    twice = await site.submit(step2, STEP2 | {"q-rank-culture": "1", "aktion": "weiter"})
    assert twice.status_code == 400 and "jeden Platz genau einmal" in twice.text
    # Save and leave: the resume link and code are shown.
    saved = await site.follow(await site.submit(twice, STEP2 | {"aktion": "spaeter"}))
    assert "Ihre Antworten sind gespeichert" in saved.text
    code = re.search(r'id="fortsetzungscode">([A-Z0-9-]+)<', saved.text).group(1)  # type: ignore[union-attr]
    link = re.search(r'id="fortsetzungslink" href="([^"]+)"', saved.text).group(1)  # type: ignore[union-attr]
    assert link.endswith(f"/entwurf/{code}")
    # Resume by typing the code on the resume page (lower case, without dashes): all answers still there.
    form = await site.get(f"{base}/fortsetzen")
    resumed = await site.follow(await site.submit(form, {"fortsetzungscode": code.lower().replace("-", "")}))
    resumed = await site.follow(resumed) if resumed.status_code == 303 else resumed
    assert "Ihre Antworten prüfen" in resumed.text, resumed.text
    assert "Mehr Termine online" in resumed.text and "Vehicle registration" in resumed.text
    # Back to step 1 and forth: its answers are there.
    back = await site.get(f"{base}/entwurf/{code}/use")
    assert 'value="car" checked' in back.text and 'value="12"' in back.text
    review = await site.get(f"{base}/entwurf/{code}/pruefen")
    assert title_of(review.text).startswith("Schritt 3 von 3: Ihre Antworten prüfen")
    key = forms_of(review.text)[-1]["hidden"]["einreichung"]
    assert len(key) >= 16
    # A double click: the same form sent twice; one response, both lead to the thank-you page.
    first = await site.submit(review, {})
    second = await site.submit(review, {})
    assert first.headers["location"] == second.headers["location"] == f"{base}/danke"
    thanks = await site.follow(second)
    assert "Vielen Dank für Ihre Teilnahme" in thanks.text
    pool = site.service.ctx.pool
    assert await pool.fetchval("select count(*) from responses where survey_id = $1", s["id"]) == 1
    stored = await pool.fetchval("select answers::text from responses where survey_id = $1", s["id"])
    assert '"rank": ["admin", "health", "culture"]' in stored and '"visits": 12' in stored
    # The resume link no longer opens anything.
    gone = await site.get(f"{base}/entwurf/{code}")
    assert gone.status_code == 404 and "keine gespeicherten Antworten" in gone.text


async def test_a_hidden_conditional_answer_is_dropped_and_a_hidden_section_skipped(site: Pages) -> None:
    s = await site.service.open_survey()
    base = f"/umfrage/{site.service.tenant}/{s['slug']}"
    step1 = await site.follow(await site.submit(await site.get(base), {}, "/beginnen"))
    # Without script the conditional question stands on the page, with a sentence saying when to answer it.
    assert "Nur beantworten, wenn Sie bei „Do you use the county" in step1.text
    step2 = await site.follow(await site.submit(step1, {"q-online": "no", "q-which": ["car"], "aktion": "weiter"}))
    review = await site.follow(await site.submit(step2, {"aktion": "weiter"}))
    assert "Vehicle registration" not in review.text and "Which ones?" not in review.text
    stored = await site.service.ctx.pool.fetchval("select answers::text from drafts where survey_id = $1", s["id"])
    assert stored == '{"online": false}'


async def test_closed_and_not_yet_open_pages_and_public_results(site: Pages) -> None:
    s = await site.service.published()
    base = f"/umfrage/{site.service.tenant}/{s['slug']}"
    early = await site.get(base)
    assert early.status_code == 200 and "Die Umfrage hat noch nicht begonnen" in early.text
    assert "Sie können ab" in early.text
    await site.service.open_survey_at(s)
    later = await site.get(f"{base}/ergebnisse")
    assert later.status_code == 409 and "nach dem Ende der Umfrage" in later.text
    for answers in ({"online": True, "which": ["car"], "sat": 4}, {"online": False, "sat": 2}):
        r = await site.service.client.post(site.service.public(s, "/responses"), json={"answers": answers})
        assert r.status_code == 201
    site.service.clock.set(datetime.fromisoformat(s["closes_at"]))
    await site.service.svc.tick()
    closed = await site.get(base)
    assert "Die Umfrage ist beendet" in closed.text and f'href="{base}/ergebnisse"' in closed.text
    results = await site.get(f"{base}/ergebnisse")
    assert results.status_code == 200
    assert "2 Personen haben teilgenommen." in results.text
    assert results.text.count("<svg") >= 3 and 'aria-hidden="true"' in results.text
    # The text equivalent: a table with counts and shares.
    assert re.search(r'scope="row">Ja</th><td[^>]*>1</td><td[^>]*>50 %</td>', results.text)
    assert "Durchschnitt: 3,0" in results.text


async def test_an_unknown_survey_is_a_page_not_json(site: Pages) -> None:
    r = await site.get(f"/umfrage/{site.service.tenant}/gibt-es-nicht")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "Diese Umfrage gibt es nicht" in r.text


async def test_in_english_the_pages_speak_english_and_mark_the_surveys_german_texts(site: Pages) -> None:
    s = await site.service.open_survey(title="Digitale Angebote")
    base = f"/umfrage/{site.service.tenant}/{s['slug']}"
    landing = await site.follow(await site.client.get("/sprache", params={"lang": "en", "next": base}))
    assert '<html lang="en">' in landing.text and "Takes about 10 minutes." in landing.text
    assert '<h1 class="kern-heading-large" lang="de">Digitale Angebote</h1>' in landing.text
    step = await site.follow(await site.submit(landing, {}, "/beginnen"))
    assert title_of(step.text).startswith("Step 1 of 3")
    assert '<span lang="de">Do you use the county' in step.text
