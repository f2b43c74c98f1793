"""Example payloads built from a model's JSON Schema: realistic enough to parse, made without hand-written data."""

from __future__ import annotations

from typing import Any

from shared.contracts.envelope import Payload

_STRINGS = {
    "date-time": "2021-10-28T16:00:00Z",
    "date": "2021-10-28",
    "uuid": "4b1f2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    "email": "person@example.org",
    "uri": "https://civic.example/x",
}


def example_payload(model: type[Payload]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="serialization")
    value = _example(schema, schema.get("$defs", {}), required_only=False)
    assert isinstance(value, dict)
    return value


def _example(schema: dict[str, Any], defs: dict[str, Any], *, required_only: bool) -> Any:
    if "$ref" in schema:
        return _example(defs[schema["$ref"].rsplit("/", 1)[1]], defs, required_only=required_only)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _example(options[0], defs, required_only=required_only)
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: _example(p, defs, required_only=required_only) for name, p in props.items()}
    if kind == "array":
        return [_example(schema.get("items", {}), defs, required_only=required_only)]
    if kind == "string":
        return _STRINGS.get(schema.get("format", ""), "text")
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return None
