"""The personal-data vault on both stores: profiles are encrypted at rest under a key per
learner, and shredding that key makes the profile unreadable for good."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from domain.errors import RuleViolated
from domain.learner import LearnerProfile, RaceEthnicity, Sex, check_profile
from infra.database import personal_data_vault
from infra.personal_data import (
    LearnerShredded,
    UnknownLearner,
    learner_birth_dates,
    learner_profiles,
)
from infra.settings import Settings

PROFILE = LearnerProfile(
    organisation_id="district-7", given_name="Rosa", family_name="Delgado",
    born_on=date(2009, 4, 2), student_number="S-104233", sex=Sex.FEMALE,
    race_ethnicity=RaceEthnicity.HISPANIC_OR_LATINO, economically_disadvantaged=True,
    disability=False, english_learner=True, cte_concentrator=True,
    other_groups={"foster_care": "no"},
)


def test_profiles_round_trip_and_are_encrypted_at_rest(store_settings: Settings) -> None:
    vault = personal_data_vault(store_settings)
    learner_id = vault.register(PROFILE)
    assert vault.get(learner_id) == PROFILE
    assert vault.find_by_student_number("district-7", "S-104233") == learner_id
    assert vault.find_by_student_number("district-8", "S-104233") is None
    with vault.engine.connect() as conn:
        raw = conn.execute(select(learner_profiles)).mappings().one()
    for clear in (b"Rosa", b"Delgado", b"2009-04-02", b"S-104233", b"HispanicOrLatino"):
        assert clear not in raw["ciphertext"]
    assert "S-104233" not in str(raw["student_index"])


def test_updates_keep_the_id_and_the_blind_index(store_settings: Settings) -> None:
    vault = personal_data_vault(store_settings)
    learner_id = vault.register(PROFILE)
    graduated = LearnerProfile(**{**PROFILE.__dict__, "graduated_on": date(2027, 6, 1)})
    vault.update(learner_id, graduated)
    assert vault.get(learner_id).graduated_on == date(2027, 6, 1)
    assert vault.find_by_student_number("district-7", "S-104233") == learner_id


def test_shredding_makes_personal_data_unreadable(store_settings: Settings) -> None:
    vault = personal_data_vault(store_settings)
    keep, erase = vault.register(PROFILE), vault.register(PROFILE)
    with vault.engine.connect() as conn:  # an attacker's backup, taken before the shred
        backup = conn.execute(select(learner_profiles.c.ciphertext).where(
            learner_profiles.c.learner_id == erase)).scalar()
    vault.shred(erase, reason="record past its retention period")
    with pytest.raises(LearnerShredded):
        vault.get(erase)
    assert vault.is_shredded(erase)
    assert vault.get(keep) == PROFILE
    with pytest.raises(LearnerShredded):
        vault.shred(erase, reason="again")
    with pytest.raises(UnknownLearner):
        vault.get("00000000-0000-4000-8000-000000000000")
    assert backup is not None and b"Rosa" not in backup  # and its key is gone


def test_a_matched_minors_birth_date_is_sealed_and_shredded_with_the_learner(
        store_settings: Settings) -> None:
    """A learner matched through the API (no profile here) has their birth date kept under
    a key of their own, for the child-labour rules; shredding erases it like a profile."""
    vault = personal_data_vault(store_settings)
    vault.record_birth_date("api-learner-1", date(2010, 2, 28))
    assert vault.birth_date("api-learner-1") == date(2010, 2, 28)
    with vault.engine.connect() as conn:
        sealed = conn.execute(select(learner_birth_dates.c.ciphertext)).scalar()
    assert sealed is not None and b"2010" not in sealed
    registered = vault.register(PROFILE)
    assert vault.birth_date(registered) == PROFILE.born_on  # from the profile
    assert vault.birth_date("never-matched") is None

    vault.shred("api-learner-1", reason="record past its retention period")
    assert vault.birth_date("api-learner-1") is None
    with vault.engine.connect() as conn:
        assert conn.execute(select(learner_birth_dates)).first() is None
    with pytest.raises(LearnerShredded):
        vault.record_birth_date("api-learner-1", date(2010, 2, 28))


def test_the_master_key_is_needed(store_settings: Settings) -> None:
    vault = personal_data_vault(store_settings)
    learner_id = vault.register(PROFILE)
    import base64
    import os

    other = store_settings.model_copy(update={
        "personal_data_key": base64.b64encode(os.urandom(32)).decode()})
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):
        personal_data_vault(other).get(learner_id)


@pytest.mark.parametrize(("change", "code"), [
    ({"given_name": " "}, "name-required"),
    ({"born_on": date(2030, 1, 1)}, "birth-date-in-future"),
    ({"born_on": date(1890, 1, 1)}, "birth-date-implausible"),
    ({"graduated_on": date(2000, 1, 1)}, "graduation-before-birth"),
    ({"other_groups": {"foster care!": "yes"}}, "bad-group-name"),
])
def test_implausible_profiles_are_refused(change: dict, code: str) -> None:
    with pytest.raises(RuleViolated) as refused:
        check_profile(LearnerProfile(**{**PROFILE.__dict__, **change}), today=date(2026, 11, 23))
    assert refused.value.code == code


def test_profiles_as_of_a_past_moment(store_settings: Settings) -> None:
    import time
    from datetime import UTC, datetime

    vault = personal_data_vault(store_settings)
    learner_id = vault.register(PROFILE)
    time.sleep(0.01)
    before_update = datetime.now(UTC)
    time.sleep(0.01)
    vault.update(learner_id, LearnerProfile(**{**PROFILE.__dict__,
                                                "economically_disadvantaged": False}))
    then = vault.profiles_as_of({learner_id}, before_update)[learner_id]
    now = vault.profiles_as_of(None, datetime.now(UTC))[learner_id]
    assert then is not None and then.economically_disadvantaged is True
    assert now is not None and now.economically_disadvantaged is False
    vault.shred(learner_id, reason="retention")
    assert vault.profiles_as_of({learner_id}, datetime.now(UTC))[learner_id] is None


def test_wbl_learners_erase(store_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from services.cli import app

    vault = personal_data_vault(store_settings)
    learner_id = vault.register(PROFILE)
    monkeypatch.setenv("WBL_DATA_DIR", str(store_settings.data_dir))
    if store_settings.database_url:
        monkeypatch.setenv("WBL_DATABASE_URL", store_settings.database_url)
    runner = CliRunner()
    done = runner.invoke(app, ["learners", "erase", learner_id, "--reason", "retention"])
    assert done.exit_code == 0, done.output
    assert vault.is_shredded(learner_id)
    again = runner.invoke(app, ["learners", "erase", learner_id, "--reason", "retention"])
    assert again.exit_code == 1
