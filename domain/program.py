"""A registered apprenticeship program: the standard a sponsor registers (29 CFR 29.5).

A placement on an apprenticeship copies the program's requirements when the learner is
matched, so a later revision of the standard never changes what an apprentice who
already started must complete.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.actor import Actor, Role
from domain.errors import NotPermitted, RuleViolated

MIN_TIME_BASED_OJL_HOURS = 2000
"""29 CFR 29.5(b)(2)(i): a time-based term is at least 2,000 hours of on-the-job learning."""

RELATED_INSTRUCTION_NORM_HOURS = 144
"""29 CFR 29.5(b)(4): 144 hours of related instruction a year is the recommended minimum."""


class Approach(StrEnum):
    """29 CFR 29.5(b)(2): how progress is measured."""

    TIME_BASED = "time_based"
    COMPETENCY_BASED = "competency_based"
    HYBRID = "hybrid"


class ApprenticeshipProgram(Aggregate):
    """A sponsor's registered apprenticeship standard.

    Events: ``ApprenticeshipProgramDefined``.
    """

    @classmethod
    def define(
        cls,
        *,
        actor: Actor,
        sponsor_id: str,
        sponsor_name: str,
        title: str,
        rapids_code: str,
        onet_code: str,
        approach: Approach | str,
        ojl_hours: int,
        related_instruction_hours_per_year: int = RELATED_INSTRUCTION_NORM_HOURS,
        work_processes: Mapping[str, int],
        competencies: Sequence[str] = (),
        wage_schedule: Sequence[Mapping[str, Any]] = (),
        pre_apprenticeship_hours_count: bool = False,
        defined_on: date,
    ) -> ApprenticeshipProgram:
        """Check the standard against 29 CFR 29.5, then record it.

        ``work_processes`` maps each work process to its target on-the-job hours;
        ``wage_schedule`` is a list of steps ``{"after_hours": int, "hourly_wage": Decimal}``.
        """
        if actor.role not in (Role.SPONSOR, Role.ADMIN):
            raise NotPermitted("Only a sponsor defines an apprenticeship program.",
                               code="sponsor-required")
        try:
            parsed_approach = Approach(approach)
        except ValueError:
            raise RuleViolated(
                f"{approach!r} is not an approach; use time_based, competency_based or hybrid.",
                code="unknown-approach", field="approach",
            ) from None
        if not title.strip() or not sponsor_name.strip():
            raise RuleViolated("A program needs a title and a sponsor name.",
                               code="title-required", field="title")
        if not rapids_code.strip():
            raise RuleViolated("A program names its RAPIDS occupation code.",
                               code="occupation-required", field="rapids_code")
        if not _is_int(ojl_hours) or ojl_hours < 0:
            raise RuleViolated("On-the-job hours are a whole number, zero or more.",
                               code="ojl-hours-invalid", field="ojl_hours")
        if parsed_approach is Approach.TIME_BASED and ojl_hours < MIN_TIME_BASED_OJL_HOURS:
            raise RuleViolated(
                f"A time-based term needs at least {MIN_TIME_BASED_OJL_HOURS} hours of "
                f"on-the-job learning (29 CFR 29.5(b)(2)); got {ojl_hours}.",
                code="ojl-hours-below-minimum", field="ojl_hours",
            )
        if parsed_approach is Approach.HYBRID and ojl_hours <= 0:
            raise RuleViolated("A hybrid term sets a minimum number of on-the-job hours.",
                               code="ojl-hours-below-minimum", field="ojl_hours")
        ri_hours = related_instruction_hours_per_year
        if not _is_int(ri_hours) or ri_hours < 0:
            raise RuleViolated("Related-instruction hours are a whole number, zero or more.",
                               code="related-instruction-hours-invalid",
                               field="related_instruction_hours_per_year")
        if parsed_approach is not Approach.TIME_BASED and not competencies:
            raise RuleViolated(
                "Competency-based and hybrid terms list the competencies to demonstrate.",
                code="competencies-required", field="competencies",
            )
        cleaned_competencies = [c.strip() for c in competencies]
        if any(not c for c in cleaned_competencies) or len(set(cleaned_competencies)) != len(
            cleaned_competencies
        ):
            raise RuleViolated("Competencies are named, each once.",
                               code="competencies-invalid", field="competencies")
        if not work_processes:
            raise RuleViolated("A standard lists its work processes (29 CFR 29.5(b)(3)).",
                               code="work-processes-required", field="work_processes")
        for name, hours in work_processes.items():
            if not name.strip() or not _is_int(hours) or hours <= 0:
                raise RuleViolated(
                    f"Work process {name!r} needs a name and a target above zero hours.",
                    code="work-process-invalid", field="work_processes",
                )
        if ojl_hours > 0 and sum(work_processes.values()) != ojl_hours:
            raise RuleViolated(
                f"The work processes' targets add up to {sum(work_processes.values())} hours, "
                f"not the {ojl_hours} on-the-job hours of the term.",
                code="work-process-hours-mismatch", field="work_processes",
            )
        steps = _check_wage_schedule(wage_schedule)
        return cls(
            actor_id=actor.id,
            actor_role=str(actor.role),
            business_date=defined_on,
            sponsor_id=sponsor_id,
            sponsor_name=sponsor_name.strip(),
            title=title.strip(),
            rapids_code=rapids_code.strip(),
            onet_code=onet_code.strip(),
            approach=parsed_approach.value,
            ojl_hours=ojl_hours,
            related_instruction_hours_per_year=related_instruction_hours_per_year,
            work_processes=dict(work_processes),
            competencies=cleaned_competencies,
            wage_schedule=steps,
            pre_apprenticeship_hours_count=pre_apprenticeship_hours_count,
        )

    @event("ApprenticeshipProgramDefined")
    def __init__(
        self,
        *,
        actor_id: str,
        actor_role: str,
        business_date: date,
        sponsor_id: str,
        sponsor_name: str,
        title: str,
        rapids_code: str,
        onet_code: str,
        approach: str,
        ojl_hours: int,
        related_instruction_hours_per_year: int,
        work_processes: dict[str, int],
        competencies: list[str],
        wage_schedule: list[dict[str, Any]],
        pre_apprenticeship_hours_count: bool,
    ) -> None:
        """A sponsor registered an apprenticeship standard: occupation (RAPIDS code and
        O*NET-SOC), approach, on-the-job hours by work process (hours, not minutes: the
        standard is written in whole hours), related-instruction hours a year,
        competencies, the progressive wage schedule, and whether hours of a linked
        pre-apprenticeship count toward it."""
        self.sponsor_id = sponsor_id
        self.sponsor_name = sponsor_name
        self.title = title
        self.rapids_code = rapids_code
        self.onet_code = onet_code
        self.approach = Approach(approach)
        self.ojl_hours = ojl_hours
        self.related_instruction_hours_per_year = related_instruction_hours_per_year
        self.work_processes = dict(work_processes)
        self.competencies = list(competencies)
        self.wage_schedule = [dict(step) for step in wage_schedule]
        self.pre_apprenticeship_hours_count = pre_apprenticeship_hours_count
        self.defined_on = business_date

    @property
    def ojl_minutes_required(self) -> int:
        return self.ojl_hours * 60


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_wage_schedule(schedule: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """29 CFR 29.5(b)(5): a progressively increasing schedule of wages.

    Steps start at hour 0, come in increasing order of hours, and never lower the wage.
    """
    steps: list[dict[str, Any]] = []
    for step in schedule:
        after_hours = step.get("after_hours")
        wage = step.get("hourly_wage")
        if not _is_int(after_hours) or not isinstance(wage, Decimal) or wage <= 0:
            raise RuleViolated(
                "Each wage step has whole `after_hours` and a Decimal `hourly_wage` above zero.",
                code="wage-step-invalid", field="wage_schedule",
            )
        steps.append({"after_hours": after_hours, "hourly_wage": wage})
    if steps and steps[0]["after_hours"] != 0:
        raise RuleViolated("The wage schedule starts at hour 0.",
                           code="wage-schedule-not-progressive", field="wage_schedule")
    for earlier, later in itertools.pairwise(steps):
        if later["after_hours"] <= earlier["after_hours"] or (
            later["hourly_wage"] < earlier["hourly_wage"]
        ):
            raise RuleViolated(
                "Wage steps come in increasing order of hours and never lower the wage "
                "(29 CFR 29.5(b)(5)).",
                code="wage-schedule-not-progressive", field="wage_schedule",
            )
    return steps


def summary(program: ApprenticeshipProgram) -> dict[str, Any]:
    """The program's current state as plain values, for the service layer."""
    return {
        "id": str(program.id),
        "version": program.version,
        "sponsor_id": program.sponsor_id,
        "title": program.title,
        "rapids_code": program.rapids_code,
        "onet_code": program.onet_code,
        "approach": program.approach.value,
        "ojl_hours": program.ojl_hours,
        "related_instruction_hours_per_year": program.related_instruction_hours_per_year,
        "work_processes": dict(program.work_processes),
        "competencies": list(program.competencies),
        "pre_apprenticeship_hours_count": program.pre_apprenticeship_hours_count,
    }
