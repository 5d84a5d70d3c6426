"""``wbl report state``: the state reporting feed for one period, as of a cut-off;
``wbl report audit FILE``: the suppression audit any reviewer can rerun on a report file."""

from __future__ import annotations

import csv
import json
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from services import bootstrap

app = typer.Typer(help="Reports for states and funders.", no_args_is_help=True,
                  add_completion=False)


@app.command()
def state(
    period: Annotated[str, typer.Option(help="Name of the reporting period, e.g. 2025-26.")],
    starts: Annotated[str, typer.Option(help="First day of the period (YYYY-MM-DD).")],
    ends: Annotated[str, typer.Option(help="Last day of the period (YYYY-MM-DD).")],
    position: Annotated[int | None, typer.Option(help="Cut-off: a position in the log.")] =
        None,
    as_of: Annotated[str | None, typer.Option(help="Cut-off: the last event recorded by "
                                                   "this time (ISO 8601).")] = None,
    min_cell: Annotated[int, typer.Option(help="Suppress cells under this many learners.")] =
        10,
    group: Annotated[list[str] | None, typer.Option(help="An extra learner group to "
                                                         "disaggregate by (repeatable).")] =
        None,
    output: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
    out: Annotated[Path | None, typer.Option(help="Write the report here.")] = None,
    save: Annotated[bool, typer.Option(help="Keep it, and show what changed since the "
                                            "last one kept for this period.")] = True,
    publish: Annotated[bool, typer.Option(help="Publish on WBL_REPORTING_TOPIC.")] = False,
    workers: Annotated[int, typer.Option(min=0,
                                         help="Processes for the suppression's large groups "
                                              "(default: one per core); the report is the "
                                              "same for any number.")] = 0,
) -> None:
    """Compute the state feed for PERIOD as of a cut-off (default: everything recorded)."""
    from projections.state_report import HierarchyUnresolved, ReportingPeriod, to_csv_rows
    from services.jobs.reporting import compute_state_report, publish_report, save_report

    settings = bootstrap.build_settings()
    ledger = bootstrap.build_ledger(settings)
    engine = bootstrap.build_read_models(settings)
    try:
        try:
            report = compute_state_report(
                ledger, engine, bootstrap.build_vault(settings), settings,
                ReportingPeriod(period, date.fromisoformat(starts), date.fromisoformat(ends)),
                position=position, as_of=datetime.fromisoformat(as_of) if as_of else None,
                min_cell=min_cell, other_groups=tuple(group or ()),
                workers=workers or os.cpu_count() or 1)
        except HierarchyUnresolved as refused:
            typer.echo(f"wbl report: refusing to report: {refused}", err=True)
            raise typer.Exit(2) from None
        changes = save_report(engine, report) if save else []
        if publish:
            if not settings.kafka_bootstrap_servers:
                typer.echo("--publish needs WBL_KAFKA_BOOTSTRAP_SERVERS", err=True)
                raise typer.Exit(2)
            sent = publish_report(settings.kafka_bootstrap_servers, settings.reporting_topic,
                                  report, settings.event_source)
            typer.echo(f"published {sent} records to {settings.reporting_topic}", err=True)
    finally:
        ledger.close()
        engine.dispose()
    target = out.open("w", newline="") if out else sys.stdout
    if output == "csv":
        csv.writer(target).writerows(to_csv_rows(report))
    else:
        target.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if out:
        target.close()
    typer.echo(f"cut-off position {report['cutoff']['position']}, "
               f"{report['content_hash']}; {len(changes)} figures changed since the last "
               f"report for {period}", err=True)
    for change in changes[:50]:
        typer.echo(f"  {change['organisation_id']} {change['measure']} "
                   f"{change['dimension']}={change['group']}: {change['before']} -> "
                   f"{change['after']}", err=True)


@app.command()
def audit(
    file: Annotated[Path, typer.Argument(help="A report as `wbl report state` or "
                                              "GET /reports/state wrote it (JSON).",
                                         exists=True, dir_okay=False)],
    show: Annotated[int, typer.Option(help="How many suppressed figures to list.")] = 20,
) -> None:
    """Check that no suppressed figure of FILE can be narrowed down: for each one, an
    integer linear program (HiGHS) over every published figure finds its lowest and highest
    possible value; the range must be at least min_cell wide (hours: min_cell hours).
    Exit 0 when every figure is protected, 1 when one is not."""
    from projections.suppression import audit_report

    report = json.loads(file.read_text())
    findings = audit_report(report)
    narrow = [f for f in findings if not f.protected]
    typer.echo(json.dumps({
        "content_hash": report.get("content_hash"),
        "min_cell": report["suppression"]["min_cell"],
        "published": sum(1 for r in report["figures"] if not r["suppressed"]),
        "suppressed": len(findings), "protected": len(findings) - len(narrow),
        "not_protected": [f.as_json() for f in narrow],
        "tightest": [f.as_json() for f in sorted(
            findings, key=lambda f: (f.highest is None,
                                     (f.highest or 0) - f.lowest - f.needed))[:show]],
    }, indent=2))
    if narrow:
        raise typer.Exit(1)
