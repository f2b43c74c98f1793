"""The published AsyncAPI document parses with the official parser (@asyncapi/parser 3.x, in Node.js)."""

from __future__ import annotations

import json
import subprocess

from civic.cli import DOCS_EVENTS, ROOT
from tests.node import NODE_DIR, node_ready


def parse(node: str, path: str) -> dict[str, object]:
    done = subprocess.run(
        [node, str(NODE_DIR / "validate-asyncapi.mjs"), path], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.stdout, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_civics_asyncapi_document_parses_without_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    node = node_ready()
    result = parse(node, str(DOCS_EVENTS / "asyncapi.json"))
    errors = [d for d in result["diagnostics"] if d["severity"] == "error"]  # type: ignore[attr-defined, index]
    assert result["parsed"] is True and errors == [], errors

    # The check can fail: a reference that does not resolve from the root is an error.
    doc = json.loads((DOCS_EVENTS / "asyncapi.json").read_text())
    doc["components"]["messages"]["registration_meeting_published_v1"]["payload"]["properties"]["data"] = {
        "$ref": "#/$defs/Venue"
    }
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(doc))
    result = parse(node, str(broken))
    assert result["parsed"] is False
    assert any(d["code"] == "invalid-ref" for d in result["diagnostics"])  # type: ignore[attr-defined, index]
