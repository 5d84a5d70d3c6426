"""``wbl projections rebuild|check`` and ``wbl audit verify``.

``rebuild`` replays the topic from offset 0 into fresh tables while the live projector keeps
serving, then swaps them in atomically; ``check`` does the same replay and compares the
fresh tables with the live ones row by row (rebuilt == live), then drops them.
``audit verify`` recomputes the audit trail's hash chains. See decisions 020 and 021.
"""

from __future__ import annotations

from typing import Annotated

import typer

from infra import kafka as kafka_io
from infra import logs
from infra.database import read_model_engine
from infra.settings import Settings
from projections.audit_trail import AuditTrailProjection
from projections.tables import metadata
from services.projector import PROJECTION_KINDS, Rebuild, RebuildResult

projections_app = typer.Typer(help="Rebuild read models from the topic, or check them.",
                              no_args_is_help=True, add_completion=False)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True,
                        add_completion=False)

Names = Annotated[list[str] | None, typer.Argument(
    help=f"Projections to rebuild (default: all): {', '.join(PROJECTION_KINDS)}.")]


def _settings() -> Settings:
    settings = Settings()
    logs.configure(settings.log_level)
    return settings


def _bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap_servers:
        typer.echo("Set WBL_KAFKA_BOOTSTRAP_SERVERS: a rebuild reads the topic of a running "
                   "service (the embedded local broker lives inside `wbl run`).", err=True)
        raise typer.Exit(2)
    admin = kafka_io.admin_client(settings.kafka_bootstrap_servers)
    try:
        if not kafka_io.wait_for_topic(admin, settings.topic, timeout=5):
            typer.echo(f"Topic {settings.topic!r} not found.", err=True)
            raise typer.Exit(2)
    finally:
        admin.close()
    return settings.kafka_bootstrap_servers


def _run(names: list[str] | None, *, swap: bool, quiet: bool) -> RebuildResult:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    settings = _settings()
    bootstrap = _bootstrap(settings)
    engine = read_model_engine(settings)
    try:
        try:
            rebuild = Rebuild(engine, bootstrap=bootstrap, topic=settings.topic,
                              names=list(names or []) or None)
        except ValueError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(2) from error
        label = "rebuilding" if swap else "checking"
        with Progress(TextColumn(f"{label} {', '.join(rebuild.names)}"), BarColumn(),
                      MofNCompleteColumn(), TextColumn("offsets"), TimeRemainingColumn(),
                      disable=quiet, transient=False) as bar:
            task = bar.add_task(label, total=None)

            def on_progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return rebuild.run(swap=swap, on_progress=on_progress)
    finally:
        engine.dispose()


@projections_app.command()
def rebuild(names: Names = None,
            quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False) -> None:
    """Replay the topic from offset 0 into fresh tables and swap them in atomically."""
    result = _run(names, swap=True, quiet=quiet)
    typer.echo(f"rebuilt {', '.join(result.names)}: {result.events_applied} events in "
               f"{result.seconds:.1f} s, swapped in at offsets {result.positions}")


@projections_app.command()
def check(names: Names = None,
          quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False) -> None:
    """Replay into fresh tables and compare them with the live ones (rebuilt == live)."""
    result = _run(names, swap=False, quiet=quiet)
    for d in result.differences:
        state = "equal" if d.first_difference is None else f"DIFFERENT: {d.first_difference}"
        typer.echo(f"{d.table}: live {d.live_rows} rows, rebuilt {d.rebuilt_rows} rows: {state}")
    if not result.equal:
        raise typer.Exit(1)
    typer.echo(f"rebuilt == live for {', '.join(result.names)} at offsets {result.positions} "
               f"({result.events_applied} events replayed in {result.seconds:.1f} s)")


@audit_app.command()
def verify() -> None:
    """Recompute the audit trail's chains; report the first altered, dropped or reordered
    entry (exit code 1)."""
    settings = _settings()
    engine = read_model_engine(settings)
    try:
        metadata.create_all(engine)
        with engine.connect() as conn:
            report = AuditTrailProjection().verify(conn)
    finally:
        engine.dispose()
    if report.problem is not None:
        p = report.problem
        where = f"position {p.position}" if p.position is not None else "a chain head"
        typer.echo(f"TAMPERED: entry at {where} was {p.kind}: {p.detail} "
                   f"({report.entries} entries read)")
        raise typer.Exit(1)
    typer.echo(f"audit trail intact: {report.entries} entries, {report.chained} in the global "
               f"chain, {report.aggregates} aggregate chains")
