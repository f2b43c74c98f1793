"""Node.js for the tests that run civic's JavaScript clients (clients/node): installed with `npm ci` from the
committed package-lock.json on first use; skipped, with the reason, where Node.js or the npm registry is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parent.parent / "clients" / "node"


def node_ready() -> str:
    """The path of `node`, after making sure clients/node's dependencies are installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not installed (Debian: apt-get install nodejs npm)")
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.skip(f"`npm ci` in clients/node failed (no npm registry?): {done.stderr[-500:]}")
    return node
