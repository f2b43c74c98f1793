"""The console's survey pages against the real services (PostgreSQL, Redis, the bus), signed in with the local
sign-in as staff: create a letter-code survey through the pages with several kinds of question, a display condition
and a second section, see the page's own and the API's refusals, publish it, download the poster as PDF (its text
read with pdftotext, page 1 rendered with pdftoppm and its QR code decoded) and SVG, generate letter codes as a
mail-merge CSV, answer with those codes, read the live results with their charts and the free texts page by page,
export CSV and XLSX; and a ``checkin`` person is refused every one of these pages."""

from __future__ import annotations

import csv
import html
import io
import re
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.console_support import sign_in_locally
from tests.integration.web.test_console_meetings import BASE, Console, console, local  # noqa: F401
from tests.qr import decode_png
from web.console import surveys as console_surveys

POPPLER = shutil.which("pdftoppm") and shutil.which("pdftotext")


class SurveyConsole(Console):
    """The meeting test's console, whose pages here may load the question form's script file (never inline)."""

    async def page(self, path: str, status: int = 200) -> str:
        r = await self.web.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:1500])
        assert r.headers["content-type"].startswith("text/html")
        assert not re.search(r"<script(?![^>]*\ssrc=)", r.text) and 'style="' not in r.text, "no inline script or style"
        return r.text


@pytest.fixture
def surveys(console: Console) -> SurveyConsole:  # noqa: F811
    return SurveyConsole(console.api, console.web, console.tenant, console.clock)


def survey_base(c: Console) -> str:
    return f"/verwaltung/{c.tenant}/umfragen"


async def staff_survey(c: Console, survey_id: str) -> dict[str, Any]:
    from tests.support import staff_headers

    r = await c.api.get(f"/api/surveys/surveys/{survey_id}", headers=staff_headers(c.tenant, "staff"))
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def pdf_text(data: bytes, tmp: Path) -> str:
    (tmp / "poster.pdf").write_bytes(data)
    return subprocess.run(
        ["pdftotext", "-layout", str(tmp / "poster.pdf"), "-"], check=True, capture_output=True, text=True
    ).stdout


def pdf_page_png(data: bytes, tmp: Path, dpi: int = 100) -> bytes:
    (tmp / "poster.pdf").write_bytes(data)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            str(dpi),
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(tmp / "poster.pdf"),
            str(tmp / "p"),
        ],
        check=True,
    )
    return (tmp / "p.png").read_bytes()


@pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftoppm, pdftotext) is not installed")
async def test_survey_from_creation_to_poster_codes_results_and_export(
    surveys: SurveyConsole, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = surveys
    base = survey_base(c)
    await sign_in_locally(c.web, c.tenant, "staff", name="Sachbearbeitung Test")
    listing = await c.page(base)
    assert "Neue Umfrage" in listing and "Noch keine Umfragen." in listing

    opens = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    closes = opens + timedelta(days=30)
    first = {
        "title": "Online-Dienste im Kreis",
        "introduction": "Wie nutzen Sie die Online-Dienste des Kreises?",
        "estimated_minutes": "5",
        "opens_at": local(opens),
        "closes_at": local(closes),
        "access": "token",
        "text": "Nutzen Sie Online-Dienste?",
        "kind": "single_choice",
        "options": "Ja, oft\nManchmal\nNie",
        "required": "on",
    }
    # The page's own checks, each in the error summary linking to its field; what was entered is kept.
    refused = await c.send(f"{base}/neu", {**first, "title": "", "options": "Nur eine"}, status=422)
    assert "<title>Fehler:" in refused.text and 'href="#title"' in refused.text
    assert "Bitte geben Sie einen Titel an." in refused.text
    assert 'href="#options"' in refused.text and "mindestens zwei Antwortmöglichkeiten" in refused.text
    assert "Wie nutzen Sie die Online-Dienste des Kreises?" in refused.text
    backwards = await c.send(f"{base}/neu", {**first, "closes_at": local(opens - timedelta(days=1))}, status=422)
    assert 'href="#closes_at"' in backwards.text and "Das Ende muss nach dem Beginn liegen." in backwards.text

    created = await c.send(f"{base}/neu", first)
    location = created.headers["location"]
    assert location.startswith(f"{base}/") and location.endswith("?hinweis=angelegt")
    survey_id = location.split("/")[-1].split("?")[0]
    page = await c.page(location)
    assert "als Entwurf angelegt" in page and "Nutzen Sie Online-Dienste?" in page

    q1 = "nutzen-sie-online-dienste"
    more: list[dict[str, str]] = [
        {
            "text": "Welche Dienste nutzen Sie?",
            "kind": "multiple_choice",
            "options": "Kfz-Zulassung\nWohngeld\nBauantrag",
            "max_selections": "2",
            "condition": f"{q1}:ja-oft",
        },
        {"text": "Haben Sie ein Bürgerkonto?", "kind": "yes_no"},
        {
            "text": "Wie zufrieden sind Sie?",
            "kind": "scale",
            "min": "1",
            "max": "5",
            "section": "neu",
            "section_title": "Zufriedenheit",
        },
        {"text": "Was sollte besser werden?", "kind": "free_text", "max_length": "500"},
        {"text": "Wie viele Anträge im Jahr?", "kind": "number", "min": "0", "max": "100", "integer": "on"},
        {"text": "Was ist Ihnen am wichtigsten?", "kind": "ranking", "options": "Schnelligkeit\nEinfachheit\nHilfe"},
        {"text": "Wie bewerten Sie", "kind": "matrix", "min": "1", "max": "3", "rows": "Website\nTelefon"},
    ]
    add = f"{base}/{survey_id}/fragen/neu"
    # A scale without its bounds, and a new section without a title: refused at the fields.
    bad = await c.send(add, {"text": "Skala", "kind": "scale", "section": "neu"}, status=422)
    assert 'href="#min"' in bad.text and 'href="#section_title"' in bad.text
    for fields in more:
        answer = await c.send(add, fields)
        assert answer.headers["location"].startswith(f"{base}/{survey_id}?hinweis=gespeichert")
    s = await staff_survey(c, survey_id)
    assert [x.get("title", "") for x in s["sections"]] == ["", "Zufriedenheit"]
    questions = [q for x in s["sections"] for q in x["questions"]]
    assert [q["kind"] for q in questions] == [
        "single_choice", "multiple_choice", "yes_no", "scale", "free_text", "number", "ranking", "matrix",
    ]  # fmt: skip
    assert questions[1]["condition"] == {"question": q1, "any_of": ["ja-oft"]}
    assert questions[1]["max_selections"] == 2 and questions[3]["min"] == 1 and questions[3]["max"] == 5
    overview = await c.page(f"{base}/{survey_id}")
    assert "Nur zeigen, wenn „Nutzen Sie Online-Dienste?“ ist „Ja, oft“" in overview

    # Changing a question keeps its id and the ids of options kept; the condition can be changed there too.
    multi = f"{base}/{survey_id}/fragen/{questions[1]['id']}"
    form = await c.page(multi)
    assert 'value="nutzen-sie-online-dienste:ja-oft" checked' in form
    await c.send(multi, {**more[0], "condition": [f"{q1}:ja-oft", f"{q1}:manchmal"]})  # type: ignore[dict-item]
    s = await staff_survey(c, survey_id)
    assert s["sections"][0]["questions"][1]["condition"]["any_of"] == ["ja-oft", "manchmal"]
    # A question others depend on is not removed.
    refusal = await c.page(f"{base}/{survey_id}/fragen/{q1}/entfernen")
    assert "Diese Frage kann nicht entfernt werden" in refusal

    # Publishing: a confirmation page, then a POST; the edit pages then lead back to the survey.
    confirm = await c.page(f"{base}/{survey_id}/veroeffentlichen")
    assert "Danach lassen sich Fragen und Zeitraum nicht mehr ändern." in confirm
    published = await c.send(f"{base}/{survey_id}/veroeffentlichen", {})
    assert published.headers["location"].endswith("?hinweis=veroeffentlicht")
    page = await c.page(published.headers["location"])
    assert "Die Umfrage ist veröffentlicht." in page and "plakat-a4.pdf" in page and "zugangscodes" in page
    frozen = await c.web.get(f"{base}/{survey_id}/grunddaten")
    assert frozen.status_code == 303 and frozen.headers["location"] == f"{base}/{survey_id}"
    s = await staff_survey(c, survey_id)
    url = s["url"]
    assert s["slug"] == "online-dienste-im-kreis" and url == f"{BASE}/umfrage/{c.tenant}/{s['slug']}"

    # The poster: a PDF with the title, the closing date and the link in words, and a QR code of the link.
    for size in ("a4", "a3"):
        r = await c.web.get(f"{base}/{survey_id}/plakat-{size}.pdf")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF-") and "attachment" in r.headers["content-disposition"]
        text = pdf_text(r.content, tmp_path)
        assert "Online-Dienste im Kreis" in text and "Mitmachen bis" in text
        assert f"civic.test/umfrage/{c.tenant}/online-dienste-im-kreis" in "".join(text.split())
        assert decode_png(pdf_page_png(r.content, tmp_path)) == url, size
    svg = await c.web.get(f"{base}/{survey_id}/plakat-a3.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert 'width="297mm" height="420mm"' in svg.text and "Online-Dienste im Kreis" in svg.text
    assert (await c.web.get(f"{base}/{survey_id}/plakat-a5.pdf")).status_code == 404

    # Letter codes: a CSV for a mail merge (BOM, semicolons), one code and its personal link per row.
    refused = await c.send(f"{base}/{survey_id}/zugangscodes", {"count": "0"}, status=422)
    assert 'href="#count"' in refused.text
    codes = await c.send(f"{base}/{survey_id}/zugangscodes", {"count": "4"}, status=200)
    assert codes.headers["content-type"].startswith("text/csv") and codes.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(codes.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Zugangscode", "Persönlicher Link"] and len(rows) == 5
    letter = {code: link for code, link in rows[1:]}
    for code, link in letter.items():
        assert link == f"{url}?zugangscode={code}"
    first_code, first_link = rows[1]
    landing = await c.web.get(first_link.removeprefix(BASE))
    assert landing.status_code == 200 and f'value="{first_code}"' in landing.text, "the letter's link fills the code in"

    # Three people answer with their letters' codes.
    ids = [q["id"] for q in questions]
    answers = [
        {ids[0]: "ja-oft", ids[1]: ["kfz-zulassung", "wohngeld"], ids[2]: True, ids[3]: 5, ids[4]: "Mehr online"},
        {ids[0]: "manchmal", ids[1]: ["bauantrag"], ids[2]: False, ids[3]: 3, ids[4]: "Längere Öffnungszeiten"},
        {ids[0]: "nie", ids[2]: False, ids[3]: 2, ids[4]: "Weniger Papier", ids[5]: 3},
    ]
    for code, a in zip(list(letter)[1:], answers, strict=True):
        r = await c.api.post(
            f"/api/surveys/public/{c.tenant}/{s['slug']}/responses", json={"answers": a, "token": code}
        )
        assert r.status_code == 201, r.text

    listing = await c.page(base)
    assert "Online-Dienste im Kreis" in listing and "Läuft" in listing
    english = await c.page(f"{base}/{survey_id}?lang=en")
    assert "Poster with QR code" in english and "Download the responses" in english and "Open" in english
    results = await c.page(f"{base}/{survey_id}/ergebnisse")
    assert "3 Personen haben teilgenommen." in results
    assert results.count('<svg class="survey-chart"') >= 4, "bars for single, multiple, yes/no and scale"
    assert "Kfz-Zulassung" in results and "Durchschnitt: 3,3" in results

    # Free texts a page at a time.
    monkeypatch.setattr(console_surveys, "TEXTS_PER_PAGE", 2)
    texts_path = f"{base}/{survey_id}/ergebnisse/{ids[4]}/texte"
    first_page = await c.page(texts_path)
    assert first_page.count('<li class="civic-console-item">') == 2 and 'rel="next"' in first_page
    after = first_page.split("?nach=")[1].split('"')[0]
    second_page = await c.page(f"{texts_path}?nach={after}")
    assert second_page.count('<li class="civic-console-item">') == 1 and 'rel="next"' not in second_page
    seen = first_page + second_page
    assert all(t in seen for t in ("Mehr online", "Längere Öffnungszeiten", "Weniger Papier"))

    # A text that names someone is removed after a confirmation that shows it; the figures stay consistent.
    remove_link = re.search(r'href="([^"]+/entfernen[^"]*)"', second_page)
    assert remove_link is not None
    confirm = await c.page(html.unescape(remove_link.group(1)))
    quoted = re.search(r"<blockquote[^>]*>(.*?)</blockquote>", confirm, re.S)
    assert "Nur dieser Text" in confirm and quoted is not None
    gone = html.unescape(quoted.group(1)).strip()
    kept = {"Mehr online", "Längere Öffnungszeiten", "Weniger Papier"} - {gone}
    assert len(kept) == 2, gone
    target = html.unescape(remove_link.group(1))
    removed = await c.send(target, {"scope": "text", "reason": "nennt eine Person"}, action=target.split("?")[0])
    after_removal = await c.page(removed.headers["location"])
    assert "Der Text ist entfernt." in after_removal
    monkeypatch.setattr(console_surveys, "TEXTS_PER_PAGE", 20)
    assert (await c.page(texts_path)).count('<li class="civic-console-item">') == 2
    assert "3 Personen haben teilgenommen." in await c.page(f"{base}/{survey_id}/ergebnisse")

    # Export: CSV as German Excel opens it, and XLSX.
    exported = await c.web.get(f"{base}/{survey_id}/antworten.csv")
    assert exported.status_code == 200 and exported.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")), delimiter=";"))
    assert len(table) == 4 and len(table[0]) > 5
    content = exported.content.decode("utf-8-sig")
    assert all(text in content for text in kept) and gone not in content, "the removed text is gone from the export"
    xlsx = await c.web.get(f"{base}/{survey_id}/antworten.xlsx")
    assert xlsx.status_code == 200 and "xl/workbook.xml" in zipfile.ZipFile(io.BytesIO(xlsx.content)).namelist()


async def test_checkin_person_is_refused_every_survey_page(console: Console) -> None:  # noqa: F811
    c = console
    from tests.support import staff_headers

    body = {
        "title": "Nur für Staff",
        "opens_at": datetime.now(UTC).isoformat(),
        "closes_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        "sections": [{"id": "s1", "questions": [{"id": "q", "kind": "yes_no", "text": "Ja?"}]}],
    }
    r = await c.api.post("/api/surveys/surveys", json=body, headers=staff_headers(c.tenant, "staff"))
    assert r.status_code == 201, r.text
    survey_id = r.json()["id"]
    await sign_in_locally(c.web, c.tenant, "checkin", name="Einlass Test")
    base = survey_base(c)
    for path in (
        base,
        f"{base}/neu",
        f"{base}/{survey_id}",
        f"{base}/{survey_id}/plakat-a4.pdf",
        f"{base}/{survey_id}/ergebnisse",
        f"{base}/{survey_id}/antworten.csv",
    ):
        answer = await c.web.get(path)
        assert answer.status_code == 403, (path, answer.status_code)
        assert "Nur für Staff" not in answer.text
