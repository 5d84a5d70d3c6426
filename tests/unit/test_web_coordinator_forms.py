"""How the coordinator's forms become API requests, and how the API's refusals find their
fields again (services/web/routes/coordinator.py)."""

from __future__ import annotations

from services.web.api_client import Refused
from services.web.routes.coordinator import (
    BREAK_FIELDS,
    OPPORTUNITY_FIELDS,
    _errors_of,
    _opportunity_body,
    _opportunity_values,
    hours,
)


def test_an_opportunity_form_sends_what_was_typed_and_leaves_out_empty_options() -> None:
    form = {"title": "Intern", "employer_name": "Acme", "worksite": "Main St",
            "wbl_type": "PaidInternship", "paid": "on", "hourly_wage": " 16.50 ",
            "capacity": "", "starts_on": "2027-01-11", "ends_on": "2027-01-10",
            "minimum_age": "", "form_id": "x"}
    assert _opportunity_body(form) == {
        "title": "Intern", "employer_name": "Acme", "worksite": "Main St",
        "wbl_type": "PaidInternship", "pre_apprenticeship": False, "paid": True,
        "hourly_wage": "16.50", "starts_on": "2027-01-11", "ends_on": "2027-01-10",
        "hazardous": False}


def test_an_opportunity_read_back_fills_the_form() -> None:
    values = _opportunity_values({"title": "Intern", "paid": True, "hazardous": False,
                                  "hourly_wage": "16.50", "capacity": 2, "minimum_age": None})
    assert values == {"title": "Intern", "paid": "on", "hourly_wage": "16.50",
                      "capacity": "2"}
    assert set(values) <= set(OPPORTUNITY_FIELDS)


def test_a_domain_refusal_lands_beside_its_field() -> None:
    refused = Refused(422, {"type": "/errors/dates-reversed", "detail": "Ends before it "
                            "starts.", "field": "ends_on"})
    errors, banner = _errors_of(refused, {"ends_on": "ends_on"})
    assert errors == {"ends_on": ("dates-reversed", "Ends before it starts.")}
    assert banner is None


def test_validation_refusals_keep_their_kind_and_unknown_fields_go_to_the_banner() -> None:
    refused = Refused(422, {"type": "/errors/invalid-request", "detail": "x", "errors": [
        {"field": "body.capacity", "kind": "int_parsing", "message": "Not a number"},
        {"field": "body.organisation_id", "kind": "missing", "message": "Required"}]})
    errors, banner = _errors_of(refused, {"capacity": "capacity"})
    assert errors == {"capacity": ("int_parsing", "Not a number")}
    assert banner == ("missing", "Required")


def test_a_break_refused_by_its_place_in_the_list_lands_on_the_new_break() -> None:
    refused = Refused(422, {"type": "/errors/break-outside-school-year", "detail": "Outside.",
                            "field": "breaks.3"})
    errors, banner = _errors_of(refused, BREAK_FIELDS)
    assert errors == {"break_first_day": ("break-outside-school-year", "Outside.")}
    assert banner is None


def test_a_refusal_without_a_field_is_the_banner() -> None:
    refused = Refused(409, {"type": "/errors/opportunity-closed", "detail": "Closed."})
    assert _errors_of(refused, {"reason": "reason"}) == ({}, ("opportunity-closed",
                                                              "Closed."))


def test_minutes_show_as_exact_hours() -> None:
    assert [hours(m) for m in (0, 59, 61, 270, -30, None)] == [
        "0:00", "0:59", "1:01", "4:30", "-0:30", "-"]
