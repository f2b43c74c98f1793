"""Save and resume without an account (drafts by resume code), what a landing page reads, checking a
letter's access code, and submitting a draft once however often the form is sent."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from services.surveys import domain
from tests.integration.surveys.rig import Rig, full_answers, sample_survey


def draft_url(rig: Rig, s: dict[str, Any], code: str, tail: str = "") -> str:
    return rig.public(s, f"/drafts/{code}{tail}")


async def test_the_landing_page_reads_title_duration_closing_status_and_access(rig: Rig) -> None:
    s = await rig.published()
    early = (await rig.client.get(rig.public(s))).json()
    assert (early["status"], early["state"], early["access"]) == ("not_yet_open", "published", "public")
    assert early["estimated_minutes"] == 10 and early["closes_at"] == s["closes_at"]
    assert early["results_available"] is False
    assert [sec["id"] for sec in early["sections"]] == ["use", "improve"]
    assert early["sections"][0]["questions"][1]["condition"] == {"question": "online", "any_of": ["yes"]}
    # By time: open the moment opens_at passes, before the clock loop has run.
    rig.clock.set(datetime.fromisoformat(s["opens_at"]))
    assert (await rig.client.get(rig.public(s))).json()["status"] == "open"
    rig.clock.set(datetime.fromisoformat(s["closes_at"]))
    closed = (await rig.client.get(rig.public(s))).json()
    assert closed["status"] == "closed" and closed["results_available"] is True


async def test_a_draft_keeps_each_sections_answers_and_resumes_by_its_code(rig: Rig) -> None:
    s = await rig.open_survey()
    started = await rig.client.post(rig.public(s, "/drafts"))
    assert started.status_code == 201 and started.headers["cache-control"] == "no-store"
    draft = started.json()
    code = draft["resume_code"]
    assert len(domain.normalise_code(code)) == domain.RESUME_CODE_LENGTH
    assert draft["expires_at"] == s["closes_at"] and draft["answers"] == {}
    # Before any answer the conditional question is hidden; both sections have something to show.
    assert "which" not in draft["shown"] and [x["shown"] for x in draft["sections"]] == [True, True]
    assert draft["sections"][0]["missing"] == ["online"]

    first = {"online": True, "which": ["car"], "age": "young", "sat": 4, "visits": 3}
    saved = await rig.client.put(draft_url(rig, s, code, "/sections/use"), json={"answers": first})
    assert saved.status_code == 200, saved.text
    assert saved.json()["answers"] == first and "which" in saved.json()["shown"]
    # Read back later, typed differently (lower case, spaces): the same draft.
    again = await rig.client.get(draft_url(rig, s, code.lower().replace("-", " ")))
    assert again.status_code == 200 and again.json()["answers"] == first
    assert again.headers["cache-control"] == "no-store"
    second = {"rank": ["admin", "health", "culture"], "idea": "Mehr Termine online"}
    r = await rig.client.put(draft_url(rig, s, code, "/sections/improve"), json={"answers": second})
    assert r.json()["answers"] == first | second and r.json()["errors"] == []
    # Going back and changing the first page: its answers are replaced, the second page's stay; the now
    # hidden question loses its answer.
    changed = {"online": False, "which": ["car"], "age": "old"}
    r = await rig.client.put(draft_url(rig, s, code, "/sections/use"), json={"answers": changed})
    assert r.json()["answers"] == {"online": False, "age": "old"} | second
    # Only a keyed hash of the code is stored, and no identity: the row has no other column.
    rows = await rig.ctx.pool.fetch("select * from drafts where survey_id = $1", s["id"])
    assert len(rows) == 1 and set(rows[0].keys()) == {"tenant", "survey_id", "code_hash", "answers", "expires_at"}
    assert code.encode() not in bytes(rows[0]["code_hash"])


async def test_a_bad_step_lists_every_bad_answer_and_saves_nothing(rig: Rig) -> None:
    s = await rig.open_survey()
    code = (await rig.client.post(rig.public(s, "/drafts"))).json()["resume_code"]
    bad = {"online": True, "which": ["car", "waste", "library"], "sat": 9, "visits": "viele", "idea": "x"}
    r = await rig.client.put(draft_url(rig, s, code, "/sections/use"), json={"answers": bad})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    errors = {e["question"]: e["code"] for e in r.json()["errors"]}
    assert errors == {"which": "too_many", "sat": "out_of_range", "visits": "invalid_type", "idea": "unknown_question"}
    assert {e["pointer"] for e in r.json()["errors"]} == {f"/answers/{q}" for q in errors}
    assert (await rig.client.get(draft_url(rig, s, code))).json()["answers"] == {}
    # A required question left blank is an error, unless the person is leaving to resume later.
    blank = await rig.client.put(draft_url(rig, s, code, "/sections/use"), json={"answers": {"age": "old"}})
    assert blank.status_code == 422 and [e["code"] for e in blank.json()["errors"]] == ["required"]
    later = {"answers": {"age": "old"}, "partial": True}
    kept = await rig.client.put(draft_url(rig, s, code, "/sections/use"), json=later)
    assert kept.status_code == 200 and kept.json()["sections"][0]["missing"] == ["online"]
    unknown = await rig.client.put(draft_url(rig, s, code, "/sections/nope"), json={"answers": {}})
    assert unknown.status_code == 404


async def test_unknown_codes_and_closed_surveys_keep_no_draft(rig: Rig) -> None:
    s = await rig.open_survey()
    assert (await rig.client.get(draft_url(rig, s, "AAAA-BBBB-CCCC-DDDD"))).json()["type"].endswith("draft-not-found")
    code = (await rig.client.post(rig.public(s, "/drafts"))).json()["resume_code"]
    assert (await rig.client.delete(draft_url(rig, s, code))).status_code == 204
    assert (await rig.client.get(draft_url(rig, s, code))).status_code == 404
    code = (await rig.client.post(rig.public(s, "/drafts"))).json()["resume_code"]
    # At closing the draft is refused at once and the clock loop deletes it.
    rig.clock.set(datetime.fromisoformat(s["closes_at"]))
    r = await rig.client.get(draft_url(rig, s, code))
    assert r.status_code == 409 and r.json()["type"].endswith("survey-closed")
    assert (await rig.client.post(rig.public(s, "/drafts"))).status_code == 409
    await rig.svc.tick()
    assert await rig.ctx.pool.fetchval("select count(*) from drafts where survey_id = $1", s["id"]) == 0
    # Before opening no draft can be started.
    later = await rig.published(
        opens_at=(rig.clock.now() + timedelta(days=1)).isoformat(),
        closes_at=(rig.clock.now() + timedelta(days=9)).isoformat(),
    )
    r = await rig.client.post(rig.public(later, "/drafts"))
    assert r.status_code == 409 and r.json()["type"].endswith("survey-not-yet-open")


async def test_submitting_a_draft_twice_or_at_once_stores_one_response_and_ends_the_draft(rig: Rig) -> None:
    s = await rig.open_survey()
    code = (await rig.client.post(rig.public(s, "/drafts"))).json()["resume_code"]
    answers = full_answers()
    use = {k: answers[k] for k in ("online", "which", "age", "sat", "visits")}
    improve = {k: answers[k] for k in ("rank", "grid", "idea")}
    await rig.client.put(draft_url(rig, s, code, "/sections/use"), json={"answers": use})
    await rig.client.put(draft_url(rig, s, code, "/sections/improve"), json={"answers": improve})
    body = {"draft": code, "submission_key": "review-form-key-1"}
    # A double click: the same form sent three times at once.
    sent = await asyncio.gather(*(rig.client.post(rig.public(s, "/responses"), json=body) for _ in range(3)))
    assert sorted(r.status_code for r in sent) == [200, 200, 201], [r.text for r in sent]
    assert len({r.text for r in sent}) == 1
    # And a retry later: the first receipt again.
    retry = await rig.client.post(rig.public(s, "/responses"), json=body)
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    pool = rig.ctx.pool
    assert await pool.fetchval("select count(*) from responses where survey_id = $1", s["id"]) == 1
    assert await pool.fetchval("select answers from responses where survey_id = $1", s["id"]) is not None
    assert await pool.fetchval("select count(*) from drafts where survey_id = $1", s["id"]) == 0
    results = (await rig.client.get(f"/api/surveys/surveys/{s['id']}/results", headers=rig.staff)).json()
    assert results["responses"] == 1
    # The same draft under another key is gone, not stored again.
    other = await rig.client.post(rig.public(s, "/responses"), json={**body, "submission_key": "another-key-2"})
    assert other.status_code == 404 and other.json()["type"].endswith("draft-not-found")


async def test_an_incomplete_draft_is_refused_and_kept(rig: Rig) -> None:
    s = await rig.open_survey()
    code = (await rig.client.post(rig.public(s, "/drafts"))).json()["resume_code"]
    await rig.client.put(draft_url(rig, s, code, "/sections/use"), json={"answers": {"age": "old"}, "partial": True})
    r = await rig.client.post(rig.public(s, "/responses"), json={"draft": code, "submission_key": "k-incomplete"})
    assert r.status_code == 422 and [e["question"] for e in r.json()["errors"]] == ["online"]
    assert (await rig.client.get(draft_url(rig, s, code))).json()["answers"] == {"age": "old"}


async def test_a_letters_code_is_checked_without_using_it_up(rig: Rig) -> None:
    s = await rig.create(access="token")
    issued = await rig.client.post(f"/api/surveys/surveys/{s['id']}/tokens", json={"count": 1}, headers=rig.staff)
    code = issued.json()["codes"][0]
    await rig.client.post(f"/api/surveys/surveys/{s['id']}/publish", headers=rig.staff)
    await rig.open_survey_at(s)
    url = rig.public(s, "/access-code")
    assert (await rig.client.get(rig.public(s))).json()["access"] == "token"
    ok = await rig.client.post(url, json={"code": code.lower()})
    assert ok.status_code == 200 and ok.json() == {"valid": True}
    wrong = await rig.client.post(url, json={"code": "AAAA-BBBB-CCCC"})
    assert wrong.status_code == 403 and wrong.json()["type"].endswith("access-code-invalid")
    # Still usable: checking did not use it up. A draft does not hold the code; the submission brings it.
    draft = (await rig.client.post(rig.public(s, "/drafts"))).json()["resume_code"]
    await rig.client.put(draft_url(rig, s, draft, "/sections/use"), json={"answers": {"online": False}})
    body = {"draft": draft, "token": code, "submission_key": "letter-key-1"}
    assert (await rig.client.post(rig.public(s, "/responses"), json=body)).status_code == 201
    used = await rig.client.post(url, json={"code": code})
    assert used.status_code == 403
    public = await rig.open_survey()
    assert (await rig.client.post(rig.public(public, "/access-code"), json={"code": code})).status_code == 409


async def test_the_new_operations_are_in_the_openapi_document(rig: Rig) -> None:
    paths = (await rig.client.get("/api/surveys/openapi.json")).json()["paths"]
    assert {"post"} <= set(paths["/api/surveys/public/{tenant}/{ref}/drafts"])
    assert {"get", "delete"} <= set(paths["/api/surveys/public/{tenant}/{ref}/drafts/{code}"])
    assert "put" in paths["/api/surveys/public/{tenant}/{ref}/drafts/{code}/sections/{section_id}"]
    assert "post" in paths["/api/surveys/public/{tenant}/{ref}/access-code"]


async def test_sections_without_an_id_are_named_as_drafts_name_them(rig: Rig) -> None:
    body = sample_survey()
    for section in body["sections"]:
        del section["id"]
    s = await rig.client.post("/api/surveys/surveys", json=body, headers=rig.staff)
    sid = s.json()["id"]
    await rig.client.post(f"/api/surveys/surveys/{sid}/publish", headers=rig.staff)
    await rig.open_survey_at(s.json())
    public = (await rig.client.get(rig.public(s.json()))).json()
    assert [x["id"] for x in public["sections"]] == ["s1", "s2"]
    code = (await rig.client.post(rig.public(s.json(), "/drafts"))).json()["resume_code"]
    r = await rig.client.put(draft_url(rig, s.json(), code, "/sections/s2"), json={"answers": {"idea": "Mehr"}})
    assert r.status_code == 200 and r.json()["answers"] == {"idea": "Mehr"}
