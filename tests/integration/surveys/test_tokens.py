"""Single-use codes for letter-based surveys, and proof that what is stored cannot join a code to a response."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from services.surveys import domain
from services.surveys.schemas import ResponseIn
from tests.integration.surveys.rig import Rig, full_answers


async def _token_survey(rig: Rig, codes: int) -> tuple[dict[str, Any], list[str]]:
    s = await rig.create(access="token")
    r = await rig.client.post(f"/api/surveys/surveys/{s['id']}/tokens", json={"count": codes}, headers=rig.staff)
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    issued = r.json()["codes"]
    assert len(issued) == codes == len(set(issued))
    assert (await rig.client.post(f"/api/surveys/surveys/{s['id']}/publish", headers=rig.staff)).status_code == 200
    await rig.open_survey_at(s)
    return s, issued


async def test_a_code_is_used_once(rig: Rig) -> None:
    s, codes = await _token_survey(rig, 3)
    url = rig.public(s, "/responses")
    missing = await rig.client.post(url, json={"answers": full_answers()})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "token"
    wrong = await rig.client.post(url, json={"answers": full_answers(), "token": "AAAA-BBBB-CCCC"})
    assert wrong.status_code == 403 and wrong.json()["type"].endswith("access-code-invalid")
    body = {"answers": full_answers(), "token": codes[0].lower().replace("-", " "), "submission_key": "first-try"}
    assert (await rig.client.post(url, json=body)).status_code == 201
    # The client did not see the answer and retries: the first result, nothing stored twice.
    retry = await rig.client.post(url, json=body)
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    reuse = await rig.client.post(url, json={**body, "submission_key": "another-key"})
    assert reuse.status_code == 403
    pool = rig.ctx.pool
    assert await pool.fetchval("select count(*) from responses where survey_id = $1", s["id"]) == 1
    assert await pool.fetchval("select count(*) from access_tokens where survey_id = $1 and used", s["id"]) == 1
    # Public surveys issue no codes.
    public = await rig.create()
    r = await rig.client.post(f"/api/surveys/surveys/{public['id']}/tokens", json={"count": 1}, headers=rig.staff)
    assert r.status_code == 409


async def test_one_code_sent_twice_at_once_stores_one_response(rig: Rig) -> None:
    s, codes = await _token_survey(rig, 1)
    bodies = [ResponseIn(answers=full_answers(), token=codes[0], submission_key=f"racer-{i:04d}") for i in range(8)]
    outcomes = await asyncio.gather(*(rig.svc.submit(rig.tenant, s["slug"], b) for b in bodies), return_exceptions=True)
    assert sum(1 for o in outcomes if isinstance(o, tuple)) == 1
    assert all(getattr(o, "status", None) == 403 for o in outcomes if not isinstance(o, tuple))
    assert await rig.ctx.pool.fetchval("select count(*) from responses where survey_id = $1", s["id"]) == 1


async def test_nothing_stored_joins_a_code_to_its_response(rig: Rig) -> None:
    n = 30
    s, codes = await _token_survey(rig, n + 10)
    sid = UUID(s["id"])
    url = rig.public(s, "/responses")
    # Response i is sent with code i; the free text says i, so the test knows the true pairing.
    for i in range(n):
        body = {"answers": full_answers(idea=f"answer {i}"), "token": codes[i], "submission_key": f"key-{i:06d}"}
        assert (await rig.client.post(url, json=body)).status_code == 201
    pool = rig.ctx.pool
    secret = bytes(await pool.fetchval("select token_secret from surveys where id = $1", sid))
    code_of_hash = {domain.code_hash(secret, c): i for i, c in enumerate(codes)}

    async def stored() -> tuple[list[Any], list[Any]]:
        tokens = await pool.fetch(
            "select xmin::text as xmin, ctid::text as ctid, * from access_tokens where survey_id = $1", sid
        )
        responses = await pool.fetch(
            "select xmin::text as xmin, ctid::text as ctid, * from responses where survey_id = $1", sid
        )
        return list(tokens), list(responses)

    def text_no(r: Any) -> int:
        import json

        return int(json.loads(r["answers"])["idea"].split()[-1])

    # Before mixing, the transaction id pairs every used code with its response: the attack is real.
    tokens, responses = await stored()
    used = [t for t in tokens if t["used"]]
    by_xmin = {t["xmin"]: code_of_hash[bytes(t["token_hash"])] for t in used}
    assert sum(by_xmin.get(r["xmin"]) == text_no(r) for r in responses) == n

    await rig.svc.mix(rig.tenant, sid)
    tokens, responses = await stored()
    used = [t for t in tokens if t["used"]]
    assert len(used) == n and len(responses) == n and len(tokens) == n + 10

    # Columns: nothing in common but the tenant and the survey, the same on every row.
    token_cols = set(tokens[0].keys()) - {"xmin", "ctid"}
    response_cols = set(responses[0].keys()) - {"xmin", "ctid"}
    assert token_cols == {"tenant", "survey_id", "token_hash", "used"}
    assert response_cols == {"id", "tenant", "survey_id", "day", "answers"}
    assert {(t["tenant"], t["survey_id"]) for t in tokens} == {(r["tenant"], r["survey_id"]) for r in responses}
    assert len({(t["tenant"], t["survey_id"]) for t in tokens}) == 1
    # No value of a code row appears anywhere in a response row, in any form.
    response_text = " ".join(str(dict(r)) for r in responses)
    for t in tokens:
        h = bytes(t["token_hash"])
        assert h.hex() not in response_text and str(h) not in response_text
    for c in codes:
        assert c not in response_text and domain.normalise_code(c) not in response_text

    # No time finer than a day in either table (nor in the idempotency table).
    types = await pool.fetch(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'surveys' and table_name in ('access_tokens', 'responses', 'submissions')"
    )
    assert not [t for t in types if "time" in t["data_type"]]
    assert {t["data_type"] for t in types if t["column_name"] == "day"} == {"date"}

    # System columns no longer pair them: one transaction id for all rows, and a random order on disk.
    assert {t["xmin"] for t in tokens} == {r["xmin"] for r in responses} and len({t["xmin"] for t in tokens}) == 1

    def ctid_key(row: Any) -> tuple[int, int]:
        page, item = row["ctid"].strip("()").split(",")
        return int(page), int(item)

    used_in_order = [code_of_hash[bytes(t["token_hash"])] for t in sorted(used, key=ctid_key)]
    responses_in_order = [text_no(r) for r in sorted(responses, key=ctid_key)]
    ids_in_order = [text_no(r) for r in sorted(responses, key=lambda r: r["id"])]
    # Pairing the k-th used code with the k-th response (on disk, or by id) finds few true pairs: a random
    # order finds one on average; 10 of 30 happens by chance with a probability below 1e-7.
    assert sum(a == b for a, b in zip(used_in_order, responses_in_order, strict=True)) < 10
    assert sum(a == b for a, b in zip(used_in_order, ids_in_order, strict=True)) < 10
    # Submissions keep a hash of the client's key and the day, nothing that names a response or a code.
    sub_cols = set((await pool.fetchrow("select * from submissions where survey_id = $1 limit 1", sid)).keys())
    assert sub_cols == {"tenant", "survey_id", "key_hash", "day"}
