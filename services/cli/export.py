"""``wbl export rapids``: registered apprentices and their status changes in the RAPIDS
bulk-upload layout, as of a cut-off (services/rapids_export.py)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from services import bootstrap

app = typer.Typer(help="Exports for other systems.", no_args_is_help=True,
                  add_completion=False)


@app.command()
def rapids(
    out_dir: Annotated[Path, typer.Option(help="Folder for registrations.csv and "
                                               "status-changes.csv.")],
    sponsor_id: Annotated[str | None, typer.Option(help="Only this sponsor's programs.")] =
        None,
    position: Annotated[int | None, typer.Option(help="Cut-off: a position in the log.")] =
        None,
    details: Annotated[Path | None, typer.Option(
        help="CSV of the sponsor's own upload fields the ledger does not keep (address, "
             "employment status, veteran status, education, prior wages, RTI provider, "
             "wage schedule, student status): a learner_id column, then upload columns.",
        exists=True, dir_okay=False)] = None,
) -> None:
    """Write the RAPIDS registrations and status changes (credit granted, completion,
    suspension, reinstatement, cancellation with cause) recorded up to the cut-off."""
    from services.jobs.rapids_export import (
        RAPIDS_EVENTS,
        rapids_export,
        status_fields,
        to_csv,
        upload_fields,
    )
    from services.jobs.reporting import envelopes_until, resolve_cutoff

    settings = bootstrap.build_settings()
    ledger = bootstrap.build_ledger(settings)
    try:
        cutoff, recorded = resolve_cutoff(ledger, position=position)
        events = list(envelopes_until(ledger, cutoff, settings.event_source, RAPIDS_EVENTS))
    finally:
        ledger.close()
    profiles = bootstrap.build_vault(settings).profiles_as_of(None, recorded)
    supplied: dict[str, dict[str, str]] = {}
    if details is not None:
        with details.open(newline="") as handle:
            for row in csv.DictReader(handle):
                supplied[row.pop("learner_id")] = row
    export = rapids_export(events, profiles, sponsor_id=sponsor_id, details=supplied)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "registrations.csv").write_text(to_csv(export.registrations, upload_fields()))
    (out_dir / "status-changes.csv").write_text(to_csv(export.status_changes,
                                                       status_fields()))
    typer.echo(f"cut-off position {cutoff}: {len(export.registrations)} registrations, "
               f"{len(export.status_changes)} status changes", err=True)
    if export.missing:
        fields = sorted({m["field"] for m in export.missing})
        typer.echo(f"{len(export.missing)} required upload fields are empty (supply them "
                   f"with --details): {', '.join(fields)}", err=True)
