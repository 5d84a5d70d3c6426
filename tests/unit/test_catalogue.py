"""docs/events.md is generated from the code and must match it."""

from __future__ import annotations

from pathlib import Path

from domain.contract.catalogue import all_event_types, render

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"

REQUIRED = {
    # the lifecycle DESIGN.md fixes; the catalogue holds these and may hold more
    "OpportunityPosted", "OpportunityClosed", "LearnerMatched", "PlacementStarted",
    "HoursLogged", "HoursApproved", "HoursRejected", "HoursCorrected", "PlacementEvaluated",
    "CredentialIssued", "PlacementCompleted", "PlacementWithdrawn",
}


def test_docs_events_md_matches_the_code() -> None:
    assert DOCS.read_text() == render(), (
        "docs/events.md is stale: run `python -m domain.contract.catalogue > docs/events.md`"
    )


def test_every_event_type_is_listed_with_meaning_and_the_common_fields() -> None:
    types = all_event_types()
    assert {t.name for t in types} >= REQUIRED
    assert len({t.name for t in types}) == len(types)
    for t in types:
        assert t.meaning, f"{t.name} has no docstring"
        names = [name for name, _ in t.fields]
        assert {"actor_id", "actor_role", "business_date"} <= set(names), t.name


UPCAST = ("HoursLogged", "LearnerMatched", "HoursApproved", "HoursCorrected", "HoursRejected")


def test_the_upcast_events_are_at_their_versions() -> None:
    versions = {t.name: t.version for t in all_event_types()}
    assert versions["HoursLogged"] == 2  # child-labour flags added
    assert versions["LearnerMatched"] == 2  # birthdays replaced by minor_during_placement
    assert versions["HoursCorrected"] == 2  # pending_over: approved hours stand until then
    # replaces: the approved entry superseded now (2); link_id: the approval link (3)
    assert versions["HoursApproved"] == 3
    assert versions["HoursRejected"] == 2  # link_id: the approval link (decision 055)
    assert {v for name, v in versions.items() if name not in UPCAST} == {1}


def test_opportunity_posted_keeps_the_fields_projections_read() -> None:
    posted = next(t for t in all_event_types() if t.name == "OpportunityPosted")
    assert [name for name, _ in posted.fields] == [
        "actor_id", "actor_role", "organisation_id", "title", "employer_name", "worksite",
        "wbl_type", "pre_apprenticeship", "occupation_code", "career_pathway", "paid",
        "hourly_wage", "capacity", "starts_on", "ends_on", "minimum_age", "hazardous",
        "business_date",
    ]
