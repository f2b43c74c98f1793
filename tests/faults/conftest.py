from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.faults.harness import Cluster, start_cluster


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    # A short path of our own (not tmp_path): PostgreSQL's socket path must stay under 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="civic-faults-"))
    c = await start_cluster(folder)
    try:
        yield c
    finally:
        await c.close()
        shutil.rmtree(folder, ignore_errors=True)
