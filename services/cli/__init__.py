"""The ``wbl`` command: run the service (all in one, or one role per process).

Each command imports what only it needs (uvicorn, FastAPI, SciPy, rich, Kafka's clients, the
jobs, the workers) in its own body, so that ``wbl --help`` and every other command start
without them (decision 075, ``tests/integration/test_cli_start.py``). What Typer reads when
it builds the commands (option types such as ``ImportKind``, help texts) stays at the top.
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from infra.settings import Settings
from services.bootstrap import Runtime, build_settings, settle_heap, start_broker
from services.cli import projections as commands_projections
from services.cli import tokens as commands_tokens
from services.cli.approvals import app as approvals_app
from services.cli.credentials import app as credentials_app
from services.cli.export import app as export_app
from services.cli.imports import import_command
from services.cli.learners import app as learners_app
from services.cli.report import app as report_app
from services.cli.research import replay_command, research_app
from services.cli.users import app as users_app

if TYPE_CHECKING:
    from services.workers.supervisor import Workers

app = typer.Typer(help="wbl-ledger: the work-based-learning placement ledger.",
                  no_args_is_help=True, add_completion=False)
app.add_typer(commands_tokens.app, name="tokens")
app.add_typer(commands_projections.projections_app, name="projections")
app.add_typer(commands_projections.audit_app, name="audit")
app.add_typer(report_app, name="report")
app.add_typer(export_app, name="export")
app.add_typer(research_app, name="research")
app.add_typer(learners_app, name="learners")
app.add_typer(credentials_app, name="credentials")
app.add_typer(users_app, name="users")
app.add_typer(approvals_app, name="approvals")
app.command(name="import")(import_command)
app.command(name="replay")(replay_command)


def _settings(**overrides: object) -> Settings:
    return build_settings(**overrides)


def _build(settings: Settings, **roles: bool) -> Runtime:
    """Build the runtime, or exit with the reason (exit code 2) when it must not start."""
    from infra.kafka import TopicWouldLoseHistory

    try:
        return Runtime.build(settings, **roles)
    except TopicWouldLoseHistory as refused:
        typer.echo(f"wbl: refusing to start: {refused}", err=True)
        raise typer.Exit(2) from None


@app.command()
def run(
    port: Annotated[int | None, typer.Option(help="API port (WBL_API_PORT).")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data folder (WBL_DATA_DIR).")] = None,
    single_process: Annotated[bool, typer.Option(
        "--single-process", help="Relay and projector as threads of this process.")] = False,
) -> None:
    """Run the whole service: the API here, the relay and the projector as child processes.

    With no WBL_KAFKA_BOOTSTRAP_SERVERS it starts a local broker on a free 127.0.0.1 port and
    stops it on exit; with no WBL_DATABASE_URL it keeps SQLite files in WBL_DATA_DIR.
    Supervisors' approval digests are sent from a thread of this process every
    WBL_APPROVAL_DIGEST_MINUTES (``wbl approvals send-digests`` runs one at once).
    """
    import uvicorn

    from services.jobs.approval_digests import ApprovalDigests, start_schedule
    from services.web.parts import site_url
    from services.web.site import create_site

    settings = _settings(api_port=port, data_dir=data_dir)
    if single_process:
        runtime = _build(settings)
        runtime.start()
        workers = None
    else:
        runtime, workers = _build_with_workers(settings)
    stop_digests = threading.Event()
    digests: threading.Thread | None = None
    try:
        digests = start_schedule(
            ApprovalDigests.build(runtime.settings, runtime.ledger, runtime.engine,
                                  site_url(runtime.settings)),
            runtime.settings.approval_digest_minutes, stop_digests)
        server = uvicorn.Server(uvicorn.Config(
            create_site(runtime=runtime), host=settings.api_host, port=settings.api_port,
            log_level="warning", access_log=False))
        where = (
            "PostgreSQL" if settings.database_url
            else f"SQLite in {settings.data_dir.resolve()}"
        )
        broker = "local broker" if runtime.broker else "Kafka"
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal into the
        # handler it found; a no-op one lets us stop the relay, projector and broker cleanly.
        signal.signal(signal.SIGTERM, lambda *_: None)
        signal.signal(signal.SIGINT, lambda *_: None)
        typer.echo(
            f"wbl-ledger is up: pages at http://{settings.api_host}:{settings.api_port}/ "
            f"(accounts: wbl users create), API docs at /docs "
            f"(store: {where}; {broker} at {runtime.bootstrap}; Ctrl-C stops)", err=True)
        settle_heap()
        server.run()
    finally:
        stop_digests.set()
        if digests is not None:
            digests.join(timeout=30)
        if workers is not None:
            workers.stop()
        runtime.stop()


def _build_with_workers(settings: Settings) -> tuple[Runtime, Workers]:
    """The API here; the relay and the projector as child processes
    (services/workers/supervisor.py), on the local broker this process starts when none is
    configured."""
    from infra.kafka import TopicWouldLoseHistory
    from services.workers.supervisor import Workers

    broker = None
    runtime: Runtime | None = None
    workers: Workers | None = None
    try:
        try:  # refuse to start on a topic that would lose history, before serving anything
            settings, broker = start_broker(settings)
        except TopicWouldLoseHistory as refused:
            typer.echo(f"wbl: refusing to start: {refused}", err=True)
            raise typer.Exit(2) from None
        runtime = _build(settings, relay=False, projector=False)
        runtime.broker = broker  # stopped with the runtime
        workers = Workers(settings, runtime.engine)
        workers.start()
    except BaseException:
        # Leave nothing behind: a child that did start (the relay, when the projector
        # failed) must not keep running after `wbl run` gave up.
        if workers is not None:
            workers.stop()
        if runtime is not None:
            runtime.stop()  # stops the broker it was given
        elif broker is not None:
            broker.stop()
        raise
    return runtime, workers


@app.command()
def api(
    workers: Annotated[int, typer.Option(
        min=1, help="API processes serving the port; above 1 needs PostgreSQL "
        "(WBL_DATABASE_URL).")] = 1,
    port: Annotated[int | None, typer.Option(help="API port (WBL_API_PORT).")] = None,
) -> None:
    """Run only the HTTP API (production role; relay and projector run elsewhere).

    With --workers N, N processes serve the one port, each with its own runtime and aggregate
    cache; refused on the embedded SQLite store (docs/decisions/061)."""
    import uvicorn

    from services.cli.api_processes import refusal, serve
    from services.web.site import create_site

    settings = _settings(api_port=port)
    refused = refusal(settings, workers)
    if refused is not None:
        typer.echo(f"wbl: refusing to start: {refused}", err=True)
        raise typer.Exit(2)
    if workers > 1:
        serve(settings, workers)
        return
    site = create_site(settings)
    settle_heap()
    uvicorn.run(site, host=settings.api_host, port=settings.api_port,
                log_level="warning", access_log=False)


def _run_worker(role: str) -> None:
    """One worker role. As a child of `wbl run` it binds itself to its parent first, before
    the slow part of its start; then it waits for its lease (inside ``worker.run``)."""
    from services.workers.heartbeats import keep_beating, projector_view, relay_view
    from services.workers.supervisor import bind_to_parent

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    bind_to_parent(stop)
    settings = _settings()
    runtime = _build(settings, relay=role == "relay", projector=role == "projector")
    worker = runtime.relay if role == "relay" else runtime.projector
    assert worker is not None
    # The API reads this process's state from its heartbeat (services/workers/heartbeats.py).
    relay_, projector_ = runtime.relay, runtime.projector
    keep_beating(runtime.engine, role, (lambda: relay_view(relay_)) if relay_ is not None
                 else (lambda: projector_view(projector_)), stop)  # type: ignore[arg-type]
    if settings.metrics_port:
        from prometheus_client import start_http_server

        from services.workers.metrics import registry_for

        start_http_server(settings.metrics_port, registry=registry_for(runtime))
    settle_heap()
    try:
        worker.run(stop)
    finally:
        runtime.stop()


@app.command()
def relay() -> None:
    """Run only the relay: event store -> Kafka (production role)."""
    _run_worker("relay")


@app.command()
def projector() -> None:
    """Run only the projector: Kafka -> read models (production role)."""
    _run_worker("projector")




if __name__ == "__main__":
    app()
