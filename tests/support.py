"""Test helpers: read a whole topic, and reconcile it with the event store."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from services.ledger import Ledger


@dataclass(frozen=True)
class TopicRecord:
    partition: int
    offset: int
    key: bytes
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def aggregate_id(self) -> str:
        return self.headers["ce_subject"]

    @property
    def version(self) -> int:
        return int(self.headers["ce_aggregateversion"])


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[TopicRecord]:
    """Every record of every partition, read up to each partition's high watermark."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        (description,) = admin.describe_topics([topic])
        partitions = [p["partition_index"] for p in description["partitions"]]
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             group_id=None, auto_offset_reset="earliest")
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    records: list[TopicRecord] = []
    done: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(done) < len(tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=300).values():
                for r in batch:
                    records.append(TopicRecord(
                        r.partition, r.offset, r.key,
                        {k: v.decode() for k, v in r.headers}, json.loads(r.value)))
            for tp in tps:
                hw = consumer.highwater(tp)
                if hw is not None and consumer.position(tp) >= hw:
                    done.add(tp.partition)
    finally:
        consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def stored_events(ledger: Ledger) -> dict[tuple[str, int], int]:
    """(aggregate id, version) -> position, for every event in the store."""
    result: dict[tuple[str, int], int] = {}
    start = 0
    while True:
        batch = ledger.recorder.select_notifications(start=start, limit=1000,
                                                     inclusive_of_start=False)
        if not batch:
            return result
        for n in batch:
            result[(str(n.originator_id), n.originator_version)] = n.id
        start = batch[-1].id


@dataclass
class Reconciliation:
    records: int
    distinct: int
    duplicates: int
    stored: int
    """Events in the store (not the last position: PostgreSQL positions can have gaps
    where a transaction rolled back)."""


def reconcile(ledger: Ledger, records: list[TopicRecord]) -> Reconciliation:
    """Assert the topic holds exactly the stored history, each aggregate in version order
    within one partition, copies only of events already seen; return the counts."""
    store = stored_events(ledger)
    seen: dict[tuple[str, int], TopicRecord] = {}
    last_version: dict[str, int] = defaultdict(int)
    partition_of: dict[str, int] = {}
    duplicates = 0
    for r in records:  # sorted by partition, then offset
        assert partition_of.setdefault(r.aggregate_id, r.partition) == r.partition, (
            f"{r.aggregate_id} found in two partitions")
        key = (r.aggregate_id, r.version)
        if key in seen:
            duplicates += 1
            assert seen[key].body == r.body, f"two different bodies for {key}"
            continue
        assert r.version == last_version[r.aggregate_id] + 1, (
            f"{r.aggregate_id}: version {r.version} after {last_version[r.aggregate_id]} "
            f"(partition {r.partition} offset {r.offset})")
        last_version[r.aggregate_id] = r.version
        seen[key] = r
        assert int(r.headers["ce_position"]) == store.get(key), f"unknown or moved event {key}"
    missing = set(store) - set(seen)
    assert not missing, (
        f"{len(missing)} stored events are not on the topic, e.g. {sorted(missing)[:3]}")
    assert len(seen) == len(store)
    return Reconciliation(records=len(records), distinct=len(seen), duplicates=duplicates,
                          stored=len(store))


# -- a realistic workload through the ledger application --------------------------------

WORKLOAD_ORG = "org-1"


def placement_story(ledger: Ledger, *, learner: str, days: int = 5) -> int:
    """One placement's life up to approved hours; returns how many events it recorded."""
    from datetime import date, timedelta
    from decimal import Decimal

    from domain.actor import Actor, Role

    coordinator = Actor("coord-1", Role.COORDINATOR, WORKLOAD_ORG)
    supervisor = Actor("super-1", Role.SUPERVISOR, WORKLOAD_ORG)
    employer = Actor("employer-1", Role.EMPLOYER, WORKLOAD_ORG)
    me = Actor(learner, Role.LEARNER, WORKLOAD_ORG)
    before = ledger.recorder.max_notification_id() or 0
    opportunity = ledger.post_opportunity(
        coordinator, organisation_id=WORKLOAD_ORG, title="Machinist intern",
        employer_name="Acme", worksite="Main St", wbl_type="PaidInternship", paid=True,
        hourly_wage=Decimal("16.50"), starts_on=date(2026, 1, 5), ends_on=date(2026, 6, 30),
        posted_on=date(2026, 1, 2))
    placement = ledger.match_learner(
        coordinator, opportunity.aggregate_id, learner_id=learner, supervisor_id=supervisor.id,
        learner_born_on=date(2000, 1, 1), matched_on=date(2026, 1, 3)).aggregate_id
    for party, actor in (("learner", me), ("employer", employer), ("coordinator", coordinator)):
        ledger.sign_agreement(actor, placement, party=party, signed_on=date(2026, 1, 4))
    ledger.start_placement(coordinator, placement, started_on=date(2026, 1, 5))
    for day in range(days):
        logged = ledger.log_hours(me, placement, work_date=date(2026, 1, 5) + timedelta(day),
                                  minutes=240)
        ledger.approve_hours(supervisor, placement, entry_id=str(logged.created_id),
                             approved_on=date(2026, 1, 5) + timedelta(day + 1))
    return (ledger.recorder.max_notification_id() or 0) - before


