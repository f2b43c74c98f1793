"""QR codes for a survey's public link, as PNG or SVG, sized for screens up to posters."""

from __future__ import annotations

import io
import re

import qrcode
import qrcode.constants
import qrcode.image.svg

ECC = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
BORDER = 4
MIN_SIZE, MAX_SIZE = 100, 8000


def render(url: str, *, fmt: str = "png", size: int = 1200, ecc: str = "M") -> tuple[bytes, str]:
    """(content, media type). ``size`` is the edge in pixels (PNG) or in user units (SVG, scalable);
    the modules are whole pixels, so a PNG may come out slightly smaller than asked, never larger."""
    code = qrcode.QRCode(error_correction=ECC[ecc], border=BORDER, box_size=1)
    code.add_data(url)
    code.make(fit=True)
    modules = code.modules_count + 2 * BORDER
    box = max(1, size // modules)
    buf = io.BytesIO()
    if fmt == "svg":
        # The viewBox counts modules; width and height scale it to the size asked for.
        code.box_size = 10
        img = code.make_image(image_factory=qrcode.image.svg.SvgPathImage)
        img.save(buf)
        svg = buf.getvalue().decode()
        svg = re.sub(r'width="[^"]*" height="[^"]*"', f'width="{size}" height="{size}"', svg, count=1)
        return svg.encode(), "image/svg+xml"
    code.box_size = box
    img = code.make_image(fill_color="black", back_color="white")
    img.save(buf, format="PNG")
    return buf.getvalue(), "image/png"
