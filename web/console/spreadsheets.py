"""Tables for staff to download: CSV that German Excel opens as it is, and XLSX.

Decision: the registration API's ``registrations.csv`` is comma-separated UTF-8 without a byte order mark, which a
German Excel opens as one column with broken umlauts. The web client owns no data but may format it: it writes
both files from the API's JSON listing. CSV: UTF-8 with BOM, ``;`` as separator, CRLF line ends, every field
quoted where needed. Both guard against formula injection (a cell starting with ``= + - @`` or a tab/CR is
written with a leading apostrophe in CSV, as a plain string in XLSX).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

import xlsxwriter

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Row = Sequence[str | int | float | None]


def _cell(value: str | int | float | None) -> str | int | float:
    return "" if value is None else value


def _csv_safe(value: str | int | float | None) -> str | int | float:
    v = _cell(value)
    if isinstance(v, str) and v.startswith(FORMULA_STARTS):
        return "'" + v
    return v


def excel_csv(header: Sequence[str], rows: Iterable[Row]) -> bytes:
    """CSV for a German Excel: BOM, semicolons, CRLF."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_safe(v) for v in row])
    return (BOM + buf.getvalue()).encode("utf-8")


def xlsx(sheet_name: str, header: Sequence[str], rows: Iterable[Row]) -> bytes:
    """One worksheet: a bold header row (frozen), the rows as text and numbers, columns wide enough to read."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    sheet = book.add_worksheet(sheet_name[:31])
    bold = book.add_format({"bold": True})
    sheet.write_row(0, 0, list(header), bold)
    sheet.freeze_panes(1, 0)
    widths = [len(h) for h in header]
    line = 1
    for row in rows:
        for col, value in enumerate(row):
            v = _cell(value)
            if isinstance(v, str):
                sheet.write_string(line, col, v)
            else:
                sheet.write_number(line, col, v)
            if col < len(widths):
                widths[col] = max(widths[col], len(str(v)))
        line += 1
    for col, width in enumerate(widths):
        sheet.set_column(col, col, min(width + 2, 60))
    book.close()
    return out.getvalue()
