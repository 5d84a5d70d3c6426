"""``wbl credentials``: verify a credential file, show the published keys, rotate the key.

``verify`` answers as ``POST /credentials/verify`` does (same checks, same reasons), from
this deployment's key ring and status read model; exit code 0 when the credential verifies,
1 when it does not, 2 when the file is not JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from infra.settings import Settings
from projections.tables import metadata
from services import bootstrap
from services.credentials import keys as credential_keys

app = typer.Typer(help="Signed Open Badges 3.0 and CLR 2.0 credentials (docs/credentials.md).",
                  no_args_is_help=True, add_completion=False)


def _settings() -> Settings:
    settings = bootstrap.build_settings()
    return settings


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The credential (JSON, as handed out).",
                                         exists=True, dir_okay=False, readable=True)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdict as JSON.")] = False,
) -> None:
    """Check the credential's proof, its issuer's key, its dates and its status (and, for a
    CLR, every credential embedded in it); say why it fails."""
    from services.credentials.issuing import Credentials

    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        typer.echo(f"{file}: not a JSON document ({error})", err=True)
        raise typer.Exit(2) from None
    settings = _settings()
    engine = bootstrap.build_read_models(settings)
    try:
        metadata.create_all(engine)
        verdict = Credentials.build(settings, engine).verify(document)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(verdict.as_dict(), indent=2))
    else:
        for check in verdict.checks:
            typer.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.check}: {check.detail}")
        what = f"{verdict.kind or 'document'} {verdict.credential_id or ''}".strip()
        typer.echo(f"VERIFIED: {what}" if verdict.verified else f"NOT VERIFIED: {what}")
    if not verdict.verified:
        raise typer.Exit(1)


@app.command()
def keys() -> None:
    """Print the credential signing keys as a JWK set (current and retired), as
    ``GET /credentials/keys`` serves them."""
    typer.echo(json.dumps(credential_keys.key_ring(_settings()).jwks(), indent=2))


@app.command("rotate-key")
def rotate_key() -> None:
    """Embedded default: retire the signing key (its public key stays published, so what it
    signed still verifies) and make a new one. Restart the service afterwards. With
    WBL_CREDENTIAL_SIGNING_KEY set, rotate in the secret store instead (docs/credentials.md)."""
    try:
        old, new = credential_keys.rotate(_settings())
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"retired key x={old} (still published); new key x={new}")
