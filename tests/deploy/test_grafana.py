"""deploy/grafana/civic-rush.json: a valid dashboard whose every query names metrics civic really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "civic-rush.json"
SUFFIXES = ("_bucket", "_count", "_sum")


def _exported() -> set[str]:
    # Importing the app's modules registers every metric civic defines (bus, HTTP, sender).
    import services.notifications.loops  # noqa: F401
    import shared.http.metrics
    import shared.metrics  # noqa: F401

    text = generate_latest().decode()
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def test_every_panel_queries_metrics_civic_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported()
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            for name in re.findall(r"\b(civic_[a-z_]+)\b", target["expr"]):
                base = next((name[: -len(s)] for s in SUFFIXES if name.endswith(s)), name)
                used.add(base)
                assert base in exported, f"{panel['title']}: {name} is not a metric civic exports"
    # The rush itself: registrations, errors and latency per route, the bus's backlog, mail.
    assert {"civic_http_requests_total", "civic_http_request_duration_seconds", "civic_outbox_lag"} <= used
    assert {
        "civic_mail_attempts_total",
        "civic_events_consumed_total",
        "civic_relay_replication_timeouts_total",
    } <= used


def test_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        g = panel["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        assert g["x"] + g["w"] <= 24
        cells |= mine
