"""The OpenAPI document says what each operation really answers.

FastAPI documents every 422 as its own ``HTTPValidationError`` in ``application/json`` and no other error at
all, while civic answers every error as an RFC 9457 problem document (``shared/http/problems.py``). ``complete``
rewrites the generated document once, by rules that follow from each operation's shape, so no route lists its
errors by hand:

- an operation with parameters or a body answers 422 (``ValidationProblem``);
- an operation behind a staff token (its ``security``, from ``shared/http/auth.py``) answers 401 and 403;
- an operation with a path parameter answers 404 (the thing named in the path does not exist);
- an operation with a body answers 400 (the body does not parse) and 415 (the body is not JSON);
- a public write (no token) answers 429 (rate limits on public writes).

What depends on the domain (409 when a state forbids it, 410, 400 for an altered link) a route names with
``problems(409, ...)``; what a route answers besides JSON (images, CSV, XLSX, calendars, HTML) with
``media(...)``. Links between operations (for clients, and for the stateful API test that follows them) each
service lists in one table, ``ServiceDefinition.links``: ``{source operation: {target operation: {parameter:
runtime expression}}}``, attached to the source's success response. Operation ids are
``<service>.<function name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.http.problems import PROBLEM

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document. The web client translates `type` and each error's `code`.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "`about:blank` or a URI naming the problem"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "the request's path"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
    },
    # Problem types may add members of their own (e.g. ``closes_at``), as RFC 9457 allows.
    "additionalProperties": True,
}

FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "description": "One bad field: where it is and what is wrong with it.",
    "type": "object",
    "required": ["in", "pointer", "detail"],
    "properties": {
        "in": {"type": "string", "description": "body, query, path or header"},
        "pointer": {"type": "string", "description": "a JSON pointer into that part of the request"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "a stable code of what is wrong (e.g. `missing`)"},
    },
    "additionalProperties": True,
}

VALIDATION_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "description": "The request's fields are missing or invalid; `errors` lists each bad field.",
    "allOf": [
        {"$ref": "#/components/schemas/Problem"},
        {"type": "object", "properties": {"status": {"const": 422}}},
    ],
}

_DESCRIPTIONS = {
    400: "The body does not parse, or the link is incomplete or was altered.",
    401: "No valid staff token (`Authorization: Bearer <token>`).",
    403: "The token's roles do not allow this.",
    404: "What the path names does not exist (or belongs to another tenant).",
    409: "The thing's current state does not allow this.",
    410: "Gone for good.",
    415: "The body is not `application/json`.",
    422: "Some fields are missing or invalid.",
    429: "Too many requests; try again after `Retry-After` seconds.",
    503: "Temporarily unable; try again.",
}

_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`, with the reason"}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
}

BEARER = "staffToken"
SECURITY_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "JWT",
    "description": "A staff token naming the tenant and roles, e.g. from `civic token --tenant <t> --roles staff`.",
}


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    schema = "ValidationProblem" if status == 422 else "Problem"
    out: dict[str, Any] = {
        "description": description or _DESCRIPTIONS.get(status, "An error."),
        "content": {PROBLEM: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
    if status in _HEADERS:
        out["headers"] = _HEADERS[status]
    return out


def problems(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """``responses`` of a route for problems only its domain knows, e.g. ``problems(409)``.

    A description per status may be given as ``s409="..."``.
    """
    return {s: problem_response(s, described.get(f"s{s}")) for s in statuses}


def answers(model: Any, status: int = 200, description: str = "Success") -> dict[int | str, dict[str, Any]]:
    """``responses`` documenting the JSON body of a success answer with ``model`` (a pydantic model or a type
    such as ``list[Model]``). Only documents: the route builds and serialises its body as before (its return
    annotation, e.g. ``dict[str, Any]``, stays its response model), and the API test checks the body against
    this schema."""
    return {status: {"description": description, "model": model}}


def media(*types: str, status: int = 200, description: str = "Success") -> dict[int | str, dict[str, Any]]:
    """``responses`` of a route answering other media types than JSON; use with ``response_class=Response``
    (else FastAPI lists ``application/json`` too). Text types are strings, the others binary."""

    def schema(media_type: str) -> dict[str, Any]:
        text = media_type.startswith("text/") or media_type.endswith("+xml")
        return {"type": "string"} if text else {"type": "string", "format": "binary"}

    return {status: {"description": description, "content": {t: {"schema": schema(t)} for t in types}}}


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def merge(*parts: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """Several ``responses`` dictionaries as one (``links``, ``problems`` and ``media`` together)."""
    out: dict[int | str, dict[str, Any]] = {}
    for part in parts:
        for status, response in part.items():
            target = out.setdefault(status, {})
            for key, value in response.items():
                if isinstance(value, dict) and isinstance(target.get(key), dict):
                    target[key] = {**target[key], **value}
                else:
                    target[key] = value
    return out


Links = Mapping[str, Mapping[str, Mapping[str, str]]]


def complete(doc: dict[str, Any], links: Links | None = None) -> dict[str, Any]:
    """The generated document with every problem each operation can answer (rules above) and the ``links``
    between operations, in place."""
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["FieldError"] = FIELD_ERROR_SCHEMA
    schemas["ValidationProblem"] = VALIDATION_PROBLEM_SCHEMA
    components.setdefault("securitySchemes", {})[BEARER] = SECURITY_SCHEME
    for ops in doc.get("paths", {}).values():
        for method, op in ops.items():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            _complete_operation(method, op)
    if links:
        _add_links(doc, links)
    return doc


def _documented_model_only(schema: dict[str, Any] | None) -> None:
    """FastAPI merges a route's documented model (``answers``) into the schema of its return annotation; keep
    the model alone (``{"$ref": ...}``, for lists in ``items``)."""
    if not schema:
        return
    for part in (schema, schema.get("items")):
        if isinstance(part, dict) and "$ref" in part:
            ref = part["$ref"]
            part.clear()
            part["$ref"] = ref
    if "$ref" in schema.get("items", {}):
        for key in ("additionalProperties", "title"):
            schema.pop(key, None)


def _add_links(doc: dict[str, Any], links: Links) -> None:
    ops = {
        op["operationId"]: op
        for path_ops in doc.get("paths", {}).values()
        for op in path_ops.values()
        if isinstance(op, dict) and "operationId" in op
    }
    for source, targets in links.items():
        if source not in ops:
            raise ValueError(f"link from unknown operation {source}")
        for target in targets:
            if target not in ops:
                raise ValueError(f"link from {source} to unknown operation {target}")
        for status, response in ops[source]["responses"].items():
            if status.startswith("2") and "content" in response:
                response["links"] = {
                    target.partition(".")[2]: {"operationId": target, "parameters": dict(parameters)}
                    for target, parameters in targets.items()
                }


def _complete_operation(method: str, op: dict[str, Any]) -> None:
    params = op.get("parameters", [])
    body = "requestBody" in op
    secured = bool(op.get("security"))
    statuses: set[int] = set()
    if params or body:
        # 400: a NUL character in a path segment, query or body, refused at the edge (shared/http/guard.py).
        statuses |= {400, 422}
    if secured:
        statuses |= {401, 403}
    if any(p.get("in") == "path" for p in params):
        statuses.add(404)
    if body:
        statuses |= {400, 415}
    if not secured and method.lower() in ("post", "put", "patch", "delete"):
        statuses.add(429)
    responses: dict[str, Any] = op["responses"]
    for response in responses.values():
        for content in response.get("content", {}).values():
            _documented_model_only(content.get("schema"))
    for status in sorted(statuses):
        key = str(status)
        given = responses.get(key)
        # FastAPI's own 422 (HTTPValidationError) is replaced; a route's own description is kept.
        description = given.get("description") if given and key != "422" else None
        responses[key] = problem_response(status, description)
    for key, given in list(responses.items()):
        if key.isdigit() and int(key) >= 400 and PROBLEM not in given.get("content", {}):
            responses[key] = problem_response(int(key), given.get("description"))
