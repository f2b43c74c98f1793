"""Colour contrast after WCAG 2.1 (relative luminance, contrast ratio): tenant colours below 4.5:1 are refused."""

from __future__ import annotations

import re

#: WCAG 2.1 AA for normal text (success criterion 1.4.3).
MIN_CONTRAST = 4.5
_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")


def parse_hex(colour: str) -> tuple[int, int, int]:
    m = _HEX.match(colour.strip())
    if not m:
        raise ValueError(f"{colour!r} is not a colour like #004b87")
    v = m.group(1)
    return int(v[0:2], 16), int(v[2:4], 16), int(v[4:6], 16)


def luminance(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in parse_hex(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def check_on_white(colour: str) -> str:
    """The colour, if white text on it (buttons, header) and it as text on white (links) reach 4.5:1."""
    ratio = contrast(colour, "#ffffff")
    if ratio < MIN_CONTRAST:
        raise ValueError(f"{colour} has a contrast of {ratio:.2f}:1 with white; at least {MIN_CONTRAST}:1 is needed")
    return colour.lower()
