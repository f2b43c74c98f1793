"""Markdown is rendered, and nothing that could run in a browser survives."""

from __future__ import annotations

import pytest

from services.content.markdown import render_markdown, render_text


def test_markdown_renders() -> None:
    source = "# Schritt 1.1\n\n**Digitalisierungsstrategie** [mehr](https://example.org/a)\n\n- eins\n- zwei"
    html = render_markdown(source)
    assert "<h1>Schritt 1.1</h1>" in html
    assert "<strong>Digitalisierungsstrategie</strong>" in html
    assert '<a href="https://example.org/a" rel="noopener noreferrer nofollow">mehr</a>' in html
    assert "<li>zwei</li>" in html


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("Hallo <script>alert(1)</script> Welt", ["<script", "alert(1)"]),
        ("<script>\nalert(1)\n</script>", ["<script", "alert"]),
        ('<img src="x.png" onerror="alert(1)">', ["onerror", "alert"]),
        ('<a href="#" onclick="steal()">x</a>', ["onclick", "steal"]),
        ("[klick](javascript:alert(1))", ['href="javascript']),
        ('<a href="javascript:alert(1)">klick</a>', ["javascript:"]),
        ('<a href="JaVaScRiPt:alert(1)">klick</a>', ["javascript:", "JaVaScRiPt:"]),
        ('<a href="&#106;avascript:alert(1)">x</a>', ["avascript:"]),
        ('<iframe src="https://evil.example"></iframe>', ["<iframe"]),
        ('<svg onload="alert(1)"></svg>', ["<svg", "onload"]),
        ("![x](data:text/html;base64,PHNjcmlwdD4=)", ['src="data:']),
        ('<img src="data:text/html;base64,PHNjcmlwdD4=">', ['src="data:']),
        ('<p style="background:url(javascript:alert(1))">x</p>', ["style", "javascript"]),
    ],
)
def test_dangerous_html_is_removed(source: str, forbidden: list[str]) -> None:
    html = render_markdown(source)
    for bad in forbidden:
        assert bad.lower() not in html.lower(), html


def test_harmless_text_next_to_a_script_survives() -> None:
    html = render_markdown("Hallo <script>alert(1)</script> Welt")
    assert "Hallo" in html and "Welt" in html


def test_each_language_is_rendered() -> None:
    out = render_text({"de": "*Hallo*", "en": "*Hello*"})
    assert out == {"de": "<p><em>Hallo</em></p>", "en": "<p><em>Hello</em></p>"}
    assert render_text(None) is None
