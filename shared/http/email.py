"""E-mail addresses in request bodies: pydantic's ``EmailStr``, with a fast path for the common shape.

``email_validator`` (behind ``EmailStr``) checks every character of the domain against the IDNA tables in
Python; at about 40 µs an address it was the largest single cost of a registration in a rush. Nearly every
address people type is plain ASCII (``name.surname+tag@mail.example.de``): for those this module checks the
shape with one regular expression and answers exactly what ``email_validator`` would (the domain lowercased).
Anything else (non-ASCII, quoted local parts, IDNA labels, special-use domains, too long) goes
the way ``EmailStr`` goes. ``tests/unit/test_email.py`` holds the two to the same answers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import email_validator
from pydantic import PlainValidator, WithJsonSchema
from pydantic.networks import validate_email
from pydantic_core import PydanticCustomError

# Local part: dot-separated runs of the commonest atext characters. Domain: two or more LDH labels, none
# starting or ending with a hyphen, ending in an alphabetic top-level label.
_COMMON = re.compile(
    r"[A-Za-z0-9_+-]{1,64}(?:\.[A-Za-z0-9_+-]{1,64})*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def _common(value: str) -> str | None:
    """The normalised address if ``value`` has the plain shape every check of email_validator passes."""
    if len(value) > 254 or not _COMMON.fullmatch(value):
        return None
    local, _, domain = value.rpartition("@")
    domain = domain.lower()
    if len(local) > 64 or len(domain) > 253 or "--" in domain:  # "--": IDNA's rules for labels apply
        return None
    # Read when used: email_validator documents changing this list (e.g. letting tests use ".test").
    if any(domain == name or domain.endswith("." + name) for name in email_validator.SPECIAL_USE_DOMAIN_NAMES):
        return None
    return f"{local}@{domain}"


def normalise(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    found = _common(value)
    if found is not None:
        return found
    # What EmailStr does, errors included ...
    address = validate_email(value)[1]
    # ... and what it lets through but no mail server need take: RFC 5321 allows 64 octets before the "@".
    if len(address.rpartition("@")[0].encode()) > 64:
        raise PydanticCustomError(
            "value_error", "value is not a valid email address: the part before the @ is longer than 64 characters"
        )
    return address


Email = Annotated[str, PlainValidator(normalise), WithJsonSchema({"type": "string", "format": "email"})]
