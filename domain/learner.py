"""A learner's personal data: who they are and the groups states report by.

None of this is ever put in an event. Events name a learner only by a pseudonymous id;
the profile lives in the personal-data vault (`infra/personal_data.py`), encrypted under
a key of that learner's own, so deleting the key erases it everywhere (FERPA records past
their retention; docs/privacy.md). The group attributes are here because Perkins V and
state reports disaggregate by them (sex, race/ethnicity, economically disadvantaged,
students with disabilities, English learners, and others a state adds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from domain.errors import RuleViolated


class Sex(StrEnum):
    FEMALE = "F"
    MALE = "M"
    NON_BINARY = "X"
    NOT_REPORTED = "NotReported"


class RaceEthnicity(StrEnum):
    """The federal reporting categories (as in EDFacts / CEDS), Hispanic first."""

    HISPANIC_OR_LATINO = "HispanicOrLatino"
    AMERICAN_INDIAN_OR_ALASKA_NATIVE = "AmericanIndianOrAlaskaNative"
    ASIAN = "Asian"
    BLACK_OR_AFRICAN_AMERICAN = "BlackOrAfricanAmerican"
    NATIVE_HAWAIIAN_OR_OTHER_PACIFIC_ISLANDER = "NativeHawaiianOrOtherPacificIslander"
    WHITE = "White"
    TWO_OR_MORE_RACES = "TwoOrMoreRaces"
    NOT_REPORTED = "NotReported"


@dataclass(frozen=True)
class LearnerProfile:
    organisation_id: str
    given_name: str
    family_name: str
    born_on: date
    student_number: str | None = None
    sex: Sex = Sex.NOT_REPORTED
    race_ethnicity: RaceEthnicity = RaceEthnicity.NOT_REPORTED
    economically_disadvantaged: bool | None = None
    disability: bool | None = None
    english_learner: bool | None = None
    cte_concentrator: bool = False
    """Perkins V: took at least two CTE courses in one program of study (needed for 5S3)."""
    graduated_on: date | None = None
    other_groups: dict[str, str] = field(default_factory=dict)
    """State-configured groups (e.g. homeless, foster care, military-connected)."""

    def age_on(self, day: date) -> int:
        years = day.year - self.born_on.year
        return years - ((day.month, day.day) < (self.born_on.month, self.born_on.day))


def check_profile(profile: LearnerProfile, *, today: date) -> None:
    """Refuse a profile that cannot be a real learner's (each with a named rule)."""
    if not profile.given_name.strip() or not profile.family_name.strip():
        raise RuleViolated("A learner needs a given and a family name.", code="name-required",
                           field="given_name" if not profile.given_name.strip()
                           else "family_name")
    if profile.born_on >= today:
        raise RuleViolated("A birth date must be in the past.", code="birth-date-in-future",
                           field="born_on")
    if profile.age_on(today) > 120 or profile.age_on(today) < 10:
        raise RuleViolated("A learner's age must be between 10 and 120.",
                           code="birth-date-implausible", field="born_on")
    if profile.graduated_on is not None and profile.graduated_on <= profile.born_on:
        raise RuleViolated("Graduation must come after birth.", code="graduation-before-birth",
                           field="graduated_on")
    for key in profile.other_groups:
        if not key.replace("_", "").isalnum():
            raise RuleViolated(f"Group name {key!r} must be letters, digits and underscores.",
                               code="bad-group-name", field="other_groups")
