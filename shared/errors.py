"""What a use case says when it refuses: domain exceptions, free of HTTP.

Services raise these from ``use_cases.py`` and ``domain.py``; ``shared/http/problems.py`` maps each kind to its
status in one place, so a use case called from a handler, a loop or the CLI raises the same thing a route does.
``code`` becomes the problem document's ``type`` (``https://civic.example/problems/<code>``); ``title`` and
``detail`` are plain English for API clients (the web client words them for people by ``code``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldProblem:
    """One bad field: a JSON pointer into the request (``/email``), what is wrong, and a stable code."""

    pointer: str
    detail: str
    code: str = "invalid"
    #: Where the field is: ``body``, ``query``, ``path`` or ``header``.
    where: str = "body"

    def as_dict(self) -> dict[str, Any]:
        return {"in": self.where, "pointer": self.pointer, "detail": self.detail, "code": self.code}


class DomainError(Exception):
    """Base of every refusal. ``extensions`` are extra members of the problem document (``seats_left`` ...)."""

    #: The HTTP status this kind maps to; the only HTTP fact here, read by shared/http/problems.py alone.
    status: ClassVar[int] = 400
    default_title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        code: str,
        title: str | None = None,
        *,
        detail: str | None = None,
        fields: list[FieldProblem] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title or code)
        self.code = code
        self.title = title or self.default_title
        self.detail = detail
        self.fields = fields or []
        self.extensions = extensions


class Invalid(DomainError):
    """The input breaks a rule (422): the fields say which."""

    status = 422
    default_title = "Invalid request"


class NotFound(DomainError):
    status = 404
    default_title = "Not found"


class Conflict(DomainError):
    """The request contradicts the current state (full, already cancelled, closed ...)."""

    status = 409
    default_title = "Conflict"


class Gone(DomainError):
    status = 410
    default_title = "Gone"


class Forbidden(DomainError):
    status = 403
    default_title = "Forbidden"


class Unauthorized(DomainError):
    status = 401
    default_title = "Unauthorized"


class TooLarge(DomainError):
    status = 413
    default_title = "Content too large"


class Unavailable(DomainError):
    """A server civic depends on cannot be reached; the caller may retry."""

    status = 503
    default_title = "Service unavailable"
