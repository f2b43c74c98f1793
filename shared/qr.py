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
import zxingcpp
from PIL import Image, ImageOps
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


def _build(data: str, ec: ErrorCorrection, border: int) -> qrcode.QRCode:
    q = qrcode.QRCode(error_correction=LEVELS[ec], border=border, box_size=10)
    q.add_data(data)
    q.make(fit=True)
    return q


def png(data: str, *, size: int = 709, ec: ErrorCorrection = "M", border: int = BORDER) -> bytes:
    """A PNG at most ``size`` pixels wide, one bit a pixel.

    Made by ZXing-C++ (``zxing-cpp``, the library the door's scanner reads with): every ticket mail carries a code
    of its own, and a ticket's PNG took 2.4 to 2.6 ms through ``qrcode`` with a fixed mask, 0.9 ms this way with the
    mask chosen by the standard's rules (2026-12-03, the benchmark machine), most of it PIL writing the PNG.
    Posters' SVGs are made once each and stay with ``qrcode`` (``svg``)."""
    code = zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.QRCode, ec_level=ec)
    bitmap = code.to_image(scale=1, add_quiet_zones=False)  # one byte a module: 0 dark, 255 light
    n = int(bitmap.shape[0])
    # (Its stubs do not declare the buffer protocol the image has.)
    modules = bytes(memoryview(bitmap))  # type: ignore[arg-type]
    # Black and white at one pixel a module, then the quiet zone and whole pixels a module, all in C: dithering
    # a scaled grey image to one bit (PIL's default) cost more than making the code.
    image = Image.frombuffer("L", (n, n), modules, "raw", "L", 0, 1).convert("1", dither=Image.Dither.NONE)
    image = ImageOps.expand(image, border, fill=255)
    box = max(1, size // (n + 2 * border))
    buf = io.BytesIO()
    image.resize(((n + 2 * border) * box,) * 2, Image.Resampling.NEAREST).save(buf, "PNG")
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
