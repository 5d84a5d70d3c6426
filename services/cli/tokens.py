"""``wbl tokens``: make a bearer token for the HTTP API.

For local use and operators: it signs with the same key the API checks
(``WBL_JWT_SECRET``, or the embedded default's key file in ``WBL_DATA_DIR``), so run it
with the same settings as ``wbl run``. It prints only the token, for ``$(...)``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from domain.actor import Role
from services import bootstrap
from services.api.roles import TOKEN_ROLES

app = typer.Typer(help="Bearer tokens for the HTTP API.", no_args_is_help=True,
                  add_completion=False)


@app.command()
def create(
    actor_id: Annotated[str, typer.Option(help="The actor's pseudonymous id (never a name).")],
    role: Annotated[str, typer.Option(help="One of: " + ", ".join(r.value for r in TOKEN_ROLES))],
    organisation: Annotated[str | None, typer.Option(
        help="Organisation the actor acts for (required for coordinator, sponsor, guardian; "
             "a sponsor's organisation is its sponsor id).")] = None,
    ttl_hours: Annotated[int | None, typer.Option(
        help="Lifetime in hours (WBL_TOKEN_TTL_HOURS).")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data folder (WBL_DATA_DIR).")] = None,
) -> None:
    """Print a signed token for ACTOR-ID acting as ROLE."""
    from services.api.auth import issue_token, token_key

    settings = bootstrap.build_settings(data_dir=data_dir)
    try:
        parsed = Role(role)
        token = issue_token(token_key(settings), actor_id=actor_id, role=parsed,
                            organisation_id=organisation,
                            ttl_seconds=3600 * (ttl_hours or settings.token_ttl_hours))
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(token)
