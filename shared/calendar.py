"""A meeting as an iCalendar file: attached to confirmation mails and offered on the meeting's page."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import icalendar


def meeting_ics(
    *,
    uid: str,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    location: str | None,
    url: str | None,
    stamp: datetime,
    cancelled: bool = False,
) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//civic//civic//DE")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancelled else "PUBLISH")
    ev = icalendar.Event()
    ev.add("uid", uid)
    ev.add("dtstamp", stamp)
    ev.add("dtstart", starts_at)
    ev.add("dtend", ends_at)
    ev.add("summary", title)
    if location:
        ev.add("location", location)
    if url:
        ev.add("url", url)
    if cancelled:
        ev.add("status", "CANCELLED")
    cal.add_component(ev)
    return bytes(cal.to_ical())


def venue_line(venue: Mapping[str, Any] | None) -> str | None:
    """``Name, Straße 1, 25746 Heide``: a venue on one line."""
    if not venue:
        return None
    place = " ".join(x for x in (venue.get("postal_code"), venue.get("city")) if x)
    return ", ".join(x for x in (venue.get("name"), venue.get("street"), place) if x)
