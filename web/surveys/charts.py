"""Bar charts of survey results as SVG, drawn on the server (no chart library in the browser).

The SVG only repeats the table printed beside it (the text equivalent), so it is hidden from assistive
technology. Colours and sizes are presentation attributes, not ``style``: the pages' Content-Security-Policy
allows no inline styles. Bars are a dark blue on white (over 3:1, WCAG 1.4.11); the numbers are written
next to each bar, so nothing is told by colour or length alone.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 640
LABEL_SIZE = 16
LINE = 20
BAR = 22
GAP = 14
BAR_COLOUR = "#1d4f91"
TEXT_COLOUR = "#1b1b1b"
TRACK_COLOUR = "#e8ecf2"
#: Characters per label line at LABEL_SIZE in the chart's width.
WRAP = 64


@dataclass(frozen=True)
class Bar:
    label: str
    count: int


def share(count: int, total: int) -> float:
    return count / total if total else 0.0


def bar_chart(bars: Sequence[Bar], total: int, number: Callable[[float], str]) -> Markup:
    """One horizontal bar per entry, ``total`` being 100 %; ``number`` formats a share (0..1) for the label."""
    y = 0
    parts: list[str] = []
    value_width = 130
    track = WIDTH - value_width
    for b in bars:
        for line in textwrap.wrap(b.label, WRAP) or [""]:
            y += LINE
            parts.append(f'<text x="0" y="{y - 4}" font-size="{LABEL_SIZE}" fill="{TEXT_COLOUR}">{escape(line)}</text>')
        y += 4
        width = round(track * share(b.count, total))
        parts.append(f'<rect x="0" y="{y}" width="{track}" height="{BAR}" fill="{TRACK_COLOUR}"/>')
        if width:
            parts.append(f'<rect x="0" y="{y}" width="{width}" height="{BAR}" fill="{BAR_COLOUR}"/>')
        parts.append(
            f'<text x="{track + 8}" y="{y + BAR - 5}" font-size="{LABEL_SIZE}" fill="{TEXT_COLOUR}">'
            f"{escape(str(b.count))} ({escape(number(share(b.count, total)))})</text>"
        )
        y += BAR + GAP
    height = max(y, 1)
    return Markup(
        f'<svg class="survey-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" aria-hidden="true" focusable="false">{"".join(parts)}</svg>'
    )