def every_event_type(ledger: Ledger) -> None:
    """A history that records every event type the domain has (the contract test's input).

    Pins the ledger's "today" to 2024-06-03 so the business dates below are in the past.
    """
    from datetime import date
    from decimal import Decimal
    from uuid import UUID

    from domain.actor import Actor, Role

    ledger.today = lambda: date(2024, 6, 3)  # type: ignore[method-assign]
    org = "org-1"
    coordinator = Actor("coord-1", Role.COORDINATOR, org)
    learner = Actor("learner-1", Role.LEARNER)
    supervisor = Actor("super-1", Role.SUPERVISOR)
    employer = Actor("employer-1", Role.EMPLOYER)
    sponsor = Actor("sponsor-1", Role.SPONSOR)
    admin = Actor("admin-1", Role.ADMIN, org)

    def opportunity(**overrides: Any) -> UUID:
        details: dict[str, Any] = dict(
            organisation_id=org, title="Apprentice electrician", employer_name="Sparks",
            worksite="Main St", wbl_type="PaidInternship", paid=True,
            hourly_wage=Decimal("17.50"), starts_on=date(2024, 1, 8),
            ends_on=date(2025, 12, 31))
        details.update(overrides)
        return ledger.post_opportunity(coordinator, **details).aggregate_id

    def started(program_id: UUID | None = None, **overrides: Any) -> UUID:
        placement = ledger.match_learner(
            coordinator, opportunity(**overrides), learner_id=learner.id,
            supervisor_id=supervisor.id, learner_born_on=date(2000, 1, 1),
            program_id=program_id).aggregate_id
        for actor, party in ((learner, "learner"), (employer, "employer"),
                             (coordinator, "coordinator")):
            ledger.sign_agreement(actor, placement, party=party)
        ledger.start_placement(coordinator, placement, started_on=date(2024, 1, 8))
        return placement

    ledger.set_child_labour_policy(admin, org, policy="flag", reason="work-study exemption")
    ledger.set_child_labour_policy(admin, org, policy="refuse", reason="district rule")
    closed = opportunity()
    ledger.revise_opportunity(
        coordinator, closed, title="Apprentice electrician", employer_name="Sparks",
        worksite="Depot 4", paid=True, hourly_wage=Decimal("18.00"), capacity=2,
        starts_on=date(2024, 1, 8), ends_on=date(2025, 12, 31))
    ledger.close_opportunity(coordinator, closed, reason="filled")
    program = ledger.define_program(
        sponsor, sponsor_id="jatc", sponsor_name="JATC", title="Inside wireman",
        rapids_code="0159", onet_code="47-2111.00", approach="competency_based",
        ojl_hours=2000, work_processes={"Safety": 1000, "Wiring": 1000},
        competencies=["Wiring basics"],
        wage_schedule=[{"after_hours": 0, "hourly_wage": Decimal("18.00")}],
        pre_apprenticeship_hours_count=True).aggregate_id
    pre = started(pre_apprenticeship=True)
    entry = ledger.log_hours(learner, pre, work_date=date(2024, 1, 9), minutes=480).created_id
    ledger.approve_hours(supervisor, pre, entry_id=str(entry))
    ledger.complete_placement(coordinator, pre)
    apprenticeship = started(program_id=program, wbl_type="Apprenticeship")
    ledger.credit_pre_apprenticeship_hours(sponsor, apprenticeship, source_placement_id=pre)
    ledger.grant_prior_learning_credit(sponsor, apprenticeship, minutes=600,
                                       basis="prior_training")
    logged = ledger.log_hours(learner, apprenticeship, work_date=date(2024, 1, 10),
                              minutes=240, allocations={"Wiring": 200}).created_id
    ledger.approve_hours(supervisor, apprenticeship, entry_id=str(logged))
    wrong = ledger.log_hours(learner, apprenticeship, work_date=date(2024, 1, 11),
                             minutes=60).created_id
    ledger.reject_hours(supervisor, apprenticeship, entry_id=str(wrong), reason="not rota")
    fixed = ledger.correct_hours(coordinator, apprenticeship, entry_id=str(wrong),
                                 reason="right day", work_date=date(2024, 1, 12),
                                 minutes=60).created_id
    ledger.approve_hours(supervisor, apprenticeship, entry_id=str(fixed))
    ledger.evaluate_placement(supervisor, apprenticeship, scores={"Wiring basics": 4},
                              evaluator_role="supervisor", comments="Ready")
    ledger.sign_off_competency(supervisor, apprenticeship, competency="Wiring basics")
    ledger.suspend_placement(coordinator, apprenticeship, reason="injury")
    ledger.reinstate_placement(coordinator, apprenticeship, reason="recovered")
    ledger.complete_placement(coordinator, apprenticeship)
    issued = ledger.issue_credential(coordinator, apprenticeship,
                                     kind="ApprenticeshipCertificate", issuer="US DOL")
    reissued = ledger.reissue_credential(coordinator, apprenticeship,
                                         credential_id=str(issued.created_id),
                                         reason="Name corrected")
    ledger.revoke_credential(coordinator, apprenticeship, credential_id=str(reissued.created_id),
                             reason="Issued in error")
    withdrawn = started()
    ledger.withdraw_placement(learner, withdrawn, reason="moved", during_probation=True)

    # the organisation hierarchy: a state, two districts, a school that moves, one closed
    state_admin = Actor("admin-0", Role.ADMIN)
    ledger.register_organisation(state_admin, organisation_id="state-1", name="State",
                                 kind="state_agency")
    for district in ("district-1", "district-2"):
        ledger.register_organisation(state_admin, organisation_id=district, name=district,
                                     kind="district", parent_id="state-1")
    ledger.register_organisation(state_admin, organisation_id="school-1", name="School",
                                 kind="school", parent_id="district-1")
    ledger.rename_organisation(state_admin, "school-1", name="Lincoln High")
    ledger.move_organisation(state_admin, "school-1", parent_id="district-2",
                             reason="District boundaries redrawn")
    ledger.close_organisation(state_admin, "district-1", reason="Merged")

    # a school calendar, a young learner's week across placements, a WECEP agreement, and a
    # correction of approved hours that waits for approval
    ledger.record_school_year(coordinator, org, school_year="2023-2024",
                              first_day=date(2023, 8, 28), last_day=date(2024, 6, 7),
                              breaks=[{"name": "Winter break", "first_day": date(2023, 12, 22),
                                       "last_day": date(2024, 1, 5)}])
    ledger.record_school_day_exception(coordinator, org, day=date(2024, 2, 13),
                                       school_day=False, reason="Snow day")
    young = ledger.match_learner(
        coordinator, opportunity(), learner_id="learner-15", supervisor_id=supervisor.id,
        learner_born_on=date(2009, 1, 1)).aggregate_id
    for actor, party in ((Actor("learner-15", Role.LEARNER), "learner"),
                         (Actor("guardian-1", Role.GUARDIAN, org), "guardian"),
                         (employer, "employer"), (coordinator, "coordinator")):
        ledger.sign_agreement(actor, young, party=party)
    ledger.start_placement(coordinator, young, started_on=date(2024, 1, 8))
    ledger.record_work_experience_agreement(coordinator, young, signed_on=date(2024, 1, 8),
                                            reason="WECEP agreement")
    shift = ledger.log_hours(coordinator, young, work_date=date(2024, 2, 14),
                             minutes=120).created_id
    ledger.reject_hours(supervisor, young, entry_id=str(shift), reason="not that day")
    approved = ledger.log_hours(coordinator, young, work_date=date(2024, 2, 15),
                               minutes=120).created_id
    ledger.approve_hours(supervisor, young, entry_id=str(approved))
    correction = ledger.correct_hours(coordinator, young, entry_id=str(approved),
                                      reason="90 minutes", work_date=date(2024, 2, 15),
                                      minutes=90).created_id
    ledger.approve_hours(supervisor, young, entry_id=str(correction))
    # a proxy approver named by the coordinator rejects, and the supervisor approves, through
    # emailed links (decision 055)
    ledger.name_proxy_approver(coordinator, young, proxy_id="super-9",
                               reason="Supervisor on leave")
    late = ledger.log_hours(coordinator, young, work_date=date(2024, 2, 16),
                            minutes=60).created_id
    ledger.reject_hours(Actor("super-9", Role.SUPERVISOR), young, entry_id=str(late),
                        reason="not rota", link_id="link-0001")
    later = ledger.log_hours(coordinator, young, work_date=date(2024, 2, 20),
                             minutes=60).created_id
    ledger.approve_hours(supervisor, young, entry_id=str(later), link_id="link-0002")

    # and a file of historical records (FileImported)
    import os

    from sqlalchemy import create_engine

    from infra.personal_data import PersonalDataVault
    from services.importing import ImportKind, ImportOptions, import_file

    tracker = (
        "placement_ref,student_number,given_name,family_name,birth_date,title,employer_name,"
        "wbl_type,start_date,end_date,supervisor_id\n"
        "P-1,S-1,Rosa,Delgado,2005-04-02,Shadow,Acme,JobShadowing,2024-02-01,2024-02-01,sup-1\n")
    report = import_file(ledger, PersonalDataVault(create_engine("sqlite://"), os.urandom(32)),
                         coordinator, kind=ImportKind.PLACEMENTS, data=tracker.encode(),
                         file_name="tracker.csv", options=ImportOptions(organisation_id=org))
    assert report.recorded, report.rejected
