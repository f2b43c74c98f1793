"""Contracts: envelopes parse, old payloads still parse, generated documents are current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from civic.cli import DOCS_EVENTS, SAMPLES
from civic.services import consumers
from shared.contracts.asyncapi import generated_files
from shared.contracts.registry import REGISTRY
from shared.contracts.spec import EventSpec


@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda s: s.type)
def test_the_first_published_payload_of_every_type_still_parses(spec: EventSpec) -> None:
    sample = SAMPLES / f"{spec.type}.json"
    assert sample.exists(), f"no sample for {spec.type}: run `civic contracts` and commit the new sample"
    spec.payload.model_validate(json.loads(sample.read_text()))


def test_an_added_required_field_breaks_an_old_sample() -> None:
    """The check above can fail: a payload that gained a required field rejects the old sample."""
    from shared.contracts.content import QrScannedV1

    class QrScannedChanged(QrScannedV1):
        campaign: str

    old = json.loads((SAMPLES / "civic.content.qr.scanned.v1.json").read_text())
    with pytest.raises(ValidationError):
        QrScannedChanged.model_validate(old)


def test_generated_documents_are_current() -> None:
    files = generated_files(consumers())
    stale = [
        str(rel)
        for rel, text in files.items()
        if not (DOCS_EVENTS / rel).exists() or (DOCS_EVENTS / rel).read_text() != text
    ]
    extra = [str(p) for p in Path(DOCS_EVENTS).rglob("*.json") if p.relative_to(DOCS_EVENTS) not in files]
    assert not stale and not extra, f"run `civic contracts`; stale: {stale}, unexpected: {extra}"


def test_the_subscriber_kits_models_are_current_and_cover_every_public_type() -> None:
    from civic.subscriber import events
    from civic.subscriber.codegen import EVENTS_MODULE, events_module, formatted

    assert EVENTS_MODULE.read_text() == formatted(events_module()), "run `civic contracts`"
    public = [s for s in REGISTRY if s.visibility == "public"]
    assert set(events.MODELS) == {s.type for s in public}
    assert set(events.STREAM_TYPES) == set(REGISTRY.public_streams())
    for spec in public:
        model = events.MODELS[spec.type]
        assert model.model_fields["data"].annotation is spec.payload


def test_asyncapi_is_version_3_with_a_channel_per_stream() -> None:
    doc = json.loads((DOCS_EVENTS / "asyncapi.json").read_text())
    assert doc["asyncapi"] == "3.0.0"
    assert set(doc["channels"]) == set(REGISTRY.streams())
    assert len(doc["components"]["messages"]) == len(list(REGISTRY))


def test_envelope_round_trip_and_bad_input() -> None:
    from shared.bus.outbox import Outbox
    from shared.contracts.registration import MeetingCancelledV1

    env = Outbox("registration").envelope(
        MeetingCancelledV1(meeting_id="4b1f2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
        tenant="kreis-dithmarschen",
        subject="meeting/4b1f2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        sequence=3,
    )
    event = REGISTRY.parse(env.model_dump_json())
    assert event.type == "civic.registration.meeting.cancelled.v1"
    assert isinstance(event.payload, MeetingCancelledV1)
    assert event.envelope.aggregatesequence == 3 and event.envelope.tenant == "kreis-dithmarschen"
    with pytest.raises(ValidationError):
        REGISTRY.parse(env.model_dump_json().replace('"tenant":"kreis-dithmarschen"', '"tenant":""'))


def test_a_service_cannot_publish_another_services_payload() -> None:
    from shared.bus.outbox import Outbox
    from shared.contracts.registry import UnknownEventType
    from shared.contracts.surveys import SurveyOpenedV1

    with pytest.raises(UnknownEventType):
        Outbox("registration").envelope(
            SurveyOpenedV1(
                survey_id="4b1f2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", title="x", closes_at="2021-10-31T23:00:00Z"
            ),
            tenant="t",
            subject=None,
        )


def test_causation_is_the_event_being_handled_or_the_one_a_payload_answers() -> None:
    from uuid import uuid4

    from shared.bus.outbox import Outbox
    from shared.contracts.notifications import NotificationSentV1
    from shared.contracts.registration import MeetingCancelledV1
    from shared.logs import event_id_var

    outbox = Outbox("registration")
    payload = MeetingCancelledV1(meeting_id=uuid4())
    assert outbox.envelope(payload, tenant="t", subject=None).causationid is None  # a request starts the chain
    cause = str(uuid4())
    token = event_id_var.set(cause)
    try:
        assert outbox.envelope(payload, tenant="t", subject=None).causationid == cause
    finally:
        event_id_var.reset(token)
    answered = uuid4()
    sent = NotificationSentV1(delivery_id=uuid4(), cause_event_id=answered, channel="email", template="x")
    assert Outbox("notifications").envelope(sent, tenant="t", subject=None).causationid == str(answered)
