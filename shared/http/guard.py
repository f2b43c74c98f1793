"""The edge every request passes first, for all services: input PostgreSQL cannot store is refused here, and
no error ever leaves as anything but a problem document.

Refused (problem documents, before any route runs):

- a NUL character (U+0000) anywhere: path, query, JSON body (``\\u0000``) or form body; PostgreSQL's text
  cannot hold it (400, ``invalid-input``, code ``nul``);
- an integer outside 32 bits (-2,147,483,648 ... 2,147,483,647) in a JSON body or as a query value: the
  columns are ``int`` (422, ``validation``, code ``int_range``);
- a body that is neither JSON nor a form (415, ``unsupported-media-type``).

Staff routes answer 401/403 before any of these (the token is checked first, see ``auth_first``).

An exception no route handled is logged with the request id and answered as a 500 problem document, never as
Starlette's plain text.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import asyncpg
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import Problem, problem_response

log = logging.getLogger(__name__)

INT32 = (-(2**31), 2**31 - 1)
#: ``\u0000`` as JSON writes it, not preceded by an escaped backslash (``\\u0000`` is the text "\u0000").
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
#: Only a body with a run this long can hold an integer beyond 32 bits: the costly check runs only then.
_LONG_NUMBER = re.compile(rb"\d{10,}")
_INTEGER = re.compile(r"[+-]?\d+")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_MAX_BODY = 16 * 1024 * 1024


def is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def is_form(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/x-www-form-urlencoded", "multipart/form-data")


def _nul(where: str, pointer: str = "/") -> Problem:
    return Problem(
        400,
        "Invalid input",
        type_="invalid-input",
        detail="The request contains a NUL character (U+0000), which cannot be stored.",
        errors=[{"in": where, "pointer": pointer, "detail": "NUL characters are not allowed", "code": "nul"}],
    )


def _too_large(where: str, pointer: str) -> Problem:
    return Problem(
        422,
        "Invalid request",
        type_="validation",
        detail="Some fields are missing or invalid.",
        errors=[
            {
                "in": where,
                "pointer": pointer,
                "detail": f"integers must lie between {INT32[0]} and {INT32[1]}",
                "code": "int_range",
            }
        ],
    )


def _out_of_range(value: Any, pointer: str = "") -> str | None:
    """The JSON pointer of the first integer beyond 32 bits in ``value``, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if INT32[0] <= value <= INT32[1] else (pointer or "/")
    if isinstance(value, dict):
        for k, v in value.items():
            found = _out_of_range(v, f"{pointer}/{k}")
            if found:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _out_of_range(v, f"{pointer}/{i}")
            if found:
                return found
    return None


def check_url(scope: Scope) -> Problem | None:
    if "\x00" in scope.get("path", "") or b"%00" in scope.get("raw_path", b""):
        return _nul("path")
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return _nul("query")
    if _LONG_NUMBER.search(query):
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if _INTEGER.fullmatch(value) and not INT32[0] <= int(value) <= INT32[1]:
                return _too_large("query", f"/{name}")
    return None


def check_body(content_type: str, body: bytes) -> Problem | None:
    if not body:
        return None
    if is_json(content_type) or not content_type:
        if b"\x00" in body or _JSON_NUL.search(body):
            return _nul("body")
        if _LONG_NUMBER.search(body):
            try:
                parsed = json.loads(body)
            except ValueError:
                return None  # the route answers malformed JSON with its own 422
            pointer = _out_of_range(parsed)
            if pointer:
                return _too_large("body", pointer)
        return None
    if is_form(content_type):
        if b"\x00" in body or b"%00" in body or (b"\x00" in unquote_to_bytes(body)):
            return _nul("body")
        return None
    return Problem(
        415,
        "Unsupported media type",
        type_="unsupported-media-type",
        detail="Send the body as application/json.",
    )


