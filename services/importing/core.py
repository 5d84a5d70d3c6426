"""One import: read the CSV, run each row in its own scope of a unit of work, and save
either every row or none (all-or-nothing), or just the rows that passed (valid-rows),
together with an ``ImportedFile`` record of where each event came from.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.actor import Actor
from domain.errors import DomainError, NotPermitted, RuleViolated
from domain.imports import ImportedFile
from infra.personal_data import PersonalDataVault
from services.ledger import Ledger


class ImportKind(StrEnum):
    PLACEMENTS = "placements"
    TIMESHEETS = "timesheets"
    RAPIDS = "rapids"


class ImportMode(StrEnum):
    ALL_OR_NOTHING = "all-or-nothing"
    VALID_ROWS = "valid-rows"


@dataclass(frozen=True)
class ImportOptions:
    organisation_id: str | None = None
    """Default organisation for rows that do not name one."""
    program_id: UUID | None = None
    """RAPIDS: the registered program the apprentices join."""
    supervisor_id: str | None = None
    """RAPIDS: the journeyworker who supervises (RAPIDS rows do not name one)."""
    confined: bool = False
    """Rows may name no organisation but ``organisation_id``: an import sent over HTTP by a
    coordinator stays within their own organisation, as every command of theirs does (the
    CLI, run by an operator on the server, may import for several)."""


@dataclass(frozen=True)
class RowRejection:
    row: int
    """Line number in the file (the header is line 1)."""
    code: str
    field: str | None
    detail: str


@dataclass
class ImportReport:
    file_name: str
    file_hash: str
    kind: str
    mode: str
    rows_total: int = 0
    rows_recorded: int = 0
    rows_unchanged: int = 0
    rejected: list[RowRejection] = field(default_factory=list)
    recorded: bool = False
    already_imported: bool = False
    position: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rejected_csv(self) -> str:
        """The validation report: one line per refused row, with the rule and the reason."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["row", "rule", "field", "reason"])
        for r in self.rejected:
            writer.writerow([r.row, r.code, r.field or "", r.detail])
        return out.getvalue()


@dataclass
class RowContext:
    """What a row handler may use."""

    ledger: Ledger
    vault: PersonalDataVault
    actor: Actor
    options: ImportOptions
    registered: list[str] = field(default_factory=list)
    """Learners registered in the vault by the current row (removed if the row fails)."""

    def organisation(self, row: dict[str, str]) -> str:
        org = (row.get("organisation_id") or "").strip() or self.options.organisation_id
        if not org:
            raise RuleViolated("Name the organisation (column organisation_id or the "
                               "--organisation option).", code="organisation-required",
                               field="organisation_id")
        if self.options.confined and org != self.options.organisation_id:
            raise NotPermitted(f"This import is for {self.options.organisation_id}; the row "
                               f"names {org}.", code="not-your-organisation",
                               field="organisation_id")
        return org


