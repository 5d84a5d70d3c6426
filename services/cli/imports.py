"""``wbl import``: bring historical records into the ledger from CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer

from domain.actor import Actor, Role
from services import bootstrap
from services.importing import ImportKind, ImportMode, ImportOptions, import_file


def import_command(
    kind: Annotated[ImportKind, typer.Argument(help="What the file holds.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    organisation: Annotated[str, typer.Option(help="Your organisation (and rows' default).")],
    actor_id: Annotated[str, typer.Option(help="Who imports: recorded with the import.")],
    mode: Annotated[ImportMode, typer.Option(help="Record the whole file or nothing, or "
                                                  "only the valid rows.")] =
        ImportMode.ALL_OR_NOTHING,
    program: Annotated[str | None, typer.Option(help="RAPIDS: program id.")] = None,
    supervisor: Annotated[str | None, typer.Option(help="RAPIDS: supervisor id.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write refused rows (CSV) here.")] = None,
) -> None:
    """Import placements, timesheets or RAPIDS registrations; every row is checked by the
    ledger's own rules. Importing the same file again records nothing."""
    settings = bootstrap.build_settings()
    vault = bootstrap.build_vault(settings)
    ledger = bootstrap.build_ledger(settings, birth_dates=vault)
    try:
        result = import_file(
            ledger, vault,
            Actor(actor_id, Role.COORDINATOR, organisation), kind=kind,
            data=file.read_bytes(), file_name=file.name, mode=mode,
            options=ImportOptions(organisation_id=organisation,
                                  program_id=UUID(program) if program else None,
                                  supervisor_id=supervisor))
    finally:
        ledger.close()
    summary = {k: v for k, v in result.to_dict().items() if k != "rejected"}
    summary["rejected_rows"] = len(result.rejected)
    typer.echo(json.dumps(summary, indent=2))
    if result.rejected:
        if report is not None:
            report.write_text(result.rejected_csv())
            typer.echo(f"refused rows written to {report}", err=True)
        else:
            typer.echo(result.rejected_csv(), err=True, nl=False)
    if result.rejected and not result.recorded:
        raise typer.Exit(1)
