"""JSON Schemas of every payload and the AsyncAPI 3.0 document, generated from the registry.

``civic contracts`` writes them to docs/events/; a test fails when the files there are stale.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shared.contracts.envelope import Envelope
from shared.contracts.registry import REGISTRY, Registry

COMPONENT_SCHEMAS = "#/components/schemas/{model}"


def payload_schema(type_: str, registry: Registry = REGISTRY, *, ref_template: str | None = None) -> dict[str, Any]:
    """A payload's JSON Schema: standalone (its nested models under ``$defs``), or with ``ref_template`` for a
    document that keeps the nested models elsewhere (the caller moves ``$defs`` there)."""
    spec = registry.get(type_)
    schema: dict[str, Any] = (
        spec.payload.model_json_schema(mode="serialization", ref_template=ref_template)
        if ref_template
        else spec.payload.model_json_schema(mode="serialization")
    )
    schema["$id"] = f"urn:civic:event:{type_}"
    schema["description"] = spec.description
    return schema


def _message_name(type_: str) -> str:
    return type_.removeprefix("civic.").replace(".", "_")


def asyncapi_document(
    *,
    service: str | None = None,
    consumers: Mapping[str, Sequence[str]] | None = None,
    registry: Registry = REGISTRY,
) -> dict[str, Any]:
    """The event catalogue. With ``service``, only what that service publishes and consumes."""
    consumers = consumers or {}
    specs = [s for s in registry if service is None or s.producer == service or s.type in consumers.get(service, ())]
    envelope = Envelope.model_json_schema()
    envelope["properties"].pop("data", None)
    schemas: dict[str, Any] = {"Envelope": envelope}
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for s in specs:
        name = _message_name(s.type)
        # Nested models (Venue, Contact) go to components/schemas: a "#/$defs/..." reference inside a message
        # would be resolved from the document's root, where there is no $defs.
        payload = payload_schema(s.type, registry, ref_template=COMPONENT_SCHEMAS)
        payload.pop("$id", None)  # an $id would make references inside resolve against it, not the document
        for model, definition in payload.pop("$defs", {}).items():
            if schemas.setdefault(model, definition) != definition:
                raise ValueError(f"two different nested models are both called {model}")
        messages[name] = {
            "name": s.type,
            "title": s.type,
            "summary": s.description,
            "contentType": "application/cloudevents+json",
            "payload": {
                "allOf": [{"$ref": "#/components/schemas/Envelope"}],
                "type": "object",
                "properties": {"type": {"const": s.type}, "data": payload},
                "required": ["data"],
            },
            "x-personal-data": list(s.personal_fields),
            **({"x-retired": True} if s.retired else {}),
        }
        channel = channels.setdefault(s.stream, _channel(s.producer, private=s.visibility == "private"))
        channel["messages"][name] = {"$ref": f"#/components/messages/{name}"}
    for s in specs:
        op = operations.setdefault(
            f"{s.producer}_publishes_{s.stream}",
            {
                "action": "send",
                "channel": {"$ref": f"#/channels/{s.stream}"},
                "messages": [],
                "summary": f"{s.producer} publishes through its outbox",
            },
        )
        op["messages"].append({"$ref": f"#/channels/{s.stream}/messages/{_message_name(s.type)}"})
    for consumer, types in sorted(consumers.items()):
        if service is not None and consumer != service:
            continue
        for t in sorted(types):
            s = registry.get(t)
            op = operations.setdefault(
                f"{consumer}_consumes_{s.stream}",
                {
                    "action": "receive",
                    "channel": {"$ref": f"#/channels/{s.stream}"},
                    "messages": [],
                    "summary": f"consumer group '{consumer}'",
                },
            )
            op["messages"].append({"$ref": f"#/channels/{s.stream}/messages/{_message_name(t)}"})
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"civic events{f' ({service})' if service else ''}",
            "version": "1.0.0",
            "description": (
                "CloudEvents 1.0 envelopes on Redis Streams. Each entry's field '__data__' holds one as JSON (the "
                "message body a FastStream subscriber receives); the field 'position' holds the producer's outbox "
                "position. Entries written before this format held the envelope in the field 'event'."
            ),
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _channel(producer: str, *, private: bool) -> dict[str, Any]:
    if private:
        address = f"{{prefix}}:private:{producer}"
        description = (
            f"PRIVATE Redis stream of the {producer} service: events that concern one person, with their personal "
            "data sealed under per-person keys (docs/privacy.md). Only the consuming civic services' Redis users "
            "may read it; outside subscribers cannot."
        )
    else:
        address = f"{{prefix}}:stream:{producer}"
        description = (
            f"Public Redis stream of the events the {producer} service publishes; no event on it names a person. "
            "Outside subscribers read it with the subscribers' Redis user."
        )
    return {
        "address": address,
        "description": description,
        "parameters": {"prefix": {"description": "CIVIC_STREAM_PREFIX", "default": "civic"}},
        "messages": {},
        "x-private": private,
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def generated_files(consumers: Mapping[str, Sequence[str]], registry: Registry = REGISTRY) -> dict[Path, str]:
    files = {Path("asyncapi.json"): render(asyncapi_document(consumers=consumers, registry=registry))}
    for s in registry:
        files[Path("schemas") / f"{s.type}.json"] = render(payload_schema(s.type, registry))
    return files
