"""QR codes, as PNG or SVG: one module for survey links, short links, tickets in mails and on pages.

Sizes: ``png(..., size=...)`` is the edge in pixels, ``svg(..., size=...)`` the ``width``/``height`` attribute
as given (``"100mm"`` for print, ``"1200"`` for user units). Modules are whole pixels in a PNG, so it may come out
slightly smaller than asked for, never larger: a code stays sharp when printed.
"""

from __future__ import annotations

import io
import re
from typing import Literal

import qrcode
import qrcode.constants
from PIL import Image
from qrcode.exceptions import DataOverflowError
from qrcode.image.svg import SvgPathImage

ErrorCorrection = Literal["L", "M", "Q", "H"]

LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
#: The quiet zone the standard asks for, in modules.
BORDER = 4


#: The version (size) last fitted per data length and error correction. Codes made in bulk have one length
#: (ticket codes): finding the version writes the data once more, a fifth of the time to make a code.
_VERSIONS: dict[tuple[int, ErrorCorrection], int] = {}


def _build(data: str, ec: ErrorCorrection, border: int, mask: int | None = None) -> qrcode.QRCode:
    def code(version: int | None) -> qrcode.QRCode:
        q = qrcode.QRCode(version=version, error_correction=LEVELS[ec], border=border, box_size=10, mask_pattern=mask)
        q.add_data(data)
        return q

    key = (len(data), ec)
    if (version := _VERSIONS.get(key)) is not None:
        q = code(version)
        try:
            # Data of this length in a denser mode (digits only, say) would fit a smaller version; it still
            # reads the same in this one.
            q.make(fit=False)
            return q
        except DataOverflowError:
            pass  # this data needs a larger version than the last of its length
    q = code(None)
    q.make(fit=True)
    _VERSIONS[key] = q.version
    return q


def png(
    data: str, *, size: int = 709, ec: ErrorCorrection = "M", border: int = BORDER, mask: int | None = None
) -> bytes:
    """A PNG at most ``size`` pixels wide, one bit a pixel.

    ``mask``: the mask pattern (0-7). Unset, the one the standard's penalty rules rate best, which costs
    trying all eight (three quarters of the time to make a code); readers decode every mask, so where codes are
    made in bulk and read up close, a fixed one saves that (ticket mails: ``mails.ticket_qr``)."""
    q = _build(data, ec, border, mask)
    modules = q.get_matrix()  # quiet zone included
    n = len(modules)
    # One byte a module, scaled up by whole pixels in C: drawing module by module costs more than the code.
    image = Image.frombytes("L", (n, n), bytes(0 if dark else 255 for row in modules for dark in row))
    box = max(1, size // n)
    buf = io.BytesIO()
    image.resize((n * box, n * box), Image.Resampling.NEAREST).convert("1").save(buf, "PNG")
    return buf.getvalue()


def svg(data: str, *, size: str = "100mm", ec: ErrorCorrection = "M", border: int = BORDER) -> bytes:
    """A scalable SVG of one path; its viewBox counts modules, ``size`` sets the width and height it claims."""
    q = _build(data, ec, border)
    buf = io.BytesIO()
    q.make_image(image_factory=SvgPathImage).save(buf)
    doc = buf.getvalue().decode()
    doc = re.sub(r'width="[^"]+"', f'width="{size}"', doc, count=1)
    doc = re.sub(r'height="[^"]+"', f'height="{size}"', doc, count=1)
    return doc.encode()
