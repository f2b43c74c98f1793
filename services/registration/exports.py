"""Files staff download: a meeting's registrations and attendance as CSV (streamed) or XLSX, and a person's
data export as a ZIP. Rendering only: the rows come from the use cases."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import xlsxwriter

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


async def csv_chunks(rows: AsyncIterator[Any]) -> AsyncIterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    async for r in rows:
        writer.writerow([_safe(r[c]) for c in COLUMNS])
        if buf.tell() > 16_384:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


async def xlsx_bytes(rows: AsyncIterator[Any]) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    sheet = book.add_worksheet("registrations")
    sheet.write_row(0, 0, COLUMNS)
    line = 1
    async for r in rows:
        values = [json.dumps(json.loads(r[c])) if c == "answers" else _cell(r[c]) for c in COLUMNS]
        sheet.write_row(line, 0, values)
        line += 1
    book.close()
    return out.getvalue()


def zip_bytes(doc: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("export.json", json.dumps(doc, indent=2, ensure_ascii=False, default=str))
        z.writestr(
            "LIESMICH.txt",
            "Auskunft nach Art. 15 DSGVO: alle personenbezogenen Daten, die civic zu der angefragten "
            "E-Mail-Adresse oder Telefonnummer gespeichert hat (export.json, nach Dienst gegliedert).\n",
        )
    return out.getvalue()
