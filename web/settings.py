"""Settings of the web client, read from ``CIVIC_WEB_*`` (the link templates are the installation's, CIVIC_LINK_*)."""

from __future__ import annotations

from functools import lru_cache
from typing import Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import DEV_JWT_SECRET, LinkSettings
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

    # -- the staff console (web/console/, docs/console.md) ---------------------------------------------
    #: Hours a console sign-in lasts (checked on the server from the signed cookie); then sign in again.
    session_hours: float = Field(8.0, gt=0, le=24)
    #: Key the web process signs the services' staff tokens with: the services' CIVIC_JWT_SECRET (HS256), or
    #: the private key (PEM) whose public half the services have as CIVIC_JWT_PUBLIC_KEY. CIVIC_JWT_SECRET
    #: itself is read when this is unset (one process, or a shared secret). Outside production the
    #: development secret of shared/settings.py.
    token_key: str = Field(DEV_JWT_SECRET, validation_alias=AliasChoices("CIVIC_WEB_TOKEN_KEY", "CIVIC_JWT_SECRET"))
    #: The services' CIVIC_JWT_ALGORITHM (HS256, or RS256/ES256/EdDSA with a private key above).
    token_algorithm: str = Field(
        "HS256",
        validation_alias=AliasChoices("CIVIC_WEB_TOKEN_ALGORITHM", "CIVIC_JWT_ALGORITHM"),
    )
    #: Minutes a staff token for the services lives (minted per signed-in person and tenant, reused briefly).
    token_minutes: float = Field(5.0, gt=0, le=60)
    #: OpenID Connect: the provider's issuer URL (discovery at <issuer>/.well-known/openid-configuration).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    #: Confidential clients (client_secret_basic or _post, as the provider says); unset: a public client (PKCE).
    oidc_client_secret: str | None = None
    oidc_scopes: str = "openid profile email"
    #: Claim naming the person's tenant: a string or a list (several tenants). A name with dots is also read
    #: as a path (``realm_access.roles``) when no claim has the whole name.
    oidc_tenant_claim: str = "tenant"
    oidc_roles_claim: str = "roles"
    #: JSON: the provider's role or group names -> civic roles (staff, checkin, editor, admin); unset: as they are.
    oidc_role_map: dict[str, str] = Field(default_factory=dict)
    #: JSON: the provider's tenant values (a group id, say) -> civic tenants; unset: values as they are.
    oidc_tenant_map: dict[str, str] = Field(default_factory=dict)
    #: Where the provider sends people back; unset: CIVIC_PUBLIC_BASE_URL + /verwaltung/anmelden/antwort.
    oidc_redirect_uri: str | None = None
    #: Seconds to allow for clocks that differ between this process and the provider (``iat``/``exp``).
    oidc_leeway_seconds: int = Field(60, ge=0, le=600)

    @model_validator(mode="after")
    def _installation(self) -> Self:
        if self.cookie_secure is None:
            self.cookie_secure = self.public_base_url.startswith("https://")
        if self.production and self.secret == DEV_SECRET:
            raise ValueError("CIVIC_WEB_SECRET must be set in production mode")
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("CIVIC_WEB_OIDC_CLIENT_ID must be set with CIVIC_WEB_OIDC_ISSUER")
        # Without a sign-in the console is closed in production (the local sign-in is refused there), so the
        # citizens' pages need no token key; with one, staff tokens must never be signed with the public
        # development key.
        if self.production and self.oidc_issuer and self.token_key == DEV_JWT_SECRET:
            raise ValueError("CIVIC_WEB_TOKEN_KEY (or CIVIC_JWT_SECRET) must be set in production mode")
        if self.oidc_issuer and self.production and not self.oidc_issuer.startswith("https://"):
            raise ValueError("CIVIC_WEB_OIDC_ISSUER must be an https:// address in production mode")
        return self

    @property
    def oidc_redirect(self) -> str:
        return self.oidc_redirect_uri or self.public_base_url.rstrip("/") + "/verwaltung/anmelden/antwort"

    def site(self, tenant: str) -> TenantSite:
        """The tenant's settings; a tenant without any is named by its slug and has no legal links."""
        return self.tenants.get(tenant) or TenantSite(name=tenant.replace("-", " ").title())


@lru_cache
def get_web_settings() -> WebSettings:
    return WebSettings()
