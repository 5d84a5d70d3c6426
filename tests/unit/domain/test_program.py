"""ApprenticeshipProgram: the standard's own rules (29 CFR 29.5)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import DomainError, NotPermitted, RuleViolated
from domain.program import Approach, summary
from tests.unit.domain.factories import COORDINATOR, program, replayed, state


def test_a_time_based_program_is_recorded_with_its_requirements() -> None:
    defined = program()
    assert defined.approach is Approach.TIME_BASED
    assert defined.ojl_minutes_required == 120_000
    assert defined.related_instruction_hours_per_year == 144
    assert defined.wage_schedule[1]["hourly_wage"] == Decimal("21.00")
    assert summary(defined)["rapids_code"] == "0159"
    assert state(replayed(defined)) == state(defined)


@pytest.mark.parametrize(
    ("overrides", "error", "code"),
    [
        ({"actor": COORDINATOR}, NotPermitted, "sponsor-required"),
        ({"approach": "vibes"}, RuleViolated, "unknown-approach"),
        ({"title": " "}, RuleViolated, "title-required"),
        ({"rapids_code": ""}, RuleViolated, "occupation-required"),
        ({"ojl_hours": 1999, "work_processes": {"All": 1999}}, RuleViolated,
         "ojl-hours-below-minimum"),
        ({"ojl_hours": -1}, RuleViolated, "ojl-hours-invalid"),
        ({"approach": "hybrid", "ojl_hours": 0}, RuleViolated, "ojl-hours-below-minimum"),
        ({"approach": "competency_based", "competencies": []}, RuleViolated,
         "competencies-required"),
        ({"competencies": ["A", "A"]}, RuleViolated, "competencies-invalid"),
        ({"related_instruction_hours_per_year": -5}, RuleViolated,
         "related-instruction-hours-invalid"),
        ({"work_processes": {}}, RuleViolated, "work-processes-required"),
        ({"work_processes": {"Safety": 0, "Wiring": 2000}}, RuleViolated,
         "work-process-invalid"),
        ({"work_processes": {"Safety": 100}}, RuleViolated, "work-process-hours-mismatch"),
        ({"wage_schedule": [{"after_hours": 0, "hourly_wage": 18.0}]}, RuleViolated,
         "wage-step-invalid"),
        ({"wage_schedule": [{"after_hours": 100, "hourly_wage": Decimal("18")}]}, RuleViolated,
         "wage-schedule-not-progressive"),
        ({"wage_schedule": [{"after_hours": 0, "hourly_wage": Decimal("18")},
                            {"after_hours": 1000, "hourly_wage": Decimal("17")}]},
         RuleViolated, "wage-schedule-not-progressive"),
    ],
)
def test_program_rules(overrides: dict[str, object], error: type[DomainError],
                       code: str) -> None:
    with pytest.raises(error) as info:
        program(**overrides)
    assert info.value.code == code


def test_a_competency_based_program_may_state_no_hours() -> None:
    defined = program(approach="competency_based", ojl_hours=0)
    assert defined.ojl_minutes_required == 0