async def auth_first(request: Request, route: Any) -> None:
    """Raise the route's 401/403 problem if it needs a staff token and the request lacks a fitting one, so a
    staff route never tells a caller without a token what is wrong with the body."""
    from shared.http.auth import check_roles, current_principal

    roles = _roles_of(getattr(route, "dependant", None))
    if roles is None:
        return
    check_roles(await current_principal(request), roles)


def _roles_of(dependant: Any) -> tuple[str, ...] | None:
    if dependant is None:
        return None
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "civic_roles", None)
        if roles is not None:
            return tuple(roles)
        found = _roles_of(dep)
        if found is not None:
            return found
    return None


def _route_of(app: Any, scope: Scope) -> Any:
    """The route a request would reach (asked only for requests the guard refuses)."""
    try:
        return _match(getattr(getattr(app, "router", None), "routes", []), scope)
    except Exception:  # the framework's routing internals moved: the input problem is answered as it is
        log.warning("no route lookup for a refused request", exc_info=True)
        return None


def _match(routes: list[Any], scope: Scope) -> Any:
    for route in routes:
        found = _resolve(route, scope, depth=0)
        if found is not None:
            return found
    return None


def _resolve(route: Any, scope: Scope, depth: int) -> Any:
    select = getattr(route, "_match", None)  # FastAPI's included routers resolve their routes lazily
    if select is None:
        match, _ = route.matches(scope)
        return route if match == Match.FULL else None
    match, child, inner, context = select(scope)
    if match != Match.FULL:
        return None
    original = getattr(context, "original_route", None)
    if original is not None:
        return original
    if inner is not None and inner is not route and depth < 8:
        return _resolve(inner, {**scope, **child}, depth + 1)
    return None


class InputGuard:
    """ASGI middleware: the checks above, and the catch-all for unexpected errors. ``app_ref`` gives the
    FastAPI application whose routes tell whether a path needs a staff token."""

    def __init__(self, app: ASGIApp, app_ref: Callable[[], Any] | None = None) -> None:
        self.app = app
        self.app_ref = app_ref or (lambda: None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            problem = check_url(scope)
            if problem is None and scope["method"] in _BODY_METHODS:
                receive, problem = await self._buffered(scope, receive)
            if problem is not None:
                await self._refuse(scope, receive, tracking_send, problem)
                return
            await self.app(scope, receive, tracking_send)
        except asyncpg.DataError as exc:
            # Input the checks above let through and PostgreSQL could not take: still the client's input.
            log.warning("input refused by the database", extra={"path": scope.get("path"), "error": repr(exc)})
            if not started:
                refused = Problem(
                    422, "Invalid request", type_="invalid-input", detail="A value cannot be stored as given."
                )
                await problem_response(refused, Request(scope))(scope, receive, send)
        except Exception:
            log.exception("unexpected error", extra={"path": scope.get("path")})
            if not started:
                error = Problem(500, "Internal error", type_="internal", detail="Something went wrong on our side.")
                await problem_response(error, Request(scope))(scope, receive, send)

    async def _buffered(self, scope: Scope, receive: Receive) -> tuple[Receive, Problem | None]:
        """Read the whole body (the routes read it whole anyway) and hand the app a receive that replays it."""
        chunks: list[bytes] = []
        size, more = 0, True
        first: Message | None = None
        while more:
            message = await receive()
            if message["type"] != "http.request":
                first = message
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > _MAX_BODY:
                too_large = Problem(
                    413, "Payload too large", type_="payload-too-large", detail="The body is too large."
                )
                return receive, too_large
        body = b"".join(chunks)
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                if first is not None:
                    return first
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay, check_body(content_type, body)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, problem: Problem) -> None:
        request = Request(scope, receive)
        route = _route_of(self.app_ref(), scope)
        if route is not None:
            try:
                await auth_first(request, route)
            except Problem as unauthorized:
                problem = unauthorized
        await problem_response(problem, request)(scope, receive, send)
