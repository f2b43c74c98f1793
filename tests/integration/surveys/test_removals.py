"""Staff remove a free text that names someone, or the whole response: results stay consistent, a record says
that it happened, and nothing links the record (or anything else) to the response or its writer."""

from __future__ import annotations

import json
from typing import Any

from tests.integration.surveys.rig import Rig, full_answers


async def _texts(rig: Rig, s: dict[str, Any]) -> list[dict[str, Any]]:
    r = await rig.client.get(f"/api/surveys/surveys/{s['id']}/questions/idea/texts", headers=rig.staff)
    return list(r.json()["items"])


async def _results(rig: Rig, s: dict[str, Any]) -> dict[str, Any]:
    return dict((await rig.client.get(f"/api/surveys/surveys/{s['id']}/results", headers=rig.staff)).json())


def _question(results: dict[str, Any], qid: str) -> dict[str, Any]:
    for section in results.get("sections", []):
        for q in section.get("questions", []):
            if q["id"] == qid:
                return dict(q)
    for q in results.get("questions", []):
        if q["id"] == qid:
            return dict(q)
    raise AssertionError(f"no question {qid} in {results}")


async def test_removing_a_text_or_a_response_keeps_results_consistent_and_leaves_a_record(rig: Rig) -> None:
    s = await rig.open_survey()
    named = "Bitte Frau Erika Mustermann, Lindenweg 7, 25746 Heide anrufen"
    whole = "Max Beispiel aus der Süderstraße 3 möchte zurückgerufen werden"
    answers = [
        full_answers(idea="Mehr Termine online", sat=5),
        full_answers(idea=named, sat=2, age="old"),
        full_answers(idea=whole, sat=3, which=["library"]),
    ]
    for a in answers:
        assert (await rig.client.post(rig.public(s, "/responses"), json={"answers": a})).status_code == 201
    before = await _results(rig, s)
    assert before["responses"] == 3
    texts = {t["text"]: t["id"] for t in await _texts(rig, s)}

    # The text only: the response and its other answers stay, the question counts one answer fewer.
    url = f"/api/surveys/surveys/{s['id']}/texts/{texts[named]}/removal"
    r = await rig.client.post(url, json={"scope": "text", "reason": "Name und Anschrift"}, headers=rig.staff)
    assert r.status_code == 200, r.text
    assert (await rig.client.post(url, json={"scope": "text"}, headers=rig.staff)).status_code == 404
    after_text = await _results(rig, s)
    assert after_text["responses"] == 3
    assert _question(after_text, "idea")["answered"] == _question(before, "idea")["answered"] - 1
    assert _question(after_text, "sat") == _question(before, "sat")
    assert _question(after_text, "age") == _question(before, "age")

    # The whole response: every counter loses what it added.
    url = f"/api/surveys/surveys/{s['id']}/texts/{texts[whole]}/removal"
    r = await rig.client.post(url, json={"scope": "response", "reason": "Name"}, headers=rig.staff)
    assert r.status_code == 200, r.text
    after = await _results(rig, s)
    assert after["responses"] == 2
    assert _question(after, "idea")["answered"] == 1
    # The same figures as if only the untouched responses had come in (with the named one's text left out).
    pool = rig.ctx.pool
    stored = [
        json.loads(r["answers"])
        for r in await pool.fetch("select answers from responses where survey_id = $1", s["id"])
    ]
    assert sorted(a.get("sat") for a in stored) == [2, 5]
    assert sorted(a.get("idea", "") for a in stored) == ["", "Mehr Termine online"]
    assert [t["text"] for t in await _texts(rig, s)] == ["Mehr Termine online"]
    # The removed response's scale value (3) and option (library) no longer count; the others still do.
    assert sum(await _counts(rig, s, "q:sat:v:3")) == 0
    assert sum(await _counts(rig, s, "q:sat:v:2")) == 1 and sum(await _counts(rig, s, "q:sat:v:5")) == 1
    assert sum(await _counts(rig, s, "q:which:o:library")) == 0
    assert sum(await _counts(rig, s, "q:which:o:car")) == 2
    assert _question(after, "sat") != _question(before, "sat")

    # Nowhere left: not in the responses, not in the texts, not in the record, not in the export.
    everything = json.dumps(
        [dict(r) for r in await pool.fetch("select * from responses where survey_id = $1", s["id"])], default=str
    ) + json.dumps(
        [dict(r) for r in await pool.fetch("select * from free_texts where survey_id = $1", s["id"])], default=str
    )
    assert "Mustermann" not in everything and "Beispiel" not in everything
    export = await rig.client.get(f"/api/surveys/surveys/{s['id']}/export", headers=rig.staff)
    assert "Mustermann" not in export.text and "Beispiel" not in export.text

    record = (await rig.client.get(f"/api/surveys/surveys/{s['id']}/removals", headers=rig.staff)).json()
    assert sorted((x["scope"], x["question_id"], x["reason"]) for x in record) == [
        ("response", "idea", "Name"),
        ("text", "idea", "Name und Anschrift"),
    ]
    # The record names what was done, not which response: no id, no day, no text of the response.
    columns = {r["column_name"] for r in await pool.fetch(
        "select column_name from information_schema.columns where table_name = 'removals' and table_schema = 'surveys'"
    )}  # fmt: skip
    assert columns == {"id", "tenant", "survey_id", "question_id", "scope", "reason", "removed_by", "removed_at"}
    row_ids = {str(r["id"]) for r in await pool.fetch("select id from responses where survey_id = $1", s["id"])}
    assert not row_ids & {x["removal_id"] for x in record}


async def test_identical_texts_make_a_whole_response_removal_ambiguous(rig: Rig) -> None:
    s = await rig.open_survey()
    same = "Anna Beispiel, Telefon 0481 12345"
    for sat in (1, 5):
        assert (
            await rig.client.post(rig.public(s, "/responses"), json={"answers": full_answers(idea=same, sat=sat)})
        ).status_code == 201
    text_id = (await _texts(rig, s))[0]["id"]
    url = f"/api/surveys/surveys/{s['id']}/texts/{text_id}/removal"
    r = await rig.client.post(url, json={"scope": "response"}, headers=rig.staff)
    assert r.status_code == 409 and r.json()["type"].endswith("response-ambiguous")
    assert (await _results(rig, s))["responses"] == 2  # nothing removed
    r = await rig.client.post(url, json={"scope": "text"}, headers=rig.staff)
    assert r.status_code == 200
    left = [t["text"] for t in await _texts(rig, s)]
    assert left == [same]  # the other person's identical text is theirs and stays
    other = await rig.client.post(
        f"/api/surveys/surveys/{s['id']}/texts/{text_id}/removal", json={"scope": "bogus"}, headers=rig.staff
    )
    assert other.status_code == 422


async def _counts(rig: Rig, s: dict[str, Any], key: str) -> list[int]:
    rows = await rig.ctx.pool.fetch("select count from result_counters where survey_id = $1 and key = $2", s["id"], key)
    return [int(r["count"]) for r in rows]
