"""Required text fields that must say something: a name of spaces or zero-width characters is no name.

``Annotated[str, Field(min_length=1, max_length=200), Visible]`` strips whitespace and invisible format
characters (Unicode category Cf: zero-width space, joiners, the byte order mark, bidi marks ...) from both
ends and refuses a value with nothing visible left (code ``blank``), instead of storing an empty name that
later greets someone with "Guten Tag ,".
"""

from __future__ import annotations

import unicodedata

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError


def _invisible(c: str) -> bool:
    return c.isspace() or unicodedata.category(c) == "Cf"


def visible_text(value: str) -> str:
    start, end = 0, len(value)
    while start < end and _invisible(value[start]):
        start += 1
    while end > start and _invisible(value[end - 1]):
        end -= 1
    if start == end:
        raise PydanticCustomError("blank", "must contain visible characters")
    return value[start:end]


Visible = AfterValidator(visible_text)
