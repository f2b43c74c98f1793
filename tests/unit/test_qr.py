"""shared/qr.py: what it draws decodes to what it was given, at the size asked for."""

from __future__ import annotations

import io

from PIL import Image

from shared import qr
from tests.qr import decode_png


def test_png_decodes_to_its_data_and_stays_within_the_size() -> None:
    data = "https://beteiligung.example/umfrage/landkreis/radweg?q=1"
    image = qr.png(data, size=500, ec="Q")
    assert decode_png(image) == data
    assert Image.open(io.BytesIO(image)).size[0] <= 500


def test_svg_claims_the_size_asked_for_and_is_one_path() -> None:
    doc = qr.svg("ABCD-1234", size="80mm").decode()
    assert 'width="80mm"' in doc and 'height="80mm"' in doc
    assert doc.count("<path") == 1


def test_data_of_a_length_seen_before_that_needs_a_larger_code_still_decodes() -> None:
    # Digits fit a small code; letters of the same length do not fit the size remembered for that length.
    digits, letters = "1" * 60, "bürgerbeteiligung-" * 3 + "ab1234"
    assert len(digits) == len(letters)
    assert decode_png(qr.png(digits, size=300)) == digits
    assert decode_png(qr.png(letters, size=300)) == letters
    assert decode_png(qr.png(digits, size=300)) == digits
