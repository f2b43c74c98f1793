"""Lean routes, for the few endpoints a rush hits.

A FastAPI route resolves its dependency graph and validates its parameters on every request; a body parameter
is parsed with ``json.loads`` and validated as Python objects. On the registration route that was about a third
of the framework's cost per request. A ``LeanRoute`` endpoint takes the ``Request`` and its path parameters
(typed by Starlette's convertors, e.g. ``{id:uuid}``) and reads its body with ``json_body`` (a header with
``header``), which validates
the bytes with pydantic's own JSON parser and raises FastAPI's own error, so clients get the same 422 problem
listing each bad field. FastAPI still documents the route from the endpoint's signature, and the body from
``documented``. A ``shortcut_route`` answers from a cache keyed by the raw request before any of that, and
hands a request it cannot answer to FastAPI's usual handling.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError

M = TypeVar("M", bound=BaseModel)


class LeanRoute(APIRoute):
    """Calls the endpoint with the request and the path parameters, nothing resolved or validated for it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(request, **request.path_params)
            return response

        return handler


def shortcut_route(answer: Callable[[Request], Response | None]) -> type[APIRoute]:
    """A route class whose requests go to ``answer`` first: a response it gives is sent as it is, before
    FastAPI resolves and validates the endpoint's parameters; None hands the request on to the endpoint as
    usual. For a route answered from a cache by the raw request (path parameters, query string), whose entries
    the endpoint made from requests it validated: a request that finds one is as valid as the one that made it.
    """

    class ShortcutRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            endpoint = super().get_route_handler()

            async def handler(request: Request) -> Response:
                response = answer(request)
                return response if response is not None else await endpoint(request)

            return handler

    return ShortcutRoute


async def json_body(request: Request, model: type[M]) -> M:
    from shared.http.guard import is_json
    from shared.http.problems import UNSUPPORTED

    if not is_json(request.headers.get("content-type", "application/json")):
        raise UNSUPPORTED
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        # Located as FastAPI locates body errors, under "body".
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False, include_context=False)]
        ) from None


def header(request: Request, name: str, adapter: TypeAdapter[str]) -> str | None:
    """An optional header, checked by ``adapter``: a bad value raises FastAPI's own error, located as FastAPI
    locates a declared header's, so clients get the same 422 problem naming it."""
    value = request.headers.get(name)
    if value is None:
        return None
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("header", name)} for e in errors]) from None


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` of a route that reads ``model`` itself with ``json_body``."""
    schema = model.model_json_schema()
    if "$defs" in schema:
        raise ValueError(f"{model.__name__} nests models; give it a body parameter instead")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
