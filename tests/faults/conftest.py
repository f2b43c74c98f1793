from __future__ import annotations

import os
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
        if not os.environ.get("CIVIC_FAULTS_KEEP"):  # set it to read the programs' logs after a failure
            shutil.rmtree(folder, ignore_errors=True)
