"""Decoding QR images with OpenCV, as a phone would: two detectors, the first answer wins.

OpenCV's classic detector misses some version-5 codes at level H that its ArUco-based detector reads (and
both miss some codes at print resolution), so a code counts as readable when either decodes it, as printed
or scaled down to what a camera sees.
"""

from __future__ import annotations

import cv2
import numpy as np


def decode_png(data: bytes) -> str:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert img is not None, "not an image"
    views = [img]
    if img.shape[0] > 800:
        # A phone camera sees a poster at a few hundred pixels, not at print resolution.
        views.append(cv2.resize(img, (600, 600), interpolation=cv2.INTER_AREA))
    for view in views:
        for detector in (cv2.QRCodeDetector(), cv2.QRCodeDetectorAruco()):
            text, _, _ = detector.detectAndDecode(view)
            if text:
                return str(text)
    return ""
