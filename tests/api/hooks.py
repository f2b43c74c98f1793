"""Schemathesis hooks for the API test (loaded through ``SCHEMATHESIS_HOOKS``).

Random bodies rarely satisfy the rules spanning several fields (a meeting ends after it starts, registration
closes in the future, a survey is open now), so a stateful run would seldom get past creating things. For the
operations of a chain, a third of the generated bodies are kept as they are (the rules' refusals are
tested too) and two thirds are mended into valid ones, so the links lead on to publishing, registering and
answering.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis
from hypothesis import strategies as st

NOW = datetime.now(UTC)


def _at(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).isoformat()


def _meeting(body: dict[str, Any], capacity: int | None) -> dict[str, Any]:
    return {
        "title": body.get("title") or "Auftakt",
        "description": str(body.get("description", ""))[:200],
        "starts_at": _at(24 * 30),
        "ends_at": _at(24 * 30 + 2),
        "capacity": capacity,
        "waitlist": bool(body.get("waitlist", True)),
        "max_companions": 2,
    }


QUESTIONNAIRE = [
    {
        "title": "Ihre Meinung",
        "questions": [
            {
                "id": "mobil",
                "kind": "single_choice",
                "text": "Wie kommen Sie meist in die Stadt?",
                "options": [{"id": "rad", "label": "Rad"}, {"id": "bus", "label": "Bus"}],
            },
            {
                "id": "bus-takt",
                "kind": "scale",
                "text": "Wie zufrieden sind Sie mit dem Bustakt?",
                "min": 1,
                "max": 5,
                "integer": True,
                "condition": {"question": "mobil", "any_of": ["bus"]},
            },
            {"id": "idee", "kind": "free_text", "text": "Ihre Idee", "max_length": 500},
        ],
    }
]


def _survey(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": body.get("title") or "Umfrage",
        "opens_at": _at(-1),
        "closes_at": _at(24 * 14),
        "results_public": bool(body.get("results_public", False)),
        "sections": QUESTIONNAIRE,
    }


def _answers(body: dict[str, Any]) -> dict[str, Any]:
    return {"answers": {"mobil": "bus", "bus-takt": 4, "idee": "Mehr Radwege"}} | (
        {"submission_key": body["submission_key"]} if isinstance(body.get("submission_key"), str) else {}
    )


def _registration(body: dict[str, Any]) -> dict[str, Any]:
    email = body.get("email") if isinstance(body.get("email"), str) else f"person{len(str(body))}@example.org"
    out = {"name": "Teilnehmende Person", "email": email, "privacy_consent": True, "companions": 0}
    if isinstance(body.get("channel"), str):
        out["channel"] = body["channel"]
        out["ignore_window"] = True
    return out


def _webhook(body: dict[str, Any]) -> dict[str, Any]:
    # A public host (check_url refuses private ones) and an event type nothing publishes: nothing is sent.
    return {"url": "https://hooks.example.org/civic", "event_types": ["civic.test.none.v1"]}


MENDERS = {
    "POST /api/notifications/webhooks": _webhook,
    "POST /api/registration/staff/meetings": lambda b: _meeting(b, capacity=2),
    "POST /api/registration/meetings/{meeting_id}/registrations": _registration,
    "POST /api/registration/staff/meetings/{meeting_id}/registrations": _registration,
    "POST /api/surveys/surveys": _survey,
    "PUT /api/surveys/surveys/{survey_id}": _survey,
    "POST /api/surveys/public/{tenant}/{ref}/responses": _answers,
}


@schemathesis.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> Any:
    operation = context.operation
    mend = MENDERS.get(operation.label) if operation is not None else None
    if mend is None or not isinstance(body, dict):
        return st.just(body)
    return st.sampled_from([mend(body), body, mend(body)])
