"""The QR poster of a survey, print-ready as PDF (reportlab) and as SVG, in A4 and A3 portrait.

One layout, drawn in millimetres on A4 and scaled for A3, so both sizes look the same: the kicker "Umfrage", the
survey's title (wrapped, shrunk to fit at most four lines), the closing date, the QR code of the survey's public
link as vector squares (crisp at any print size, quiet zone of four modules, error correction Q so a scuffed poster
still scans), the link printed under the code in a large font for those who type it, and one line of how.

Fonts: civic's Fira Sans is vendored as WOFF2 for the pages, which reportlab cannot embed (it takes TrueType), so
the PDF uses the built-in Helvetica (every PDF reader has it; nothing to embed). The SVG names Fira Sans first and
falls back to Arial/Helvetica. Text widths are measured with Helvetica's metrics in both, which keeps lines inside
the margins for either font.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

import qrcode
from reportlab.lib.pagesizes import A3, A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas

from shared import qr

Size = Literal["a4", "a3"]
SIZES: dict[str, tuple[float, float]] = {"a4": A4, "a3": A3}

#: The layout on A4, in millimetres from the top-left corner.
WIDTH_MM, HEIGHT_MM = 210.0, 297.0
MARGIN = 18.0
QR_EDGE = 120.0
INK = "#1b1b1b"
ACCENT = "#1d4f91"
REGULAR, BOLD = "Helvetica", "Helvetica-Bold"
SVG_FONTS = "'Fira Sans', Arial, Helvetica, sans-serif"
PT_PER_MM = 72 / 25.4


@dataclass(frozen=True)
class Line:
    text: str
    x: float  # mm from the left; ``anchor`` says which end of the text it is
    y: float  # baseline, mm from the top
    size: float  # points
    bold: bool = False
    colour: str = INK
    anchor: Literal["start", "middle"] = "start"


@dataclass(frozen=True)
class Layout:
    lines: tuple[Line, ...]
    modules: tuple[tuple[bool, ...], ...]  # the QR code, quiet zone included
    qr_x: float
    qr_y: float
    qr_edge: float
    rule_y: float


def _width_mm(text: str, font: str, size: float) -> float:
    return float(stringWidth(text, font, size)) / PT_PER_MM


def wrap(text: str, font: str, size: float, width_mm: float) -> list[str]:
    """Words into lines no wider than ``width_mm``; a word longer than a line is cut."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        while _width_mm(word, font, size) > width_mm and len(word) > 1:
            cut = len(word)
            while cut > 1 and _width_mm(word[:cut], font, size) > width_mm:
                cut -= 1
            if current:
                lines.append(current)
                current = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{current} {word}".strip()
        if _width_mm(candidate, font, size) <= width_mm:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines or [""]


def _fit(text: str, font: str, sizes: Sequence[float], width_mm: float, most_lines: int) -> tuple[float, list[str]]:
    for size in sizes:
        lines = wrap(text, font, size, width_mm)
        if len(lines) <= most_lines:
            return size, lines
    size = sizes[-1]
    lines = wrap(text, font, size, width_mm)
    return size, [*lines[: most_lines - 1], lines[most_lines - 1].rstrip() + " …"]


def _fit_link(link: str, sizes: Sequence[float], width_mm: float) -> tuple[float, list[str]]:
    """The link as large as it fits: on one line, or else on two broken after a ``/`` (never inside a word)."""

    def broken(size: float) -> list[str]:
        lines = [""]
        for piece in re.split(r"(?<=/)", link):
            if lines[-1] and _width_mm(lines[-1] + piece, BOLD, size) > width_mm:
                lines.append("")
            lines[-1] += piece
        return lines

    for size in sizes:
        if _width_mm(link, BOLD, size) <= width_mm:
            return size, [link]
        lines = broken(size)
        if len(lines) <= 2 and all(_width_mm(line, BOLD, size) <= width_mm for line in lines):
            return size, lines
    return sizes[-1], broken(sizes[-1])


def qr_modules(url: str) -> tuple[tuple[bool, ...], ...]:
    code = qrcode.QRCode(error_correction=qr.LEVELS["Q"], border=qr.BORDER)
    code.add_data(url)
    code.make(fit=True)
    return tuple(tuple(bool(m) for m in row) for row in code.get_matrix())


def short_link(url: str) -> str:
    """The link as people type it: without ``https://`` and a trailing slash."""
    for prefix in ("https://", "http://"):
        if url.startswith(prefix):
            url = url[len(prefix) :]
    return url.rstrip("/")


