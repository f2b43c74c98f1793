"""The one-process runner (``civic serve``, ``uvicorn --factory civic.runner:app``)."""

from __future__ import annotations

import subprocess
import sys

from civic.runner import GC_YOUNG_THRESHOLD

PROBE = """
import gc
from civic.runner import build_app
before = gc.get_freeze_count()
build_app("registration")
print(before, gc.get_freeze_count(), gc.get_threshold()[0])
"""


def test_building_the_app_freezes_what_start_up_made_and_spaces_young_collections() -> None:
    # In a process of its own: freezing the test session's objects would keep them for good.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    before, after, young = (int(x) for x in out)
    assert before == 0 and after > 10_000
    assert young == GC_YOUNG_THRESHOLD
