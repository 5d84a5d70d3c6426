"""State reports end to end, on both stores and the real broker: a report as of a cut-off
is the same bytes after late corrections and profile changes; a new report shows the
difference; the feed is published on the reporting topic."""

from __future__ import annotations

import json
import time
from datetime import date

from kafka import KafkaConsumer

from domain.actor import Actor, Role
from domain.contract.canonical import canonical_json
from domain.learner import LearnerProfile, RaceEthnicity, Sex
from infra.database import personal_data_vault, read_model_engine
from infra.settings import Settings
from projections.state_report import ReportingPeriod
from services.bootstrap import build_ledger
from services.jobs.reporting import compute_state_report, publish_report, save_report

PERIOD = ReportingPeriod("2025-26", date(2025, 7, 1), date(2026, 6, 30))
COORD = Actor("coord-1", Role.COORDINATOR, "north")
SUP = Actor("sup-1", Role.SUPERVISOR, "north")


def test_reports_are_reproducible_and_published(store_settings: Settings, kafka_bootstrap: str,
                                                topic_name: str) -> None:
    ledger = build_ledger(store_settings)
    ledger.today = lambda: date(2026, 7, 1)  # type: ignore[method-assign]
    engine = read_model_engine(store_settings)
    vault = personal_data_vault(store_settings)
    admin = Actor("adm", Role.ADMIN)
    for org, kind, parent in (("state", "state_agency", None), ("north", "school", "state")):
        ledger.register_organisation(admin, organisation_id=org, name=org.title(), kind=kind,
                                     parent_id=parent)
    opportunity = ledger.post_opportunity(
        COORD, organisation_id="north", title="Intern", employer_name="Acme", worksite="W",
        wbl_type="PaidInternship", starts_on=date(2025, 9, 1), ends_on=date(2026, 5, 31),
        posted_on=date(2025, 8, 1)).aggregate_id
    entries = []
    for _ in range(3):
        learner = vault.register(LearnerProfile(
            organisation_id="north", given_name="G", family_name="F", born_on=date(2007, 1, 1),
            sex=Sex.FEMALE, race_ethnicity=RaceEthnicity.ASIAN, economically_disadvantaged=True,
            cte_concentrator=True, graduated_on=date(2026, 6, 1)))
        placement = ledger.match_learner(COORD, opportunity, learner_id=learner,
                                         supervisor_id=SUP.id, learner_born_on=date(2007, 1, 1),
                                         matched_on=date(2025, 8, 15)).aggregate_id
        me = Actor(learner, Role.LEARNER, "north")
        for actor, party in ((me, "learner"), (Actor("emp", Role.EMPLOYER, "north"),
                                                "employer"), (COORD, "coordinator")):
            ledger.sign_agreement(actor, placement, party=party, signed_on=date(2025, 8, 20))
        ledger.start_placement(COORD, placement, started_on=date(2025, 9, 1))
        entry = ledger.log_hours(me, placement, work_date=date(2025, 9, 2),
                                 minutes=240).created_id
        ledger.approve_hours(SUP, placement, entry_id=str(entry), approved_on=date(2025, 9, 3))
        entries.append((placement, str(entry), learner))

    def report(position: int | None = None) -> dict:
        return compute_state_report(ledger, engine, vault, store_settings, PERIOD,
                                    position=position, min_cell=1)

    first = report()
    cutoff = first["cutoff"]["position"]
    assert save_report(engine, first) == []
    time.sleep(0.01)
    # later: a correction is recorded and a learner's profile changes
    placement, entry, learner = entries[0]
    corrected = ledger.correct_hours(COORD, placement, entry_id=entry, reason="was 3 h",
                                     work_date=date(2025, 9, 2), minutes=180).created_id
    ledger.approve_hours(SUP, placement, entry_id=str(corrected), approved_on=date(2025, 9, 4))
    vault.update(learner, LearnerProfile(
        organisation_id="north", given_name="G", family_name="F", born_on=date(2007, 1, 1),
        sex=Sex.FEMALE, race_ethnicity=RaceEthnicity.ASIAN, economically_disadvantaged=False,
        cte_concentrator=True, graduated_on=date(2026, 6, 1)))

    again = report(position=cutoff)
    assert canonical_json(again) == canonical_json(first)
    assert again["content_hash"] == first["content_hash"]

    later = report()
    assert later["cutoff"]["position"] > cutoff
    changes = save_report(engine, later)
    approved = [c for c in changes if (c["organisation_id"], c["measure"], c["dimension"])
                == ("state", "approved_hours", "all")]
    assert approved == [{"organisation_id": "state", "measure": "approved_hours",
                         "dimension": "all", "group": "all", "before": "12.00",
                         "after": "11.00"}]  # the approved 3 h replace the 4 h

    reporting_topic = topic_name.replace(".v1", "-reports.v1")
    sent = publish_report(kafka_bootstrap, reporting_topic, later, "/test")
    assert sent == 2
    consumer = KafkaConsumer(reporting_topic, bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", group_id=None,
                             consumer_timeout_ms=2000)
    records = list(consumer)
    consumer.close()
    assert sorted(r.key.decode() for r in records) == ["north", "state"]
    for r in records:
        body = json.loads(r.value)
        assert body["content_hash"] == later["content_hash"]
        assert dict(r.headers)["ce_type"] == b"org.wbl-ledger.StateReportPublished"
    ledger.close()
    engine.dispose()
