"""``wbl users``: local accounts for a district without an identity provider.

The person must be registered first (``POST /organisations/{org}/people``); the account
adds a login and an Argon2id password hash. The password is read from the terminal (never
an option, which would land in the shell's history) or from standard input with
``--password-stdin``. ``reset-link`` prints a signed single-use link to choose a new password,
for a coordinator to hand over; ``sign-ins`` lists the audit record of sign-ins.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from infra.api_tables import api_engine
from infra.passwords import Passwords
from infra.settings import Settings
from services import bootstrap

if TYPE_CHECKING:
    from services.web.accounts import LocalAccounts

app = typer.Typer(help="Local accounts for the web pages.", no_args_is_help=True,
                  add_completion=False)

DataDir = Annotated[str | None, typer.Option(help="Data folder (WBL_DATA_DIR).")]


def _accounts(data_dir: str | None) -> tuple[LocalAccounts, Settings]:
    from services.api.identities import identity_key
    from services.web.accounts import LocalAccounts

    settings = bootstrap.build_settings(data_dir=data_dir)
    engine = api_engine(settings, bootstrap.build_read_models(settings))
    return LocalAccounts(engine, identity_key(settings), Passwords.from_settings(settings)), \
        settings


@app.command()
def create(
    person_id: Annotated[str, typer.Option(help="The registered person's id.")],
    login: Annotated[str, typer.Option(help="The login name they will type.")],
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Make a local account for PERSON-ID (asks for the password twice)."""
    from services.web.accounts import AccountError

    accounts, _ = _accounts(data_dir)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password (12+ characters): ")
        if getpass.getpass("Again: ") != password:
            typer.echo("error: the two passwords differ", err=True)
            raise typer.Exit(2)
    try:
        accounts.create(person_id=person_id, login=login, password=password)
    except AccountError as error:
        typer.echo(f"error ({error.code}): {error.detail}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"account made for {person_id}")


@app.command("reset-link")
def reset_link(
    login: Annotated[str, typer.Option(help="The account's login name.")],
    data_dir: DataDir = None,
) -> None:
    """Print a single-use link to choose a new password (valid WBL_PASSWORD_RESET_LINK_MINUTES)."""
    from infra.passwords import LinkSigner, link_signing_key
    from services.web.parts import site_url

    accounts, settings = _accounts(data_dir)
    person_id = accounts.person_of(login)
    if person_id is None:
        typer.echo("error (unknown-account): no local account has that login", err=True)
        raise typer.Exit(2)
    signer = LinkSigner(link_signing_key(settings))
    token, _ = signer.issue("password-reset", {"person": person_id},
                            settings.password_reset_link_minutes * 60)
    typer.echo(site_url(settings) + f"/password-reset/{token}")


@app.command("sign-ins")
def sign_ins(
    person_id: Annotated[str | None, typer.Option(help="Only this person's.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    data_dir: DataDir = None,
) -> None:
    """The audit record of sign-ins, refusals, sign-outs and link uses, newest first."""
    from services.web.accounts import SignInRecords

    accounts, _ = _accounts(data_dir)
    records = SignInRecords(accounts.engine, accounts.key)
    for row in records.recent(limit, person_id=person_id):
        typer.echo(f"{row['at']}\t{row['kind']}\t{row['method']}\t{row['person_id'] or '-'}\t"
                   f"{row['reason'] or '-'}")