RowHandler = Callable[[RowContext, dict[str, str]], None]


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_utf8(data: bytes, block: int = 1 << 20) -> bool:
    """Whether ``data`` is UTF-8 text, checked a block at a time (never one whole string)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(data), block):
            decoder.decode(data[start:start + block])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def import_file(
    ledger: Ledger,
    vault: PersonalDataVault,
    actor: Actor,
    *,
    kind: ImportKind,
    data: bytes,
    file_name: str,
    mode: ImportMode = ImportMode.ALL_OR_NOTHING,
    options: ImportOptions | None = None,
) -> ImportReport:
    from services.importing.placements import REQUIRED as PLACEMENT_COLUMNS
    from services.importing.placements import placement_row
    from services.importing.rapids import REQUIRED as RAPIDS_COLUMNS
    from services.importing.rapids import rapids_row
    from services.importing.timesheets import REQUIRED as TIMESHEET_COLUMNS
    from services.importing.timesheets import timesheet_row

    handlers: dict[ImportKind, tuple[RowHandler, set[str]]] = {
        ImportKind.PLACEMENTS: (placement_row, PLACEMENT_COLUMNS),
        ImportKind.TIMESHEETS: (timesheet_row, TIMESHEET_COLUMNS),
        ImportKind.RAPIDS: (rapids_row, RAPIDS_COLUMNS),
    }
    digest = file_hash(data)
    report = ImportReport(file_name=file_name, file_hash=digest, kind=kind.value,
                          mode=mode.value)
    if ledger.exists(ImportedFile.create_id(digest)):
        report.already_imported = True
        return report
    if not _is_utf8(data):
        report.rejected.append(RowRejection(1, "not-utf8", None, "The file is not UTF-8 text."))
        return report
    # Read as a stream: decoding the whole file into one string doubled its size in memory.
    reader = csv.DictReader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig",
                                             newline=""))
    handler, required = handlers[kind]
    missing = sorted(required - set(reader.fieldnames or []))
    if missing:
        report.rejected.append(RowRejection(
            1, "missing-column", missing[0],
            f"The header lacks required columns: {', '.join(missing)}."))
        return report

    context = RowContext(ledger=ledger, vault=vault, actor=actor,
                         options=options or ImportOptions())
    registered: list[str] = []
    recorded_rows = False
    with ledger.unit_of_work() as unit:
        for line, row in enumerate(reader, start=2):
            report.rows_total += 1
            context.registered = []
            try:
                with unit.row_scope(line) as changes:
                    handler(context, {k: (v or "").strip() for k, v in row.items() if k})
            except DomainError as refused:
                report.rejected.append(RowRejection(line, refused.code, refused.field,
                                                    refused.detail))
                for learner_id in context.registered:
                    vault.forget_unused(learner_id)
                continue
            registered.extend(context.registered)
            if changes:
                report.rows_recorded += 1
                recorded_rows = True
            else:
                report.rows_unchanged += 1
        keep = recorded_rows and (mode is ImportMode.VALID_ROWS or not report.rejected)
        if keep:
            imported = ImportedFile.record(
                actor=actor, file_hash=digest, file_name=file_name, kind=kind.value,
                mode=mode.value, rows_total=report.rows_total, rows=[],
                rejected=[asdict(r) for r in report.rejected], imported_on=ledger.today())
            # ``rows`` is filled from the unit a row at a time as the event is written: a
            # list of every row was most of a large import's memory (decision 067).
            report.position = ledger.save_unit(unit, imported, provenance="rows")
            report.recorded = True
    if not keep:
        for learner_id in registered:
            vault.forget_unused(learner_id)
        report.rows_recorded = 0
    return report


# -- cell parsers shared by the row handlers ------------------------------------------

def text(row: dict[str, str], column: str, *, required: bool = True) -> str:
    value = row.get(column, "")
    if required and not value:
        raise RuleViolated(f"Column {column!r} is empty.", code="value-required", field=column)
    return value


def day(row: dict[str, str], column: str, *, required: bool = True) -> date | None:
    value = text(row, column, required=required)
    if not value:
        return None
    for parse in (date.fromisoformat, _us_date):
        try:
            return parse(value)
        except ValueError:
            continue
    raise RuleViolated(f"{value!r} in {column!r} is not a date (YYYY-MM-DD or MM/DD/YYYY).",
                       code="bad-date", field=column)


def required_day(row: dict[str, str], column: str) -> date:
    found = day(row, column)
    assert found is not None  # required: day() refused an empty cell
    return found


def _us_date(value: str) -> date:
    month, day_, year = value.split("/")
    return date(int(year), int(month), int(day_))


def flag(row: dict[str, str], column: str, default: bool | None = False) -> bool | None:
    value = row.get(column, "").lower()
    if not value:
        return default
    if value in ("1", "y", "yes", "true", "t"):
        return True
    if value in ("0", "n", "no", "false", "f"):
        return False
    raise RuleViolated(f"{value!r} in {column!r} is not yes/no.", code="bad-flag", field=column)
