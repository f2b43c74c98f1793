"""Errors as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import DomainError

PROBLEM = "application/problem+json"
BASE = "https://civic.example/problems/"


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        *,
        type_: str = "about:blank",
        detail: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.type = type_ if type_ == "about:blank" or "://" in type_ else BASE + type_
        self.detail = detail
        # Every entry says where the field is (the agreed shape); a use case that lists only pointers means the body.
        self.errors = [e if "in" in e else {"in": "body", **e} for e in errors] if errors else errors
        self.headers = headers
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extensions)
        return body


def problem_of(error: DomainError) -> Problem:
    """The one place a domain refusal becomes a problem document: its kind gives the status, its code the type."""
    return Problem(
        error.status,
        error.title,
        type_=error.code,
        detail=error.detail,
        errors=[f.as_dict() for f in error.fields] or None,
        **error.extensions,
    )


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(str(request.url.path) if request else None),
        status_code=problem.status,
        media_type=PROBLEM,
        headers=problem.headers,
    )


def field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """One entry per bad field: where it is (a JSON pointer) and what is wrong with it."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else "body"
        pointer = "/" + "/".join(loc[1:]) if len(loc) > 1 else ""
        out.append(
            {
                "in": where,
                "pointer": pointer or "/",
                "detail": err.get("msg", "invalid"),
                "code": err.get("type", "invalid"),
            }
        )
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(DomainError)
    async def _refused(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(problem_of(exc), request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        from shared.http.guard import auth_first, is_json

        route = request.scope.get("route")
        if route is not None:
            try:
                await auth_first(request, route)  # a staff route: 401/403 before anything about the body
            except Problem as unauthorized:
                return problem_response(unauthorized, request)
        content_type = request.headers.get("content-type", "")
        if content_type and not is_json(content_type) and any(e.get("loc", ("",))[0] == "body" for e in exc.errors()):
            return problem_response(UNSUPPORTED, request)
        return problem_response(
            Problem(
                422,
                "Invalid request",
                type_="validation",
                detail="Some fields are missing or invalid.",
                errors=field_errors(exc),
            ),
            request,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(
            Problem(
                exc.status_code,
                _TITLES.get(exc.status_code, "Error"),
                detail=str(exc.detail) if exc.detail else None,
                headers=getattr(exc, "headers", None),
            ),
            request,
        )


UNSUPPORTED = Problem(
    415, "Unsupported media type", type_="unsupported-media-type", detail="Send the body as application/json."
)

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
}
