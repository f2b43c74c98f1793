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


async def test_each_service_serves_what_it_publishes_and_receives(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from civic.services import ALL
    from shared.http.app import create_app
    from shared.settings import Settings

    node = node_ready()
    app = create_app(list(ALL.values()), Settings(log_json=False), migrate=False, background=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for name, definition in ALL.items():
            doc = (await client.get(f"/api/{name}/asyncapi.json")).json()
            received = {
                m["$ref"].rsplit("/", 1)[-1]
                for op in doc["operations"].values()
                if op["action"] == "receive"
                for m in op["messages"]
            }
            wanted = {t.removeprefix("civic.").replace(".", "_") for t in definition.event_types}
            assert received == wanted, name
            assert any(op["action"] == "send" for op in doc["operations"].values()), name
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(doc))
            result = parse(node, str(path))
            errors = [d for d in result["diagnostics"] if d["severity"] == "error"]  # type: ignore[attr-defined, index]
            assert result["parsed"] is True and errors == [], (name, errors)
