"""Staff exports of a meeting's registrations and attendance: CSV streamed from a server-side cursor, XLSX."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import xlsxwriter
from fastapi.responses import Response, StreamingResponse

from services.registration.store import Meeting
from shared.service import ServiceContext

COLUMNS = [
    "id",
    "status",
    "slot_starts_at",
    "seats",
    "companions",
    "channel",
    "name",
    "email",
    "phone",
    "answers",
    "created_at",
    "confirmed_at",
    "cancelled_at",
    "cancelled_by",
    "checked_in_at",
]
QUERY = (
    "select r.id, r.status, s.starts_at as slot_starts_at, r.seats, r.companions, r.channel, r.name, r.email, "
    "r.phone, r.answers, r.created_at, r.confirmed_at, r.cancelled_at, r.cancelled_by, c.checked_in_at "
    "from registrations r left join slots s on s.id = r.slot_id left join checkins c on c.registration_id = r.id "
    "where r.meeting_id = $1 and r.tenant = $2 {filter} order by r.seq"
)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _safe(value: Any) -> Any:
    """Spreadsheet formula injection: a cell starting with = + - @ is shown as text, not run."""
    text = _cell(value)
    if isinstance(text, str) and text[:1] in ("=", "+", "-", "@"):
        return "'" + text
    return text


def _query(attendance: bool) -> str:
    return QUERY.format(filter="and c.id is not null" if attendance else "")


def csv_response(ctx: ServiceContext, meeting: Meeting, *, attendance: bool) -> StreamingResponse:
    async def rows() -> AsyncIterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(COLUMNS)
        async with ctx.pool.acquire() as conn, conn.transaction():
            async for r in conn.cursor(_query(attendance), meeting.id, meeting.tenant, prefetch=500):
                writer.writerow([_safe(r[c]) for c in COLUMNS])
                if buf.tell() > 16_384:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()
        yield buf.getvalue()

    name = "attendance" if attendance else "registrations"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-{meeting.id}.csv"'},
    )


async def xlsx_response(ctx: ServiceContext, meeting: Meeting) -> Response:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    sheet = book.add_worksheet("registrations")
    sheet.write_row(0, 0, COLUMNS)
    line = 1
    async with ctx.pool.acquire() as conn, conn.transaction():
        async for r in conn.cursor(_query(False), meeting.id, meeting.tenant, prefetch=500):
            values = [json.dumps(json.loads(r[c])) if c == "answers" else _cell(r[c]) for c in COLUMNS]
            sheet.write_row(line, 0, values)
            line += 1
    book.close()
    return Response(
        out.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="registrations-{meeting.id}.xlsx"'},
    )
