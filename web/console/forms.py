"""What every console form shares: a read form and how one field's value is taken from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from web.problems import FormErrors


@dataclass
class Read:
    """A read form: the API body, what to show again in the fields, and the page's own findings."""

    body: dict[str, Any]
    values: dict[str, Any]
    errors: FormErrors = field(default_factory=FormErrors)


def one(form: Mapping[str, Sequence[str]], name: str) -> str:
    """The field's first value, stripped; empty when it was not sent."""
    values = form.get(name) or []
    return values[0].strip() if values else ""