def layout(*, title: str, url: str, closes: str, kicker: str, how: str, organiser: str = "") -> Layout:
    """Where everything goes on an A4 page (``closes`` is the closing line as printed, ``how`` the hint)."""
    inner = WIDTH_MM - 2 * MARGIN
    lines: list[Line] = []
    y = MARGIN + 8
    if organiser:
        lines.append(Line(organiser, MARGIN, y, 14, colour=ACCENT))
        y += 12
    lines.append(Line(kicker.upper(), MARGIN, y, 16, bold=True, colour=ACCENT))
    size, title_lines = _fit(title, BOLD, (40, 34, 28, 24), inner, 4)
    step = size / PT_PER_MM * 1.15
    y += 4 + step
    for text in title_lines:
        lines.append(Line(text, MARGIN, y, size, bold=True))
        y += step
    y += 2
    lines.append(Line(closes, MARGIN, y, 20))
    rule_y = y + 7
    qr_y = rule_y + 8
    link = short_link(url)
    link_size, link_lines = _fit_link(link, (26, 22, 18, 15, 12), inner)
    link_step = link_size / PT_PER_MM * 1.2
    how_size, how_lines = _fit(how, REGULAR, (16, 14, 12), inner, 3)
    how_step = how_size / PT_PER_MM * 1.3
    # Below the code: the link, a gap, the hint at the foot of the page. The code takes what is left, up to
    # QR_EDGE (a long title makes it smaller, never the text falling off the page).
    below = 4 + len(link_lines) * link_step + 8 + len(how_lines) * how_step
    edge = max(60.0, min(QR_EDGE, HEIGHT_MM - MARGIN - qr_y - below))
    qr_x = (WIDTH_MM - edge) / 2
    ly = qr_y + edge + 4 + link_size / PT_PER_MM
    for text in link_lines:
        lines.append(Line(text, WIDTH_MM / 2, ly, link_size, bold=True, anchor="middle"))
        ly += link_step
    hy = max(ly + 6, HEIGHT_MM - MARGIN - (len(how_lines) - 1) * how_step)
    for text in how_lines:
        lines.append(Line(text, WIDTH_MM / 2, hy, how_size, anchor="middle"))
        hy += how_step
    return Layout(tuple(lines), qr_modules(url), qr_x, qr_y, edge, rule_y)


def pdf(poster: Layout, size: Size, *, title: str, subject: str = "") -> bytes:
    """The poster as a one-page PDF in ``size``; its document title is the survey's."""
    page_w, page_h = SIZES[size]
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=(page_w, page_h), pageCompression=1)
    c.setTitle(title)
    c.setSubject(subject)
    c.setCreator("civic")
    scale = page_w / (WIDTH_MM * mm)
    c.scale(scale, scale)

    def top(y_mm: float) -> float:
        return float((HEIGHT_MM - y_mm) * mm)

    c.setStrokeColor(ACCENT)
    c.setLineWidth(1.2 * mm)
    c.line(MARGIN * mm, top(poster.rule_y), (WIDTH_MM - MARGIN) * mm, top(poster.rule_y))
    for line in poster.lines:
        c.setFillColor(line.colour)
        c.setFont(BOLD if line.bold else REGULAR, line.size)
        if line.anchor == "middle":
            c.drawCentredString(line.x * mm, top(line.y), line.text)
        else:
            c.drawString(line.x * mm, top(line.y), line.text)
    count = len(poster.modules)
    module = poster.qr_edge / count
    c.setFillColor("#ffffff")
    c.rect(poster.qr_x * mm, top(poster.qr_y + poster.qr_edge), poster.qr_edge * mm, poster.qr_edge * mm, 0, 1)
    c.setFillColor("#000000")
    for r, row in enumerate(poster.modules):
        # Runs of dark modules as one rectangle each: fewer objects, no hairline gaps between neighbours.
        start: int | None = None
        for col, dark in enumerate((*row, False)):
            if dark and start is None:
                start = col
            elif not dark and start is not None:
                x = poster.qr_x + start * module
                y = poster.qr_y + (r + 1) * module
                c.rect(x * mm, top(y), (col - start) * module * mm, module * mm, 0, 1)
                start = None
    c.showPage()
    c.save()
    return out.getvalue()


def svg(poster: Layout, size: Size, *, title: str) -> bytes:
    """The poster as SVG: millimetre user units on an A4 view box, the page size in ``width``/``height``."""
    page_w, page_h = SIZES[size]
    w_mm, h_mm = round(page_w / mm), round(page_h / mm)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w_mm}mm" height="{h_mm}mm" '
        f'viewBox="0 0 {WIDTH_MM:g} {HEIGHT_MM:g}" role="img" aria-labelledby="poster-title">',
        f'<title id="poster-title">{escape(title)}</title>',
        f'<rect width="{WIDTH_MM:g}" height="{HEIGHT_MM:g}" fill="#ffffff"/>',
        f'<line x1="{MARGIN:g}" y1="{poster.rule_y:.2f}" x2="{WIDTH_MM - MARGIN:g}" y2="{poster.rule_y:.2f}" '
        f'stroke="{ACCENT}" stroke-width="1.2"/>',
    ]
    for line in poster.lines:
        weight = ' font-weight="700"' if line.bold else ""
        anchor = ' text-anchor="middle"' if line.anchor == "middle" else ""
        parts.append(
            f'<text x="{line.x:.2f}" y="{line.y:.2f}" font-family="{SVG_FONTS}" '
            f'font-size="{line.size / PT_PER_MM:.2f}"{weight}{anchor} fill="{line.colour}">{escape(line.text)}</text>'
        )
    count = len(poster.modules)
    module = poster.qr_edge / count
    path: list[str] = []
    for r, row in enumerate(poster.modules):
        start: int | None = None
        for col, dark in enumerate((*row, False)):
            if dark and start is None:
                start = col
            elif not dark and start is not None:
                path.append(f"M{start} {r}h{col - start}v1h-{col - start}z")
                start = None
    parts.append(
        f'<g transform="translate({poster.qr_x:.3f} {poster.qr_y:.3f}) scale({module:.5f})">'
        f'<rect width="{count}" height="{count}" fill="#ffffff"/>'
        f'<path d="{"".join(path)}" fill="#000000" shape-rendering="crispEdges"/></g>'
    )
    parts.append("</svg>")
    return "\n".join(parts).encode()
