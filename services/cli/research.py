"""``wbl replay`` and ``wbl research export``: history for outcome studies."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from services import bootstrap
from services.jobs.replay import ReplayBy

research_app = typer.Typer(help="Pseudonymised exports for researchers.",
                           no_args_is_help=True, add_completion=False)


def replay_command(
    until: Annotated[str, typer.Option(help="The date (YYYY-MM-DD) to rebuild the state of.")],
    into: Annotated[Path, typer.Option(help="A new SQLite file for the replayed models.")],
    by: Annotated[ReplayBy, typer.Option(help="recorded: what the ledger knew by then; "
                                              "business: what had happened by then, as known "
                                              "now.")] = ReplayBy.RECORDED,
    projection: Annotated[list[str] | None, typer.Option(help="Only these projections.")] =
        None,
    force: Annotated[bool, typer.Option(help="Replace INTO if it exists.")] = False,
) -> None:
    """Rebuild read models as they stood on a date, into a separate store."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from services.jobs.replay import replay_into, sqlite_engine

    if into.exists():
        if not force:
            typer.echo(f"{into} exists; pass --force to replace it", err=True)
            raise typer.Exit(2)
        into.unlink()
    settings = bootstrap.build_settings()
    ledger = bootstrap.build_ledger(settings)
    engine = sqlite_engine(str(into))
    try:
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task("replaying", total=ledger.recorder.max_notification_id() or 0)
            result = replay_into(
                ledger, engine, until=date.fromisoformat(until), by=by,
                source=settings.event_source, names=projection,
                progress=lambda done, total: bar.update(task, completed=done, total=total))
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    finally:
        ledger.close()
        engine.dispose()
    typer.echo(f"replayed {result.events_applied} of {result.events_read} events "
               f"({by.value} time <= {until}) into {into}")


@research_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Folder for placements/learners .csv/.parquet.")],
    position: Annotated[int | None, typer.Option(help="Cut-off position.")] = None,
    as_of: Annotated[str | None, typer.Option(help="Cut-off recording time (ISO).")] = None,
) -> None:
    """Per-placement and per-learner facts, every person pseudonymised by a keyed hash."""
    from services.jobs.reporting import envelopes_until, resolve_cutoff
    from services.jobs.research import load_or_create_key, research_tables, write_tables

    settings = bootstrap.build_settings()
    ledger = bootstrap.build_ledger(settings)
    try:
        cutoff, _ = resolve_cutoff(ledger, position=position,
                                   as_of=datetime.fromisoformat(as_of) if as_of else None)
        key = load_or_create_key(settings.research_key,
                                 settings.data_dir / "research-pseudonym.key")
        placements, learners = research_tables(
            envelopes_until(ledger, cutoff, settings.event_source),
            bootstrap.build_vault(settings), key)
    finally:
        ledger.close()
    for path in write_tables(out, {"placements": placements, "learners": learners}):
        typer.echo(f"wrote {path}")
