"""The call-back list and the waiting list's promotion by hand in the console, against the real services: a phone
registrant without e-mail moves up when an online registration is cancelled, the overview counts the open
call, the call-back list shows it with a ``tel:`` link and marks it done (once, however often the form is sent);
staff move a single person up past a group that does not fit; a ``checkin`` person is refused the list."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.console_support import sign_in_locally
from tests.integration.web.test_console_meetings import Console, console  # noqa: F401 (the fixture)
from tests.support import staff_headers

API = "/api/registration"


async def meeting(c: Console, capacity: int, title: str) -> str:
    starts = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    r = await c.api.post(
        f"{API}/staff/meetings",
        headers=staff_headers(c.tenant),
        json={
            "title": title,
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": capacity,
            "max_companions": 2,
        },
    )
    assert r.status_code == 201, r.text
    meeting_id = str(r.json()["id"])
    (await c.api.post(f"{API}/staff/meetings/{meeting_id}/publish", headers=staff_headers(c.tenant))).raise_for_status()
    return meeting_id


async def register(c: Console, meeting_id: str, name: str, *, phone: str | None = None, companions: int = 0) -> Any:
    body: dict[str, Any] = {"name": name, "privacy_consent": True, "companions": companions}
    if phone:
        r = await c.api.post(
            f"{API}/staff/meetings/{meeting_id}/registrations",
            headers=staff_headers(c.tenant),
            json={**body, "phone": phone, "channel": "phone"},
        )
    else:
        r = await c.api.post(
            f"{API}/meetings/{meeting_id}/registrations", json={**body, "email": f"{name.split()[0]}@example.org"}
        )
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_promoted_phone_registrant_is_called_and_the_call_marked_done(console: Console) -> None:  # noqa: F811
    c = console
    meeting_id = await meeting(c, 1, "Ortsbeirat Süd")
    online = await register(c, meeting_id, "Ronja Nettelbeck")
    phoned = await register(c, meeting_id, "Hans-Jürgen Öztürk", phone="0481 97 1234")
    assert phoned["status"] == "waitlisted"
    await sign_in_locally(c.web, c.tenant, "staff", name="Sachbearbeitung Test")
    overview = await c.page(f"/verwaltung/{c.tenant}/")
    assert 'data-open-calls="0"' in overview and "Niemand wartet auf einen Anruf." in overview
    empty = await c.page(f"/verwaltung/{c.tenant}/rueckrufe")
    assert "Niemand wartet auf einen Anruf." in empty and "Noch keine erledigten Anrufe." in empty

    (await c.api.delete(f"{API}/registrations/{online['secret']}")).raise_for_status()
    overview = await c.page(f"/verwaltung/{c.tenant}/")
    assert "1 Person wartet auf Ihren Anruf." in overview and f'href="/verwaltung/{c.tenant}/rueckrufe"' in overview
    listing = await c.page(f"/verwaltung/{c.tenant}/rueckrufe")
    row = re.search(r"<tr[^>]*>\s*<th[^>]*>Hans-Jürgen Öztürk.*?</tr>", listing, re.S)
    assert row is not None, listing
    assert 'href="tel:+49481971234">+49 481 971234<' in row.group(0) and "Ortsbeirat Süd" in row.group(0)
    assert "Von der Warteliste nachgerückt: hat jetzt einen Platz" in row.group(0)
    assert "Ronja Nettelbeck" not in listing, "an address is mailed, never called"

    [call] = (await c.api.get(f"{API}/staff/callbacks", headers=staff_headers(c.tenant))).json()
    action = f"/verwaltung/{c.tenant}/rueckrufe/{call['id']}/erledigt"
    form = re.search(rf'<form method="post" action="{re.escape(action)}">(.*?)</form>', listing, re.S)
    assert form is not None and "Anruf erledigt" in form.group(1)
    csrf = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.group(1)))
    forged = await c.web.post(action, data={})
    assert forged.status_code == 403, "no CSRF field: refused"
    done = await c.web.post(action, data=csrf)
    assert done.status_code == 303 and done.headers["location"].startswith(f"/verwaltung/{c.tenant}/rueckrufe?")
    after = await c.page(done.headers["location"])
    assert "Der Anruf bei Hans-Jürgen Öztürk ist als erledigt vermerkt." in after
    assert "Niemand wartet auf einen Anruf." in after
    done_part = after[after.index('id="erledigt"') :]
    assert "Hans-Jürgen Öztürk" in done_part and "Anruf erledigt" not in done_part
    again = await c.web.post(action, data=csrf)  # the form sent twice: still one call, done once
    assert again.status_code == 303
    assert len((await c.api.get(f"{API}/staff/callbacks?state=done", headers=staff_headers(c.tenant))).json()) == 1
    assert 'data-open-calls="0"' in await c.page(f"/verwaltung/{c.tenant}/")

    english = await c.page(f"/verwaltung/{c.tenant}/rueckrufe?lang=en")
    assert "Call-back list" in english and "Moved up from the waiting list: now has a seat" in english

    # The same browser signed in again as a check-in person: the list is not theirs.
    await sign_in_locally(c.web, c.tenant, "checkin", name="Einlass")
    assert (await c.web.get(f"/verwaltung/{c.tenant}/rueckrufe")).status_code == 403
    assert "rueckrufe" not in (await c.web.get(f"/verwaltung/{c.tenant}/")).text


async def test_the_waiting_list_moves_someone_up_by_hand(console: Console) -> None:  # noqa: F811
    c = console
    meeting_id = await meeting(c, 1, "Werkstatt Ortsmitte")
    await register(c, meeting_id, "Kim Online")
    group = await register(c, meeting_id, "Familie Groß", companions=1)
    single = await register(c, meeting_id, "Jördis Telefon", phone="0481 97 5678")
    assert (group["status"], single["status"]) == ("waitlisted", "waitlisted")
    # One seat more: the group at the head needs two, so the list does not move by itself.
    r = await c.api.patch(f"{API}/staff/meetings/{meeting_id}", json={"capacity": 2}, headers=staff_headers(c.tenant))
    assert r.status_code == 200 and r.json()["waitlisted"] == 2
    await sign_in_locally(c.web, c.tenant, "staff", name="Sachbearbeitung Test")
    waiting_path = f"{c.base}/{meeting_id}/warteliste"
    page = await c.page(waiting_path)
    assert "Freie Plätze: 1." in page and page.count(">Nachrücken<") == 2

    refused = await c.send(waiting_path, {}, status=409, action=f"{waiting_path}/{group['id']}/nachruecken")
    assert "Nachrücken war nicht möglich" in refused.text and "Dafür ist kein Platz frei." in refused.text
    moved = await c.send(waiting_path, {}, action=f"{waiting_path}/{single['id']}/nachruecken")
    notice = await c.page(moved.headers["location"])
    assert "Jördis Telefon ist nachgerückt und hat jetzt einen Platz." in notice
    assert "steht auf der Rückrufliste" in notice and "Familie Groß" in notice
    calls = (await c.api.get(f"{API}/staff/callbacks", headers=staff_headers(c.tenant))).json()
    assert [(x["name"], x["reason"]) for x in calls] == [("Jördis Telefon", "promoted")]
    one = await c.page(f"{c.base}/{meeting_id}/anmeldungen/{single['id']}/ergebnis")
    assert "Jördis Telefon" in one
    elsewhere = await meeting(c, 5, "Anderswo")
    await c.page(f"{c.base}/{elsewhere}/anmeldungen/{single['id']}/ergebnis", status=404)
