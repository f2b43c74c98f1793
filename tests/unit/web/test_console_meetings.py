"""The console's meeting page logic without HTTP: section forms to API bodies, API errors at the form's fields,
ids from texts, and the spreadsheets German Excel opens as they are."""

from __future__ import annotations

import io
import zipfile

from web.client import ApiProblem
from web.console import meeting_form as mf
from web.console import spreadsheets


def test_basics_read_into_the_create_body_with_berlin_wall_clock_times() -> None:
    form = {
        "title": [" Auftakt "],
        "description": [""],
        "starts_at": ["2026-12-10T18:00"],
        "ends_at": ["2026-12-10T20:00"],
    }
    read = mf.read_section(mf.SECTIONS["grunddaten"], form, "de")
    assert not read.errors
    assert read.body == {
        "title": "Auftakt",
        "description": "",
        "starts_at": "2026-12-10T18:00",
        "ends_at": "2026-12-10T20:00",
    }


def test_the_pages_own_checks_name_each_field() -> None:
    form = {"title": [""], "starts_at": ["morgen"], "ends_at": [""]}
    read = mf.read_section(mf.SECTIONS["grunddaten"], form, "de")
    assert [f.name for f in read.errors.fields] == ["title", "starts_at", "ends_at"]
    assert read.errors.of("starts_at") == "Bitte geben Sie Beginn als Datum mit Uhrzeit an."
    seats = mf.read_section(mf.SECTIONS["anmeldung"], {"capacity": ["zwanzig"], "max_companions": [""]}, "en")
    assert seats.errors.of("capacity") == "Please enter Seats as a whole number."
    assert seats.body["max_companions"] == 0 and seats.body["waitlist"] is False


def test_an_empty_venue_is_none_and_a_venue_needs_its_name() -> None:
    empty = mf.read_section(mf.SECTIONS["ort"], {}, "de")
    assert empty.body == {"venue": None} and not empty.errors
    nameless = mf.read_section(mf.SECTIONS["ort"], {"venue.city": ["Heide"]}, "de")
    assert nameless.errors.of("venue.name") == "Bitte geben Sie den Namen des Ortes an."


def test_a_meeting_with_slots_sends_no_capacity() -> None:
    read = mf.read_section(mf.SECTIONS["anmeldung"], {"capacity": ["5"]}, "de", has_slots=True)
    assert "capacity" not in read.body


def test_api_times_become_berlin_field_values() -> None:
    assert mf.local_input("2026-12-10T17:00:00+00:00") == "2026-12-10T18:00"
    assert mf.local_input("2026-07-10T17:00:00+00:00") == "2026-07-10T19:00"
    assert mf.local_input(None) == ""


def test_ids_from_texts_are_plain_and_unique() -> None:
    assert mf.slug_of("Größe der Gruppe?", []) == "groesse-der-gruppe"
    assert mf.slug_of("Größe der Gruppe?", ["groesse-der-gruppe"]) == "groesse-der-gruppe-2"
    assert mf.slug_of("???", []) == "frage"


def test_a_new_list_items_api_errors_land_at_the_add_forms_fields() -> None:
    problem = ApiProblem(
        422,
        "https://civic.example/problems/validation",
        errors=[{"pointer": "/questions/2/options", "code": "too_short"}],
    )
    errors = mf.api_errors(problem, mf.QUESTION_LABELS, "de", item="questions/2", order=list(mf.QUESTION_LABELS))
    assert errors.of("options") == "Bitte geben Sie mindestens zwei Antwortmöglichkeiten an, eine je Zeile."
    outside = ApiProblem(422, "validation", errors=[{"pointer": "/slots/0", "code": "range"}])
    slot = mf.api_errors(outside, mf.SLOT_LABELS, "de", item="slots/0")
    assert slot.of("starts_at") == "Das Zeitfenster muss innerhalb der Veranstaltung liegen."


def test_order_errors_read_as_sentences() -> None:
    problem = ApiProblem(422, "validation", errors=[{"pointer": "/ends_at", "code": "order"}])
    labels = mf.SECTIONS["grunddaten"].labels
    assert mf.api_errors(problem, labels, "de").of("ends_at") == "Das Ende muss nach dem Beginn liegen."
    assert mf.api_errors(problem, labels, "en").of("ends_at") == "The end must be after the start."


def test_csv_for_german_excel() -> None:
    data = spreadsheets.excel_csv(["Name", "Ort"], [["Jürgen Süß", "Heide; Markt"], ["=HYPERLINK(1)", None]])
    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text == 'Name;Ort\r\nJürgen Süß;"Heide; Markt"\r\n\'=HYPERLINK(1);\r\n'


def test_xlsx_is_a_workbook_with_the_rows() -> None:
    data = spreadsheets.xlsx("Anmeldungen", ["Name", "Plätze"], [["Jürgen", 2], ["=1+1", None]])
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        assert "xl/worksheets/sheet1.xml" in book.namelist()
        strings = book.read("xl/sharedStrings.xml").decode()
    assert "Jürgen" in strings and "=1+1" in strings, "formulas stay text"
