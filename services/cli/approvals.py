"""``wbl approvals``: supervisors' approval digests (decision 055).

``send-digests`` runs once what ``wbl run`` runs every ``WBL_APPROVAL_DIGEST_MINUTES``: each
supervisor (and proxy approver) with hours pending gets one email with a signed, single-use
link per entry, and a reminder for entries pending longer than
``WBL_APPROVAL_REMINDER_DAYS``. For a deployment whose API runs as ``wbl api`` (no
``wbl run``), schedule this command (cron, a systemd timer, a Kubernetes CronJob).
"""

from __future__ import annotations

from typing import Annotated

import typer

from services import bootstrap

app = typer.Typer(help="Supervisors' approval links: digests and reminders.",
                  no_args_is_help=True, add_completion=False)


@app.command("send-digests")
def send_digests(
    data_dir: Annotated[str | None, typer.Option(help="Data folder (WBL_DATA_DIR).")] = None,
) -> None:
    """Mail each approver the hours pending their decision that are due (new, or a
    reminder); prints counts only."""
    from services.jobs.approval_digests import ApprovalDigests
    from services.web.parts import site_url

    settings = bootstrap.build_settings(data_dir=data_dir)
    ledger = bootstrap.build_ledger(settings)
    read_models = bootstrap.build_read_models(settings)
    try:
        run = ApprovalDigests.build(settings, ledger, read_models, site_url(settings)).send()
    finally:
        ledger.close()
        read_models.dispose()
    typer.echo(f"{run.messages} messages sent ({run.entries} entries, {run.reminders} "
               f"reminders); {run.without_contact} approvers with entries due have no "
               f"contact address; {run.failed} messages failed")
    if run.failed:
        raise typer.Exit(1)
