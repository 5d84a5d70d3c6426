"""The authorisation matrix: every role (and an unrelated actor of each role) against every
endpoint, each cell asserted on its own.

The expectations are written out here by hand, not derived from `services/api/authz.py`,
so a change to the rules table shows up as a failing cell. Each cell is one of:

- ``ALLOW``: not refused by authorisation (the command may still break a domain rule or
  meet a wrong state: any answer but 401, an authorisation 403, or a hiding 404);
- ``403``: refused with 403 ``role-not-permitted`` / ``not-your-record``;
- ``404``: the record is hidden: the same 404 ``unknown-placement`` an unknown id gets.

Refused cells also check that nothing was stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute

from services.api.app import create_app
from services.api.authz import AUTHZ_CODES, RULES, endpoint_key
from tests.integration.test_api_world import (
    ACTORS,
    PROGRAM,
    STARTS,
    World,
    opportunity_body,
    shared_world,
    world,
)

__all__ = ["shared_world", "world"]

ALLOW, DENY, HIDE = "allow", 403, 404
ALL = set(ACTORS)

PartyFor = {"learner": "learner", "supervisor": "employer", "coord_a": "coordinator",
            "guardian": "guardian", "admin": "coordinator"}


ISSUER = "00000000-0000-5000-8000-000000000000"  # an issuer that never issued here
PUBLIC_ENDPOINTS = {"health", "issuer_profile", "issuer_did_document", "issuer_status_list",
                    "credential_keys", "verify_credential"}


def _p(w: World) -> str:
    return f"/placements/{w.placement_id}"


_day = [100]


def _new_day() -> str:
    _day[0] += 1
    return (STARTS + timedelta(days=_day[0] % 59 + 1)).isoformat()


Request = tuple[str, Callable[[World], str], Callable[[World, str], Any]]

ENDPOINTS: dict[str, Request] = {
    "health": ("GET", lambda w: "/health", lambda w, a: None),
    "metrics": ("GET", lambda w: "/metrics", lambda w, a: None),
    "whoami": ("GET", lambda w: "/me", lambda w, a: None),
    "create_organisation": ("POST", lambda w: "/organisations",
                            lambda w, a: {"id": f"org-{a}", "name": "X", "kind": "school"}),
    "list_organisations": ("GET", lambda w: "/organisations", lambda w, a: None),
    "get_organisation": ("GET", lambda w: "/organisations/district-a", lambda w, a: None),
    "register_person": ("POST", lambda w: "/organisations/district-a/people",
                        lambda w, a: {"id": f"p-{a}", "role": "learner"}),
    "list_people": ("GET", lambda w: "/organisations/district-a/people", lambda w, a: None),
    "deactivate_person": ("POST", lambda w: "/organisations/district-a/people/p-nobody/"
                          "deactivate", lambda w, a: {"reason": "Left"}),
    "change_role": ("POST", lambda w: "/organisations/district-a/people/p-nobody/role",
                    lambda w, a: {"role": "supervisor"}),
    "set_contact": ("POST", lambda w: "/organisations/district-a/people/p-nobody/contact",
                    lambda w, a: {"email": "nobody@example.org"}),
    "set_child_labour_policy": ("POST",
                                lambda w: "/organisations/district-a/child-labour-policy",
                                lambda w, a: {"policy": "refuse", "reason": "Default"}),
    "rename_organisation": ("POST", lambda w: "/organisations/sponsor-a/rename",
                            lambda w, a: {"name": f"Sponsor A renamed by {a}"}),
    "move_organisation": ("POST", lambda w: "/organisations/sponsor-a/move",
                          lambda w, a: {"parent_id": "district-b", "reason": "Merged"}),
    "close_organisation": ("POST", lambda w: "/organisations/org-admin/close",
                           lambda w, a: {"reason": "Merged"}),
    "record_school_year": ("POST", lambda w: "/organisations/district-a/calendar/years",
                           lambda w, a: {"school_year": "2025-2026", "first_day": "2025-08-25",
                                         "last_day": "2026-06-12", "breaks": []}),
    "record_school_day_exception": (
        "POST", lambda w: "/organisations/district-a/calendar/exceptions",
        lambda w, a: {"day": "2025-12-01", "school_day": False, "reason": "Snow day"}),
    "get_calendar": ("GET", lambda w: "/organisations/district-a/calendar", lambda w, a: None),
    "school_day": ("GET", lambda w: "/organisations/district-a/calendar/days/2025-12-01",
                   lambda w, a: None),
    "placements_needing_attention": (
        "GET", lambda w: "/organisations/district-a/placements-needing-attention",
        lambda w, a: None),
    "run_import": ("POST", lambda w: "/imports", lambda w, a: {
        "kind": "timesheets", "organisation_id": "district-a", "file_name": "t.csv",
        "content": "placement_ref\n"}),
    "post_opportunity": ("POST", lambda w: "/opportunities", lambda w, a: opportunity_body()),
    "close_opportunity": ("POST", lambda w: f"/opportunities/{w.spare_opportunity_id}/close",
                          lambda w, a: {"reason": "Filled"}),
    "revise_opportunity": ("POST", lambda w: f"/opportunities/{w.opportunity_id}/revise",
                           lambda w, a: {"title": "Electrical apprentice",
                                         "employer_name": "Acme Electric",
                                         "worksite": "1 Volt Way", "paid": True,
                                         "hourly_wage": "18.00", "capacity": 50,
                                         "starts_on": "1999-01-01", "ends_on": "1998-01-01"}),
    "get_opportunity": ("GET", lambda w: f"/opportunities/{w.opportunity_id}",
                        lambda w, a: None),
    "list_opportunities": ("GET", lambda w: "/opportunities", lambda w, a: None),
    "define_program": ("POST", lambda w: "/programs", lambda w, a: PROGRAM),
    "get_program": ("GET", lambda w: f"/programs/{w.program_id}", lambda w, a: None),
    "match_learner": ("POST", lambda w: "/placements", lambda w, a: {
        "opportunity_id": w.opportunity_id, "learner_id": f"lrn-{a}", "supervisor_id": "sup-1",
        "learner_born_on": "2000-01-01", "program_id": w.program_id}),
    "get_placement": ("GET", _p, lambda w, a: None),
    "sign_agreement": ("POST", lambda w: f"{_p(w)}/agreement-signatures",
                       lambda w, a: {"party": PartyFor.get(a, "learner")}),
    "start_placement": ("POST", lambda w: f"{_p(w)}/start", lambda w, a: {}),
    "suspend_placement": ("POST", lambda w: f"{_p(w)}/suspend", lambda w, a: {"reason": "x"}),
    "reinstate_placement": ("POST", lambda w: f"{_p(w)}/reinstate",
                            lambda w, a: {"reason": "x"}),
    "withdraw_placement": ("POST", lambda w: f"/placements/{w.spare_placement_id}/withdraw",
                           lambda w, a: {"reason": "x"}),
    "complete_placement": ("POST", lambda w: f"{_p(w)}/complete", lambda w, a: {}),
    "sign_off_competency": ("POST", lambda w: f"{_p(w)}/competency-sign-offs",
                            lambda w, a: {"competency": "Wiring basics"}),
    "grant_prior_learning_credit": ("POST", lambda w: f"{_p(w)}/prior-learning-credits",
                                    lambda w, a: {"minutes": 1, "basis": "prior_training"}),
    "credit_pre_apprenticeship_hours": (
        "POST", lambda w: f"{_p(w)}/pre-apprenticeship-credits",
        lambda w, a: {"source_placement_id": w.placement_id}),
    "record_work_experience_agreement": (
        "POST", lambda w: f"/placements/{w.spare_placement_id}/work-experience-agreement",
        lambda w, a: {"signed_on": "2025-01-01", "reason": "WECEP"}),
    "log_hours": ("POST", lambda w: f"{_p(w)}/hours",
                  lambda w, a: {"work_date": _new_day(), "minutes": 1}),
    "list_hours": ("GET", lambda w: f"{_p(w)}/hours", lambda w, a: None),
    "approve_hours": ("POST", lambda w: f"{_p(w)}/hours/{w.entries[0]}/approve",
                      lambda w, a: {}),
    "reject_hours": ("POST", lambda w: f"{_p(w)}/hours/{w.entries[1]}/reject",
                     lambda w, a: {"reason": "x"}),
    "correct_hours": ("POST", lambda w: f"{_p(w)}/hours/{w.entries[2]}/correct",
                      lambda w, a: {"reason": "x", "work_date": _new_day(), "minutes": 2}),
    "bulk_approve_hours": ("POST", lambda w: "/hours/bulk-approve", lambda w, a: {
        "items": [{"placement_id": w.placement_id, "entry_id": w.entries[3]}]}),
    "overdue_approvals": ("GET", lambda w: "/organisations/district-a/overdue-approvals",
                          lambda w, a: None),
    "name_proxy_approver": ("POST", lambda w: f"/placements/{w.spare_placement_id}/"
                            "proxy-approver",  # an unregistered proxy: refused, 422
                            lambda w, a: {"proxy_id": "sup-unregistered", "reason": "x"}),
    "evaluate_placement": ("POST", lambda w: f"{_p(w)}/evaluations", lambda w, a: {
        "scores": {"Wiring basics": 2}, "evaluator_role": "self" if a == "learner"
        else "supervisor", "stage": "interim"}),
    "list_evaluations": ("GET", lambda w: f"{_p(w)}/evaluations", lambda w, a: None),
    "issue_credential": ("POST", lambda w: f"{_p(w)}/credentials",
                         lambda w, a: {"kind": "Badge", "issuer": "X"}),
    "list_credentials": ("GET", lambda w: f"{_p(w)}/credentials", lambda w, a: None),
    "revoke_credential": ("POST", lambda w: f"{_p(w)}/credentials/c-1/revoke",
                          lambda w, a: {"reason": "x"}),
    "reissue_credential": ("POST", lambda w: f"{_p(w)}/credentials/c-1/reissue",
                           lambda w, a: {"reason": "x"}),
    "issuer_profile": ("GET", lambda w: f"/issuers/{ISSUER}", lambda w, a: None),
    "issuer_did_document": ("GET", lambda w: f"/issuers/{ISSUER}/did.json", lambda w, a: None),
    "issuer_status_list": ("GET", lambda w: f"/issuers/{ISSUER}/status/0", lambda w, a: None),
    "credential_keys": ("GET", lambda w: "/credentials/keys", lambda w, a: None),
    "verify_credential": ("POST", lambda w: "/credentials/verify",
                          lambda w, a: {"credential": {}}),
    # the projections' read routes (issue 5)
    "learner_transcript": ("GET", lambda w: "/learners/lrn-1/transcript", lambda w, a: None),
    "export_transcript": ("GET", lambda w: "/learners/lrn-1/transcript/export",
                          lambda w, a: None),
    "credential_open_badge": ("GET", lambda w: "/learners/lrn-1/credentials/c-1/open-badge",
                              lambda w, a: None),
    "learner_clr": ("GET", lambda w: "/learners/lrn-1/clr", lambda w, a: None),
    "learner_apprenticeship_hours": ("GET", lambda w: "/learners/lrn-1/apprenticeship-hours",
                                     lambda w, a: None),
    "placement_apprenticeship_hours": ("GET", lambda w: f"{_p(w)}/apprenticeship-hours",
                                       lambda w, a: None),
    "list_experiences": ("GET", lambda w: "/transcripts/experiences", lambda w, a: None),
    "pending_hours": ("GET", lambda w: "/pending-hours", lambda w, a: None),
    "list_apprenticeship_hours": ("GET", lambda w: "/apprenticeship-hours", lambda w, a: None),
    "audit_trail": ("GET", lambda w: "/audit-trail", lambda w, a: None),
    "verify_audit_trail": ("GET", lambda w: "/audit-trail/verify", lambda w, a: None),
    "audit_checkpoint_keys": ("GET", lambda w: "/audit-trail/checkpoint-keys",
                              lambda w, a: None),
    # state reports and research exports (issue 7)
    "state_report": ("GET", lambda w: "/reports/state?period=2025-26&starts_on=2025-07-01"
                     "&ends_on=2026-06-30", lambda w, a: None),
    "report_runs": ("GET", lambda w: "/reports/state/runs", lambda w, a: None),
    "keep_report_run": ("POST", lambda w: "/reports/state/runs", lambda w, a: {
        "period": "2025-26", "starts_on": "2025-07-01", "ends_on": "2026-06-30"}),
    "report_run": ("GET", lambda w: "/reports/state/runs/1", lambda w, a: None),
    "report_run_difference": ("GET", lambda w: "/reports/state/runs/1/difference",
                              lambda w, a: None),
    "rapids_export": ("GET", lambda w: "/exports/rapids", lambda w, a: None),
    "research_placements": ("GET", lambda w: "/research/placements", lambda w, a: None),
    "research_learners": ("GET", lambda w: "/research/learners", lambda w, a: None),
}
SCOPED = {"pending_hours", "list_experiences", "list_apprenticeship_hours", "audit_trail",
          "rapids_export"}

KEYS: dict[str, str] = {
    "health": "GET /health", "metrics": "GET /metrics", "whoami": "GET /me",
    "create_organisation": "POST /organisations", "list_organisations": "GET /organisations",
    "get_organisation": "GET /organisations/{organisation_id}",
    "register_person": "POST /organisations/{organisation_id}/people",
    "list_people": "GET /organisations/{organisation_id}/people",
    "deactivate_person": "POST /organisations/{organisation_id}/people/{person_id}/deactivate",
    "change_role": "POST /organisations/{organisation_id}/people/{person_id}/role",
    "set_contact": "POST /organisations/{organisation_id}/people/{person_id}/contact",
    "set_child_labour_policy": "POST /organisations/{organisation_id}/child-labour-policy",
    "rename_organisation": "POST /organisations/{organisation_id}/rename",
    "move_organisation": "POST /organisations/{organisation_id}/move",
    "close_organisation": "POST /organisations/{organisation_id}/close",
    "record_school_year": "POST /organisations/{organisation_id}/calendar/years",
    "record_school_day_exception": "POST /organisations/{organisation_id}/calendar/exceptions",
    "get_calendar": "GET /organisations/{organisation_id}/calendar",
    "school_day": "GET /organisations/{organisation_id}/calendar/days/{day}",
    "placements_needing_attention":
        "GET /organisations/{organisation_id}/placements-needing-attention",
    "run_import": "POST /imports",
    "record_work_experience_agreement":
        "POST /placements/{placement_id}/work-experience-agreement",
    "post_opportunity": "POST /opportunities",
    "close_opportunity": "POST /opportunities/{opportunity_id}/close",
    "revise_opportunity": "POST /opportunities/{opportunity_id}/revise",
    "get_opportunity": "GET /opportunities/{opportunity_id}",
    "list_opportunities": "GET /opportunities",
    "define_program": "POST /programs", "get_program": "GET /programs/{program_id}",
    "match_learner": "POST /placements", "get_placement": "GET /placements/{placement_id}",
    "sign_agreement": "POST /placements/{placement_id}/agreement-signatures",
    "start_placement": "POST /placements/{placement_id}/start",
    "suspend_placement": "POST /placements/{placement_id}/suspend",
    "reinstate_placement": "POST /placements/{placement_id}/reinstate",
    "withdraw_placement": "POST /placements/{placement_id}/withdraw",
    "complete_placement": "POST /placements/{placement_id}/complete",
    "sign_off_competency": "POST /placements/{placement_id}/competency-sign-offs",
    "grant_prior_learning_credit": "POST /placements/{placement_id}/prior-learning-credits",
    "credit_pre_apprenticeship_hours":
        "POST /placements/{placement_id}/pre-apprenticeship-credits",
    "log_hours": "POST /placements/{placement_id}/hours",
    "list_hours": "GET /placements/{placement_id}/hours",
    "approve_hours": "POST /placements/{placement_id}/hours/{entry_id}/approve",
    "reject_hours": "POST /placements/{placement_id}/hours/{entry_id}/reject",
    "correct_hours": "POST /placements/{placement_id}/hours/{entry_id}/correct",
    "bulk_approve_hours": "POST /hours/bulk-approve",
    "overdue_approvals": "GET /organisations/{organisation_id}/overdue-approvals",
    "name_proxy_approver": "POST /placements/{placement_id}/proxy-approver",
    "evaluate_placement": "POST /placements/{placement_id}/evaluations",
    "list_evaluations": "GET /placements/{placement_id}/evaluations",
    "issue_credential": "POST /placements/{placement_id}/credentials",
    "list_credentials": "GET /placements/{placement_id}/credentials",
    "revoke_credential": "POST /placements/{placement_id}/credentials/{credential_id}/revoke",
    "reissue_credential":
        "POST /placements/{placement_id}/credentials/{credential_id}/reissue",
    "issuer_profile": "GET /issuers/{issuer_key}",
    "issuer_did_document": "GET /issuers/{issuer_key}/did.json",
    "issuer_status_list": "GET /issuers/{issuer_key}/status/{list_number}",
    "credential_keys": "GET /credentials/keys",
    "verify_credential": "POST /credentials/verify",
    "learner_transcript": "GET /learners/{learner_id}/transcript",
    "export_transcript": "GET /learners/{learner_id}/transcript/export",
    "credential_open_badge": "GET /learners/{learner_id}/credentials/{credential_id}/open-badge",
    "learner_clr": "GET /learners/{learner_id}/clr",
    "learner_apprenticeship_hours": "GET /learners/{learner_id}/apprenticeship-hours",
    "placement_apprenticeship_hours": "GET /placements/{placement_id}/apprenticeship-hours",
    "list_experiences": "GET /transcripts/experiences",
    "pending_hours": "GET /pending-hours",
    "list_apprenticeship_hours": "GET /apprenticeship-hours",
    "audit_trail": "GET /audit-trail",
    "verify_audit_trail": "GET /audit-trail/verify",
    "audit_checkpoint_keys": "GET /audit-trail/checkpoint-keys",
    "state_report": "GET /reports/state",
    "report_runs": "GET /reports/state/runs",
    "keep_report_run": "POST /reports/state/runs",
    "report_run": "GET /reports/state/runs/{run_id}",
    "report_run_difference": "GET /reports/state/runs/{run_id}/difference",
    "rapids_export": "GET /exports/rapids",
    "research_placements": "GET /research/placements",
    "research_learners": "GET /research/learners",
}

OWN_SCOPE = {  # a cross-record query names the caller's own scope
    "coord_a": "organisation_id=district-a", "coord_b": "organisation_id=district-b",
    "sponsor": "sponsor_id=sponsor-a", "sponsor_other": "sponsor_id=sponsor-b",
    "supervisor": "supervisor_id=sup-1", "supervisor_other": "supervisor_id=sup-2",
    "learner": "learner_id=lrn-1", "learner_other": "learner_id=lrn-2",
}

BROWSERS = ALL - {"researcher", "guardian", "guardian_other"}
PLACEMENT_READERS = {"admin", "coord_a", "learner", "supervisor", "sponsor", "auditor"}
HIDDEN_FROM_READERS = {"coord_b", "learner_other", "supervisor_other", "sponsor_other"}


def expect(allow: set[str], hide: set[str] | None = None) -> dict[str, object]:
    hide = hide or set()
    return {a: ALLOW if a in allow else HIDE if a in hide else DENY for a in ALL}


EXPECTED: dict[str, dict[str, object]] = {
    "health": expect(ALL),
    "metrics": expect({"admin"}),
    "whoami": expect(ALL),
    "create_organisation": expect({"admin"}),
    "list_organisations": expect(BROWSERS),
    "get_organisation": expect(BROWSERS),
    "register_person": expect({"admin", "coord_a"}),
    "list_people": expect({"admin", "coord_a", "auditor"}),
    "deactivate_person": expect({"admin", "coord_a"}),
    "change_role": expect({"admin", "coord_a"}),
    "set_contact": expect({"admin", "coord_a"}),
    "set_child_labour_policy": expect({"admin", "coord_a"}),
    "rename_organisation": expect({"admin"}),
    "move_organisation": expect({"admin"}),
    "close_organisation": expect({"admin"}),
    "record_school_year": expect({"admin", "coord_a"}),
    "record_school_day_exception": expect({"admin", "coord_a"}),
    "get_calendar": expect(BROWSERS),
    "school_day": expect(BROWSERS),
    "placements_needing_attention": expect({"admin", "coord_a", "auditor"}),
    "run_import": expect({"admin", "coord_a"}),
    "record_work_experience_agreement": expect({"admin", "coord_a"}, {"coord_b"}),
    "post_opportunity": expect({"admin", "coord_a"}),
    "close_opportunity": expect({"admin", "coord_a"}),
    "revise_opportunity": expect({"admin", "coord_a"}),
    "get_opportunity": expect(BROWSERS),
    "list_opportunities": expect(BROWSERS),
    "define_program": expect({"admin", "sponsor"}),
    "get_program": expect(BROWSERS),
    "match_learner": expect({"admin", "coord_a"}),
    "get_placement": expect(PLACEMENT_READERS, HIDDEN_FROM_READERS),
    "sign_agreement": expect({"admin", "coord_a", "learner", "supervisor", "guardian"},
                             {"coord_b", "learner_other", "supervisor_other",
                              "guardian_other"}),
    "start_placement": expect({"admin", "coord_a", "supervisor"},
                              {"coord_b", "supervisor_other"}),
    "suspend_placement": expect({"admin", "coord_a"}, {"coord_b"}),
    "reinstate_placement": expect({"admin", "coord_a"}, {"coord_b"}),
    "withdraw_placement": expect({"admin", "coord_a", "learner"},
                                 {"coord_b", "learner_other"}),
    "complete_placement": expect({"admin", "coord_a", "sponsor"},
                                 {"coord_b", "sponsor_other"}),
    "sign_off_competency": expect({"supervisor", "sponsor"},
                                  {"supervisor_other", "sponsor_other"}),
    "grant_prior_learning_credit": expect({"admin", "coord_a", "sponsor"},
                                          {"coord_b", "sponsor_other"}),
    "credit_pre_apprenticeship_hours": expect({"admin", "coord_a", "sponsor"},
                                              {"coord_b", "sponsor_other"}),
    "log_hours": expect({"admin", "coord_a", "learner", "supervisor"},
                        {"coord_b", "learner_other", "supervisor_other"}),
    "list_hours": expect(PLACEMENT_READERS, HIDDEN_FROM_READERS),
    "approve_hours": expect({"supervisor"}, {"supervisor_other"}),
    "reject_hours": expect({"supervisor"}, {"supervisor_other"}),
    "correct_hours": expect({"admin", "coord_a", "learner", "supervisor"},
                            {"coord_b", "learner_other", "supervisor_other"}),
    "bulk_approve_hours": expect({"supervisor", "supervisor_other"}),
    "overdue_approvals": expect({"admin", "coord_a"}),
    "name_proxy_approver": expect({"admin", "coord_a"}, {"coord_b"}),
    "evaluate_placement": expect({"admin", "coord_a", "learner", "supervisor", "sponsor"},
                                 HIDDEN_FROM_READERS),
    "list_evaluations": expect(PLACEMENT_READERS, HIDDEN_FROM_READERS),
    "issue_credential": expect({"admin", "coord_a", "sponsor"}, {"coord_b", "sponsor_other"}),
    "list_credentials": expect(PLACEMENT_READERS, HIDDEN_FROM_READERS),
    "revoke_credential": expect({"admin", "coord_a", "sponsor"}, {"coord_b", "sponsor_other"}),
    "reissue_credential": expect({"admin", "coord_a", "sponsor"},
                                 {"coord_b", "sponsor_other"}),
    "issuer_profile": expect(ALL),
    "issuer_did_document": expect(ALL),
    "issuer_status_list": expect(ALL),
    "credential_keys": expect(ALL),
    "verify_credential": expect(ALL),
    "learner_transcript": expect({"learner", "coord_a", "auditor", "admin"}),
    "export_transcript": expect({"learner", "coord_a", "auditor", "admin"}),
    "credential_open_badge": expect({"learner", "coord_a", "auditor", "admin"}),
    "learner_clr": expect({"learner", "coord_a", "auditor", "admin"}),
    "learner_apprenticeship_hours": expect({"learner", "coord_a", "auditor", "admin"}),
    "placement_apprenticeship_hours": expect(PLACEMENT_READERS, HIDDEN_FROM_READERS),
    "pending_hours": expect({"supervisor", "supervisor_other", "admin"}),
    "list_experiences": expect({"supervisor", "supervisor_other", "coord_a", "coord_b",
                                "sponsor", "sponsor_other", "auditor", "admin"}),
    "list_apprenticeship_hours": expect({"supervisor", "supervisor_other", "sponsor",
                                         "sponsor_other", "coord_a", "coord_b",
                                         "auditor", "admin"}),
    "audit_trail": expect({"coord_a", "coord_b", "auditor", "admin"}),
    "verify_audit_trail": expect({"auditor", "admin"}),
    "audit_checkpoint_keys": expect(ALL),
    "state_report": expect({"auditor", "admin"}),
    "report_runs": expect({"auditor", "admin"}),
    "keep_report_run": expect({"auditor", "admin"}),
    "report_run": expect({"auditor", "admin"}),
    "report_run_difference": expect({"auditor", "admin"}),
    "rapids_export": expect({"sponsor", "sponsor_other", "auditor", "admin"}),
    "research_placements": expect({"researcher", "admin"}),
    "research_learners": expect({"researcher", "admin"}),
}

CELLS = [pytest.param(endpoint, actor, id=f"{endpoint}-{actor}")
         for endpoint in ENDPOINTS for actor in sorted(ALL)]


def route_keys(routes: list[Any]) -> set[str]:
    keys: set[str] = set()
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI >= 0.16x includes routers lazily
            keys |= route_keys(route.original_router.routes)
        elif isinstance(route, APIRoute):
            keys |= {endpoint_key(m, route.path) for m in route.methods if m != "HEAD"}
    return keys


ROUTES = route_keys(create_app().routes)


def test_every_route_has_a_rule_and_a_row_in_this_matrix() -> None:
    assert set(RULES) >= ROUTES, "every route has a rule"
    assert set(KEYS.values()) == set(RULES), "every rule has a row in this matrix"
    assert set(ENDPOINTS) == set(KEYS) == set(EXPECTED)


@pytest.mark.parametrize(("endpoint", "actor"), CELLS)
def test_cell(shared_world: World, endpoint: str, actor: str) -> None:
    if KEYS[endpoint] not in ROUTES:
        pytest.skip(f"{KEYS[endpoint]} is not served (yet)")
    method, path, body = ENDPOINTS[endpoint]
    before = shared_world.position
    url = path(shared_world)
    if endpoint in SCOPED and actor in OWN_SCOPE:
        url += "?" + OWN_SCOPE[actor]
    response = shared_world.call(actor, method, url, body(shared_world, actor))
    expected = EXPECTED[endpoint][actor]
    assert response.status_code < 500, response.text
    problem_type = (response.json().get("type", "") if response.headers.get(
        "content-type", "").startswith("application/problem+json") else "")
    if expected == ALLOW:
        assert response.status_code != 401, response.text
        assert problem_type.removeprefix("/errors/") not in AUTHZ_CODES, response.text
        assert problem_type != "/errors/unknown-placement", response.text
        return
    assert response.status_code == expected, response.text
    if expected == DENY:
        assert problem_type.removeprefix("/errors/") in {"role-not-permitted",
                                                         "not-your-record"}, response.text
    else:
        assert problem_type == "/errors/unknown-placement", response.text
    assert shared_world.position == before


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_without_a_valid_token_only_health_answers(shared_world: World, endpoint: str) -> None:
    if KEYS[endpoint] not in ROUTES:
        pytest.skip(f"{KEYS[endpoint]} is not served (yet)")
    method, path, body = ENDPOINTS[endpoint]
    before = shared_world.position
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = shared_world.client.request(method, path(shared_world),
                                               json=body(shared_world, "admin"),
                                               headers=headers)
        if endpoint in PUBLIC_ENDPOINTS:  # no sign-in needed: never 401
            assert response.status_code in (200, 404), response.text
            continue
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["type"] in ("/errors/unauthenticated", "/errors/invalid-token")
    assert shared_world.position == before


def test_expired_and_foreign_tokens_are_refused(shared_world: World) -> None:
    import jwt

    from services.api.auth import issue_token, token_key

    key = shared_world.client.app.state.token_key  # type: ignore[attr-defined]
    expired = issue_token(key, actor_id="adm-1", role="admin", ttl_seconds=1, now=1_000_000)
    response = shared_world.client.get("/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json()["type"] == "/errors/token-expired"
    forged = jwt.encode({"sub": "adm-1", "role": "admin", "iss": "wbl-ledger",
                         "aud": "wbl-ledger", "iat": 1, "exp": 2**40}, "another-key-" * 4,
                        algorithm="HS256")
    response = shared_world.client.get("/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    unsigned = jwt.encode({"sub": "adm-1", "role": "admin"}, None, algorithm="none")
    response = shared_world.client.get("/me", headers={"Authorization": f"Bearer {unsigned}"})
    assert response.status_code == 401
    assert token_key is not None


def test_a_token_checked_once_is_still_refused_once_it_expires(
        shared_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API keeps the tokens it verified (decision 064); expiry is still compared on
    every request, and a token differing in its signature is verified on its own."""
    import time

    from services.api import auth

    monkeypatch.setattr(auth, "LEEWAY_S", 0)
    key = shared_world.client.app.state.token_key  # type: ignore[attr-defined]
    token = auth.issue_token(key, actor_id="adm-1", role="admin", ttl_seconds=2)
    header = {"Authorization": f"Bearer {token}"}
    assert shared_world.client.get("/me", headers=header).status_code == 200
    assert shared_world.client.get("/me", headers=header).status_code == 200  # kept
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    response = shared_world.client.get("/me", headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401
    time.sleep(3.1)
    response = shared_world.client.get("/me", headers=header)
    assert response.status_code == 401
    assert response.json()["type"] == "/errors/token-expired"


def test_a_supervisor_never_approves_hours_they_logged(world: World) -> None:
    entry = world.log_entry(40, who="supervisor")
    before = world.position
    response = world.call("supervisor", "POST", f"{_p(world)}/hours/{entry}/approve", {})
    assert response.status_code == 403
    assert response.json()["type"] == "/errors/own-hours"
    assert world.position == before


def test_an_unknown_placement_looks_the_same_to_everyone_who_could_read_one(
    shared_world: World,
) -> None:
    missing = "/placements/00000000-0000-4000-8000-000000000000"
    hidden = shared_world.call("coord_b", "GET", _p(shared_world)).json()
    for who in ("coord_a", "coord_b", "learner"):
        unknown = shared_world.call(who, "GET", missing).json()
        assert unknown["type"] == hidden["type"] == "/errors/unknown-placement"
        assert unknown["status"] == hidden["status"] == 404


@pytest.mark.parametrize(("endpoint", "who", "query"), [
    ("list_experiences", "coord_a", "organisation_id=district-b"),
    ("list_experiences", "coord_a", ""),
    ("list_experiences", "supervisor", "supervisor_id=sup-2"),
    ("pending_hours", "supervisor", "supervisor_id=sup-2"),
    ("list_experiences", "sponsor", "sponsor_id=sponsor-b"),
    ("list_apprenticeship_hours", "sponsor", "sponsor_id=sponsor-b"),
    ("list_apprenticeship_hours", "supervisor", "supervisor_id=sup-2"),
    ("list_apprenticeship_hours", "coord_b", "organisation_id=district-a"),
    ("audit_trail", "coord_b", "organisation_id=district-a"),
])
def test_cross_record_queries_stay_within_the_callers_scope(
    shared_world: World, endpoint: str, who: str, query: str
) -> None:
    if KEYS[endpoint] not in ROUTES:
        pytest.skip(f"{KEYS[endpoint]} is not served (yet)")
    _, path, _ = ENDPOINTS[endpoint]
    response = shared_world.call(who, "GET", f"{path(shared_world)}?{query}")
    assert response.status_code == 403, response.text
    assert response.json()["type"] == "/errors/not-your-record"
