"""What the pages need beyond the API, built once per app from the runtime's settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from infra.identity import OidcProvider, ProviderClient, providers_from_settings
from infra.mail import Mailer, mailer_from_settings
from infra.passwords import LinkSigner, Passwords, SignInThrottle, link_signing_key
from infra.settings import Settings
from services.api.auth import TokenKey
from services.web.accounts import LocalAccounts, SignInRecords
from services.web.sessions import PreSessionTokens, Sessions

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
"""Jinja2 with autoescaping on (Starlette's default for .html): every value a person typed
is escaped where it is shown."""


@dataclass
class WebParts:
    settings: Settings
    api_engine: Engine
    token_key: TokenKey
    sessions: Sessions
    accounts: LocalAccounts
    records: SignInRecords
    throttle: SignInThrottle
    links: LinkSigner
    pre_session: PreSessionTokens
    mailer: Mailer
    providers: dict[str, tuple[OidcProvider, ProviderClient]] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, api_engine: Engine, identity_key: bytes,
              token_key: TokenKey) -> WebParts:
        link_key = link_signing_key(settings)
        parts = cls(
            settings=settings, api_engine=api_engine, token_key=token_key,
            sessions=Sessions(api_engine, idle=timedelta(minutes=settings.session_idle_minutes),
                              absolute=timedelta(hours=settings.session_absolute_hours)),
            accounts=LocalAccounts(api_engine, identity_key, Passwords.from_settings(settings)),
            records=SignInRecords(api_engine, identity_key),
            throttle=SignInThrottle.from_settings(settings),
            links=LinkSigner(link_key), pre_session=PreSessionTokens(link_key),
            mailer=mailer_from_settings(settings))
        for provider in providers_from_settings(settings):
            parts.providers[provider.name] = (provider,
                                              ProviderClient.from_settings(provider, settings))
        return parts

    def close(self) -> None:
        for _, client in self.providers.values():
            client.close()

    def url(self, path: str) -> str:
        """An absolute link (for mail and for the provider's redirect URI)."""
        return site_url(self.settings) + path


def site_url(settings: Settings) -> str:
    if settings.site_url:
        return settings.site_url.rstrip("/")
    return f"http://{settings.api_host}:{settings.api_port}"


def web_parts(request: Request) -> WebParts:
    """The app's ``WebParts``, made on first use from the runtime the API serves."""
    parts: WebParts | None = getattr(request.app.state, "web", None)
    if parts is None:
        state = request.app.state
        parts = state.web = WebParts.build(state.runtime.settings, state.api_engine,
                                           state.identity_key, state.token_key)
    return parts
