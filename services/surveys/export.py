"""Raw responses as CSV (streamed row by row, as ``use_cases.results.export`` reads them from a cursor) and
XLSX (written with constant memory to a temporary file, then streamed). Cells that a spreadsheet would run as
a formula are defused."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import xlsxwriter

from services.surveys import domain
from services.surveys.use_cases.results import Rows

CHUNK = 64 * 1024
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _safe(v: Any) -> Any:
    if isinstance(v, str) and v.startswith(_FORMULA):
        return "'" + v
    return v


async def _cells(rows: Rows, qn: domain.Questionnaire) -> AsyncIterator[list[Any]]:
    async for response_id, day, answers in rows:
        cells = domain.export_cells(qn, answers)
        yield [str(response_id), day.isoformat(), *(_safe(c) for c in cells)]


def header(qn: domain.Questionnaire) -> list[str]:
    return ["response_id", "day", *domain.export_columns(qn)]


async def csv_stream(rows: Rows, qn: domain.Questionnaire) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")  # spreadsheet programs read UTF-8 with the mark
    writer.writerow(header(qn))
    async for row in _cells(rows, qn):
        writer.writerow(row)
        if buf.tell() >= CHUNK:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


async def xlsx_stream(rows: Rows, qn: domain.Questionnaire) -> AsyncIterator[bytes]:
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        book = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False})
        sheet = book.add_worksheet("responses")
        sheet.write_row(0, 0, header(qn))
        n = 1
        async for row in _cells(rows, qn):
            sheet.write_row(n, 0, row)
            n += 1
        book.close()
        with open(path, "rb") as f:  # noqa: ASYNC230 - a local temporary file, read in chunks
            while chunk := f.read(CHUNK):
                yield chunk
    finally:
        os.unlink(path)
