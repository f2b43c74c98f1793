"""Settings of the web client, read from ``CIVIC_WEB_*`` (the link templates are the installation's, CIVIC_LINK_*)."""

from __future__ import annotations

from functools import lru_cache
from typing import Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import LinkSettings
from web.colours import check_on_white

DEV_SECRET = "dev-only-web-secret-change-me-in-production-0123456789"


class TenantSite(BaseModel):
    """How one tenant's pages look and what they link to (legal pages are the tenant's own)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    #: Header, buttons and links; refused below 4.5:1 against white.
    colour: str = "#1c355e"
    imprint_url: str | None = None
    privacy_url: str | None = None
    accessibility_url: str | None = None
    #: Where people write about the site (accessibility feedback, BITV 2.0 § 7).
    contact_email: str | None = None

    _colour = field_validator("colour")(lambda v: check_on_white(v))


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CIVIC_WEB_", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    #: Where the services' public HTTP APIs are: the gateway in compose/Kubernetes, this process in ``make up``.
    api_base_url: str = "http://127.0.0.1:8000"
    api_timeout_seconds: float = 10.0
    #: Connections kept open to the APIs (one pooled client per process).
    api_max_connections: int = 50
    #: Public answers (with an ETag and ``Cache-Control: public, max-age``) are reused this long without asking.
    api_fresh_seconds: float = 2.0
    #: Key of the CSRF tokens.
    secret: str = DEV_SECRET
    #: Secure cookies; unset: when CIVIC_PUBLIC_BASE_URL is https.
    cookie_secure: bool | None = None
    #: JSON: tenant -> {name, colour, imprint_url, privacy_url, accessibility_url, contact_email}.
    tenants: dict[str, TenantSite] = Field(default_factory=dict)
    #: Where ``/`` leads when set; otherwise ``/`` lists the configured tenants.
    default_tenant: str | None = None

    #: The installation's (read directly: the web process needs none of the services' secrets).
    public_base_url: str = Field("http://localhost:8000", validation_alias=AliasChoices("CIVIC_PUBLIC_BASE_URL"))
    production: bool = Field(False, validation_alias=AliasChoices("CIVIC_PRODUCTION"))
    links: LinkSettings = Field(default_factory=LinkSettings)
    #: Tests only: the clock file the services read too (shared/clock.py), so pages and APIs agree on "now".
    clock_file: str | None = Field(None, validation_alias=AliasChoices("CIVIC_CLOCK_FILE"))

    @model_validator(mode="after")
    def _installation(self) -> Self:
        if self.cookie_secure is None:
            self.cookie_secure = self.public_base_url.startswith("https://")
        if self.production and self.secret == DEV_SECRET:
            raise ValueError("CIVIC_WEB_SECRET must be set in production mode")
        return self

    def site(self, tenant: str) -> TenantSite:
        """The tenant's settings; a tenant without any is named by its slug and has no legal links."""
        return self.tenants.get(tenant) or TenantSite(name=tenant.replace("-", " ").title())


@lru_cache
def get_web_settings() -> WebSettings:
    return WebSettings()
