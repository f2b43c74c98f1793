"""Short links for posters: the codes behind ``/q/<code>`` and the sizes their QR images are printed at.

Drawing the QR image is ``shared/qr.py``'s; what is content's own is the code alphabet and the poster sizes.
"""

from __future__ import annotations

import secrets
from typing import Literal

PosterSize = Literal["s", "m", "l", "xl"]
#: Poster sizes, as the printed edge length in pixels at 300 dpi (A6 ... A2 posters carry 3-20 cm codes).
SIZES: dict[str, int] = {"s": 354, "m": 709, "l": 1181, "xl": 2362}
#: The same sizes as the printed width of an SVG.
SIZES_MM: dict[str, str] = {"s": "30mm", "m": "60mm", "l": "100mm", "xl": "200mm"}
# Base32 without look-alikes, lower case: short to type, no 0/O or 1/l confusion on a poster.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_code(length: int = 8) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
