"""``wbl projections rebuild|check`` and ``wbl audit verify``.

``rebuild`` replays the topic from offset 0 into fresh tables while the live projector keeps
serving, then swaps them in atomically; ``check`` does the same replay and compares the
fresh tables with the live ones row by row (rebuilt == live), then drops them.
``audit verify`` recomputes the audit trail's hash chains and checks them against the signed
checkpoints; ``audit checkpoint`` publishes one now; ``audit keys`` prints the public keys.
See decisions 020, 021 and 041.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from infra.settings import Settings
from projections.audit_trail import Problem
from projections.registry import REGISTRY
from projections.tables import metadata
from services import bootstrap

if TYPE_CHECKING:
    from services.workers.rebuild import RebuildResult

projections_app = typer.Typer(help="Rebuild read models from the topic, or check them.",
                              no_args_is_help=True, add_completion=False)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True,
                        add_completion=False)

# The registry is the rebuild's PROJECTION_KINDS; services.workers.rebuild itself (Kafka's
# clients) is imported by the commands that rebuild (decision 075).
Names = Annotated[list[str] | None, typer.Argument(
    help=f"Projections to rebuild (default: all): {', '.join(REGISTRY)}.")]


def _settings() -> Settings:
    settings = bootstrap.build_settings()
    return settings


def _bootstrap(settings: Settings) -> str:
    from infra import kafka as kafka_io

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


SetBased = Annotated[bool, typer.Option(
    "--set-based", help="Stage the records up to the live positions in a table and compute "
                        "the fresh tables from it in one ordered pass each (decision 065), "
                        "then catch up and swap as usual.")]


def _run(names: list[str] | None, *, swap: bool, quiet: bool,
         set_based: bool = False) -> RebuildResult:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from services.workers.rebuild import Rebuild, RebuildFailed

    settings = _settings()
    servers = _bootstrap(settings)
    engine = bootstrap.build_read_models(settings)
    try:
        try:
            rebuild = Rebuild(engine, bootstrap=servers, topic=settings.topic,
                              names=list(names or []) or None, set_based=set_based,
                              heads_in_memory=settings.rebuild_heads_in_memory,
                              placements_apart=settings.rebuild_placements_apart)
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

            try:
                return rebuild.run(swap=swap, on_progress=on_progress)
            except RebuildFailed as error:
                typer.echo(f"{label} failed: {error}", err=True)
                raise typer.Exit(1) from error
    finally:
        engine.dispose()


def _how(result: RebuildResult) -> str:
    figures = result.set_based
    if figures is None:
        return ""
    apart = ("; the placements' read models folded in a child process"
             if "placements_apart" in figures.seconds else "")
    return (f" (set-based: {figures.staged} records staged, "
            f"{figures.distinct} distinct events computed set-wise{apart})")


@projections_app.command()
def rebuild(names: Names = None,
            quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
            set_based: SetBased = False) -> None:
    """Replay the topic from offset 0 into fresh tables and swap them in atomically."""
    result = _run(names, swap=True, quiet=quiet, set_based=set_based)
    typer.echo(f"rebuilt {', '.join(result.names)}: {result.events_applied} events in "
               f"{result.seconds:.1f} s, swapped in at offsets {result.positions}"
               f"{_how(result)}")


@projections_app.command()
def check(names: Names = None,
          quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
          set_based: SetBased = False) -> None:
    """Replay into fresh tables and compare them with the live ones (rebuilt == live)."""
    result = _run(names, swap=False, quiet=quiet, set_based=set_based)
    for d in result.differences:
        state = "equal" if d.first_difference is None else f"DIFFERENT: {d.first_difference}"
        typer.echo(f"{d.table}: live {d.live_rows} rows, rebuilt {d.rebuilt_rows} rows: {state}")
    if not result.equal:
        raise typer.Exit(1)
    typer.echo(f"rebuilt == live for {', '.join(result.names)} at offsets {result.positions} "
               f"({result.events_applied} events replayed in {result.seconds:.1f} s)"
               f"{_how(result)}")


def _where(p: Problem) -> str:
    """Where the entry is (``_whose`` adds whose record and which event)."""
    return "a chain head" if p.position is None else f"position {p.position}"


def _whose(p: Problem) -> str:
    """The placement (or other aggregate) and the event type: a log position alone does
    not tell an auditor whose record to look at."""
    if p.aggregate_id is None:
        return ""
    kind = "placement" if p.aggregate_type == "Placement" else (p.aggregate_type or "aggregate")
    return f" ({kind} {p.aggregate_id}, event {p.event_type})"


@audit_app.command()
def verify() -> None:
    """Recompute the audit trail's chains and check them against the signed checkpoints on
    WBL_AUDIT_CHECKPOINT_TOPIC; name the first altered, dropped, reordered or rewritten
    entry (placement, event type, position) and exit with code 1."""
    from services.workers import audit_checkpoints

    settings = _settings()
    engine = bootstrap.build_read_models(settings)
    try:
        metadata.create_all(engine)
        verdict = audit_checkpoints.verify_trail(settings, engine,
                                                 settings.kafka_bootstrap_servers)
    finally:
        engine.dispose()
    report = verdict.report
    for refusal in verdict.refused:
        typer.echo(f"REFUSED checkpoint: {refusal}")
    for ignored in verdict.ignored:
        typer.echo(f"ignored checkpoint: {ignored}", err=True)
    if report.problem is not None:
        p = report.problem
        typer.echo(f"TAMPERED: entry at {_where(p)} was {p.kind}{_whose(p)}: {p.detail} "
                   f"({report.entries} entries read)")
    if verdict.checkpoints_read is None:
        typer.echo("checkpoints not checked: set WBL_KAFKA_BOOTSTRAP_SERVERS to compare the "
                   "trail with its signed checkpoints", err=True)
    if not verdict.ok:
        raise typer.Exit(1)
    anchored = (f"; {report.anchored} of {verdict.checkpoints_read} signed checkpoints agree"
                f" (last at position {report.anchored_position})"
                if verdict.checkpoints_read is not None else "")
    typer.echo(f"audit trail intact: {report.entries} entries, {report.chained} in the global "
               f"chain, {report.aggregates} aggregate chains{anchored}")


@audit_app.command()
def checkpoint() -> None:
    """Sign the audit trail's global head now and publish it on WBL_AUDIT_CHECKPOINT_TOPIC
    (the projector also does so every WBL_AUDIT_CHECKPOINT_EVERY_EVENTS events or
    WBL_AUDIT_CHECKPOINT_EVERY_MINUTES minutes)."""
    from services.workers import audit_checkpoints

    settings = _settings()
    if not settings.kafka_bootstrap_servers:
        typer.echo("Set WBL_KAFKA_BOOTSTRAP_SERVERS: checkpoints go to the running service's "
                   "Kafka.", err=True)
        raise typer.Exit(2)
    engine = bootstrap.build_read_models(settings)
    try:
        metadata.create_all(engine)
        published = audit_checkpoints.publish_now(settings, settings.kafka_bootstrap_servers,
                                                  engine)
    finally:
        engine.dispose()
    if published is None:
        typer.echo("the audit trail's global chain is empty: nothing to anchor yet")
        return
    typer.echo(published.to_json().decode("utf-8"))


@audit_app.command()
def keys() -> None:
    """Print the public keys that verify checkpoints (JWK set: the signing key's and the
    retired ones). Before a rotation, add the current key's `x` to
    WBL_AUDIT_RETIRED_PUBLIC_KEYS so what it signed still verifies."""
    from services.workers import audit_checkpoints

    settings = _settings()
    typer.echo(json.dumps(audit_checkpoints.key_ring(settings).jwks(), indent=2))
