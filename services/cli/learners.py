"""``wbl learners erase``: crypto-shred a learner's personal data (docs/privacy.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from infra.personal_data import LearnerShredded, UnknownLearner
from services import bootstrap

app = typer.Typer(help="Learners' personal data.", no_args_is_help=True,
                  add_completion=False)


@app.command()
def erase(
    learner_id: Annotated[str, typer.Argument(help="The learner's pseudonymous id.")],
    reason: Annotated[str, typer.Option(help="Why (e.g. record past its retention period).")],
) -> None:
    """Delete the learner's key and profile: their personal data becomes unreadable
    everywhere, backups included. Their events stay, under the pseudonymous id."""
    if not reason.strip():
        typer.echo("give a reason", err=True)
        raise typer.Exit(2)
    vault = bootstrap.build_vault(bootstrap.build_settings())
    try:
        vault.shred(learner_id, reason=reason.strip())
    except UnknownLearner:
        typer.echo(f"no learner {learner_id} in the vault", err=True)
        raise typer.Exit(1) from None
    except LearnerShredded:
        typer.echo(f"learner {learner_id} was already erased", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"erased the personal data of learner {learner_id}")
