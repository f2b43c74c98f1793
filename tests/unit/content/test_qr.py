"""Short-link QR images at poster sizes decode back to the short link with a real decoder (OpenCV), at every
error correction level; short-link codes avoid look-alike characters."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.content import short_links
from shared import qr
from tests.qr import decode_png

LINK = "https://civic.example.org/q/abcd2345"


@pytest.mark.parametrize(
    ("ec", "size"), [("L", "m"), ("M", "m"), ("Q", "m"), ("H", "m"), ("H", "s"), ("L", "s"), ("Q", "xl")]
)
def test_png_decodes_to_the_short_link(ec: qr.ErrorCorrection, size: str) -> None:
    data = qr.png(LINK, ec=ec, size=short_links.SIZES[size])
    assert data.startswith(b"\x89PNG")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert abs(img.shape[0] - short_links.SIZES[size]) < short_links.SIZES[size] * 0.15
    assert decode_png(data) == LINK


def test_higher_error_correction_means_more_modules() -> None:
    low = cv2.imdecode(np.frombuffer(qr.png(LINK, ec="L", size=2000), np.uint8), cv2.IMREAD_GRAYSCALE)
    high = cv2.imdecode(np.frombuffer(qr.png(LINK, ec="H", size=2000), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert low is not None and high is not None
    assert qr._build(LINK, "H", qr.BORDER).modules_count > qr._build(LINK, "L", qr.BORDER).modules_count


def test_svg_has_the_poster_size() -> None:
    doc = qr.svg(LINK, ec="Q", size=short_links.SIZES_MM["xl"]).decode()
    assert doc.lstrip().startswith("<?xml") and "<svg" in doc
    assert 'width="200mm"' in doc and 'height="200mm"' in doc


def test_codes_avoid_look_alike_characters() -> None:
    codes = {short_links.new_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(c) == 8 and not set(c) & set("01ilo") for c in codes)
