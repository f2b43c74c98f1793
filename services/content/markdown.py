"""Markdown to safe HTML: markdown-it-py renders, nh3 (ammonia) removes whatever could run in a browser."""

from __future__ import annotations

from collections.abc import Mapping

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)

_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "ol": {"start"},
    "td": {"align"},
    "th": {"align"},
}
# No javascript:, data: or vbscript: URLs; relative links stay allowed.
_SCHEMES = {"http", "https", "mailto", "tel"}


def render_markdown(source: str) -> str:
    """Render Markdown (raw HTML allowed in the source) and keep only harmless tags, attributes and URLs."""
    html = _md.render(source or "")
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    ).strip()


def render_text(source: Mapping[str, str | None] | None) -> dict[str, str] | None:
    """Render each language of a ``{de, en}`` Markdown text."""
    if source is None:
        return None
    return {lang: render_markdown(text) for lang, text in source.items() if text is not None}
