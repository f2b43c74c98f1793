"""QR images of short links: PNG and SVG at poster sizes, with the error correction staff chose."""

from __future__ import annotations

import io
import re
import secrets
from typing import Literal

import qrcode
import qrcode.constants
from qrcode.image.pil import PilImage
from qrcode.image.svg import SvgPathImage

ErrorCorrection = Literal["L", "M", "Q", "H"]

_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
#: Poster sizes, as the printed edge length in pixels at 300 dpi (A6 ... A2 posters carry 3-20 cm codes).
SIZES = {"s": 354, "m": 709, "l": 1181, "xl": 2362}
# Base32 without look-alikes, lower case: short to type, no 0/O or 1/l confusion on a poster.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_code(length: int = 8) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _build(data: str, ec: ErrorCorrection) -> qrcode.QRCode:
    q = qrcode.QRCode(error_correction=_LEVELS[ec], border=4, box_size=10)
    q.add_data(data)
    q.make(fit=True)
    return q


def png(data: str, *, ec: ErrorCorrection = "M", size: int = SIZES["m"]) -> bytes:
    """A PNG about ``size`` pixels wide: whole pixels per module, so the code stays sharp when printed."""
    q = _build(data, ec)
    modules = q.modules_count + 2 * q.border
    q.box_size = max(1, size // modules)
    img = q.make_image(image_factory=PilImage)
    buf = io.BytesIO()
    img.save(buf)
    return buf.getvalue()


def svg(data: str, *, ec: ErrorCorrection = "M", size_mm: int = 100) -> bytes:
    """A scalable SVG (one path); ``size_mm`` sets its printed width."""
    q = _build(data, ec)
    img = q.make_image(image_factory=SvgPathImage)
    buf = io.BytesIO()
    img.save(buf)
    doc = buf.getvalue().decode()
    # The factory writes a size in mm derived from box_size; the poster size is what staff asked for.
    doc = re.sub(r'width="[^"]+"', f'width="{size_mm}mm"', doc, count=1)
    doc = re.sub(r'height="[^"]+"', f'height="{size_mm}mm"', doc, count=1)
    return doc.encode()
