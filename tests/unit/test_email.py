"""The e-mail type's fast path answers exactly what pydantic's EmailStr (email_validator) answers, and both
paths refuse what EmailStr lets through beyond RFC 5321: more than 64 octets before the "@"."""

from __future__ import annotations

import random

import pytest
from pydantic import EmailStr, TypeAdapter, ValidationError

from shared.http import email
from shared.http.email import Email

OURS = TypeAdapter(Email)
THEIRS = TypeAdapter(EmailStr)

CASES = [
    "person@example.org", "Vorname.Nachname+heide@Kreis-Dithmarschen.DE", "a_b-c@x1.y-2.museum", "a@b.co",
    "x@b.test", "x@localhost", "x@foo.local", "x@example.invalid", "x@abc.onion", "x@in-addr.arpa", "x@test",
    "a@ab--cd.de", "a@xn--mnchen-3ya.de", "a@-a.de", "a@a-.de", "a@1.2.3.4", "a@b.c1", "a@b.c", "a@b",
    ".a@b.de", "a.@b.de", "a..b@b.de", "a b@c.de", '"a b"@c.de', "a@@b.de", "@b.de", "a@", "",
    "jörg@müller.de", "a@bücher.de", "Name <a@b.de>", " a@b.de ", "a@b.de.", "a@b..de", "a@b_c.de",
    "x" * 64 + "@b.de", "x" * 65 + "@b.de", "a@" + "b" * 63 + ".de", "a@" + "b" * 64 + ".de",
    "a@" + ".".join(["b" * 63] * 4) + ".de", "a@" + ".".join(["b" * 40] * 6) + ".de", "a!b@c.de", "a/b@c.de",
]  # fmt: skip


def answer(adapter: TypeAdapter[str], value: str) -> tuple[str, str]:
    try:
        return "ok", adapter.validate_python(value)
    except ValidationError as exc:
        (err,) = exc.errors()
        return err["type"], err["msg"]


LONG_LOCAL = "value is not a valid email address: the part before the @ is longer than 64 characters"


def expected(value: str) -> tuple[str, str]:
    """EmailStr's answer, with the local part's limit that it does not enforce."""
    theirs = answer(THEIRS, value)
    if theirs[0] == "ok" and len(theirs[1].rpartition("@")[0].encode()) > 64:
        return "value_error", LONG_LOCAL
    return theirs


@pytest.mark.parametrize("value", CASES)
def test_known_shapes_get_the_same_answer(value: str) -> None:
    assert answer(OURS, value) == expected(value)


@pytest.mark.parametrize("local", ["x" * 65, "ö" * 33, "a." * 32 + "b"])
def test_a_local_part_over_64_octets_is_refused(local: str) -> None:
    assert answer(OURS, f"{local}@example.org") == ("value_error", LONG_LOCAL)
    assert answer(OURS, "x" * 64 + "@example.org")[0] == "ok"


def test_random_addresses_get_the_same_answer() -> None:
    rng = random.Random(2026)

    def text(common: str, rare: str, longest: int) -> str:
        n = rng.randint(0, longest) if rng.random() < 0.1 else rng.randint(1, 12)
        return "".join(rng.choice(rare) if rng.random() < 0.06 else rng.choice(common) for _ in range(n))

    fast = 0
    for _ in range(5_000):
        local = text("abcXYZ019", "._+-!@ ", 70)
        labels = [text("abcxyz019", "-_.", 70) for _ in range(rng.randint(1, 4))]
        tld = rng.choice(["de", "org", "test", "local", "arpa", "d1", "x", "museum", "DE", ""])
        value = f"{local}@{'.'.join([*labels, tld])}"
        fast += email._common(value) is not None
        assert answer(OURS, value) == expected(value), value
    assert fast > 500  # the fast path was taken often enough to be tested
