"""How the learner's and supervisor's pages read and show hours (services/web/hours_view.py)
and make the transcript PDF: whole minutes both ways, weeks, the timesheet's commands."""

from __future__ import annotations

import re
import zlib
from datetime import date

import pytest

from services.web.api_client import Refused
from services.web.hours_view import (
    TimesheetDay,
    entry_body,
    hm,
    parse_hm,
    read_timesheet,
    refusal_fields,
    timesheet_days,
    weekly_bars,
)
from services.web.transcript_pdf import latin1, transcript_pdf

MONDAY = date(2027, 2, 1)


def test_minutes_are_shown_and_read_as_h_mm_never_as_decimals() -> None:
    assert [hm(m) for m in (0, 5, 60, 450, 1440, 120_000)] == [
        "0:00", "0:05", "1:00", "7:30", "24:00", "2000:00"]
    assert hm(None) == "\u2013"
    assert [parse_hm(t) for t in ("7:30", "8", " 0:45 ", "25:00")] == [450, 480, 45, 1500]
    for bad in ("7.5", "7,5", "7:75", "-1:00", "", "1:5"):
        with pytest.raises(ValueError):
            parse_hm(bad)


def _day() -> list[TimesheetDay]:
    return timesheet_days(MONDAY, [], opens=date(2027, 1, 11), ends=date(2027, 5, 21),
                          now=date(2027, 2, 4))


def test_the_week_closes_days_in_the_future_and_outside_the_placement() -> None:
    days = timesheet_days(MONDAY, [], opens=date(2027, 2, 2), ends=date(2027, 2, 3),
                          now=date(2027, 2, 4))
    assert [d.closed for d in days] == [
        "before the placement started", None, None, "after the placement ended",
        "in the future", "in the future", "in the future"]


def test_each_filled_day_is_one_command_and_empty_days_are_left_out() -> None:
    form = {"d0-kind": "on_the_job", "d0-start_time": "13:00", "d0-end_time": "17:00",
            "d0-time": "", "d0-wp0": "180", "d0-wp1": "",
            "d1-kind": "related_instruction", "d1-time": "2:30",
            "d2-kind": "on_the_job", "d2-time": "", "d2-start_time": "", "d2-end_time": ""}
    asked = read_timesheet(form, _day(), ["Wiring", "Safety"])
    assert not asked.errors
    assert [(row.index, body) for row, body in asked.commands] == [
        (0, {"kind": "on_the_job", "start_time": "13:00", "end_time": "17:00",
             "minutes": 240, "allocations": {"Wiring": 180}, "work_date": "2027-02-01"}),
        (1, {"kind": "related_instruction", "minutes": 150, "work_date": "2027-02-02"})]


def test_what_cannot_become_a_command_is_refused_beside_its_field() -> None:
    asked = read_timesheet({"d0-time": "7.5", "d1-time": "1:00", "d1-wp0": "1.5"},
                           _day(), ["Wiring"])
    assert asked.errors == {
        "d0-time": ("not-h-mm", "Write the time as hours and minutes, e.g. 7:30 (no "
                    "decimals)."),
        "d1-wp0": ("not-whole-minutes", "Allocate whole minutes, e.g. 90.")}
    assert read_timesheet({}, _day(), []).errors["form"][0] == "nothing-to-log"
    # a time typed on a closed day is not sent at all
    closed = read_timesheet({"d6-time": "1:00"}, _day(), [])
    assert not closed.commands and "form" in closed.errors


def test_minutes_are_left_to_the_api_when_neither_time_nor_span_is_given() -> None:
    body, errors = entry_body({"start_time": "09:00"}, [])
    assert body == {"kind": "on_the_job", "start_time": "09:00"} and not errors


def test_refusals_land_beside_the_field_they_name() -> None:
    rule = Refused(422, {"type": "/errors/overlapping-entry", "detail": "Overlaps.",
                         "field": "start_time"})
    assert refusal_fields(rule, "d2-", fallback="d2-day") == {
        "d2-start_time": ("overlapping-entry", "Overlaps.")}
    too_long = Refused(422, {"type": "/errors/invalid-request", "detail": "x", "errors": [
        {"field": "minutes", "kind": "less_than_equal", "message": "Input should be ..."}]})
    assert refusal_fields(too_long, "d0-") == {"d0-time": (
        "less_than_equal", "A day has 24 hours: one entry is at most 24:00.")}
    elsewhere = Refused(404, {"type": "/errors/unknown-placement", "detail": "No."})
    assert refusal_fields(elsewhere) == {"form": ("unknown-placement", "No.")}


def test_the_chart_counts_approved_and_pending_per_week_and_keeps_empty_weeks() -> None:
    entries = [
        {"work_date": "2027-02-01", "minutes": 240, "kind": "on_the_job", "status": "approved"},
        {"work_date": "2027-02-03", "minutes": 120, "kind": "related_instruction",
         "status": "approved"},
        {"work_date": "2027-02-04", "minutes": 60, "kind": "on_the_job", "status": "logged"},
        {"work_date": "2027-02-05", "minutes": 500, "kind": "on_the_job", "status": "rejected"},
        {"work_date": "2027-02-16", "minutes": 30, "kind": "on_the_job", "status": "approved"},
    ]
    bars = weekly_bars(entries, first=date(2027, 1, 27), last=date(2027, 2, 17))
    assert [(b.monday, b.on_the_job, b.related_instruction, b.pending) for b in bars] == [
        (date(2027, 2, 15), 30, 0, 0), (date(2027, 2, 8), 0, 0, 0),
        (date(2027, 2, 1), 240, 120, 60), (date(2027, 1, 25), 0, 0, 0)]
    assert bars[2].width(bars[2].approved) == 85 and bars[2].width(60) == 14


def test_the_transcript_pdf_is_made_from_the_experiences() -> None:
    experience = {"title": "Electrical apprentice", "employer_name": "Acme Électrique",
                  "wbl_type_label": "Apprenticeship", "first_day": "2027-01-11",
                  "last_day": "2027-05-21", "approved_minutes": 6150,
                  "status_label": "In progress", "course_code": "WBL",
                  "notation": "WBL-APPR | Acme | 102.5 h", "credentials": [
                      {"kind": "Fieldwork", "issuer": "District 42", "issued_on": "2027-05-21",
                       "status": "in force"}]}
    pdf = transcript_pdf("lrn-\u0141ukasz", [experience], date(2027, 6, 1))
    assert pdf.startswith(b"%PDF-") and b"Work-based learning transcript" in pdf
    assert transcript_pdf("lrn-1", [experience], date(2027, 6, 1)) == transcript_pdf(
        "lrn-1", [experience], date(2027, 6, 1))
    text = b"".join(zlib.decompress(stream) for stream in re.findall(
        rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S))
    assert b"102:30" in text and b"lectrique" in text and b"?ukasz" in text
    assert b"102.5" not in text  # hours as h:mm, never a decimal
    assert latin1("\u0141ukasz \u2013 Acme \u00c9") == "?ukasz - Acme \u00c9"
