"""HTTP API under /api/notifications/: public subscribe, confirm and unsubscribe; staff deliveries and webhooks."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from services.notifications import domain, repository
from services.notifications.repository import EmailDelivery
from services.notifications.settings import NotificationSettings
from services.notifications.webhooks import check_url, endpoint_json
from shared.http import ratelimit
from shared.http.auth import Staff
from shared.http.email import Email
from shared.http.openapi import problems
from shared.http.problems import Problem
from shared.links import link
from shared.privacy import person_hmac
from shared.service import context_of

NAME = "notifications"


class SubscribeIn(BaseModel):
    tenant: str = Field(min_length=1, max_length=63)
    email: Email
    process_id: UUID
    locale: Literal["de", "en"] = "de"


class SubscriptionOut(BaseModel):
    state: Literal["pending", "confirmed", "unsubscribed"]
    detail: str


class DeliveryOut(BaseModel):
    id: UUID
    cause_event_id: UUID
    channel: str
    template: str
    transactional: bool
    state: str
    attempts: int
    next_attempt_at: datetime
    last_answer: str | None
    registration_id: UUID | None
    endpoint_id: UUID | None
    address_kept: bool
    created_at: datetime
    sent_at: datetime | None


class WebhookIn(BaseModel):
    url: str = Field(min_length=1, max_length=2000)
    event_types: list[Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[a-z0-9_.*]+$")]] = Field(
        min_length=1, max_length=50
    )
    description: str | None = Field(default=None, max_length=500)


class WebhookOut(BaseModel):
    id: UUID
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once: verify signatures with it (Standard Webhooks, whsec_ prefix).")


def _delivery(row: Any) -> DeliveryOut:
    return DeliveryOut(
        id=row["id"],
        cause_event_id=row["cause_event_id"],
        channel=row["channel"],
        template=row["template"],
        transactional=row["transactional"],
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_answer=row["last_answer"],
        registration_id=row["registration_id"],
        endpoint_id=row["endpoint_id"],
        address_kept=row["address"] is not None,
        created_at=row["created_at"],
        sent_at=row["sent_at"],
    )


# Public writes (shared/http/ratelimit.py): per client address, and per target mailbox for the opt-in mail.
SUBSCRIBE_PER_CLIENT = ratelimit.Rule("subscription-client", burst=20, per_hour=20)
SUBSCRIBE_PER_MAILBOX = ratelimit.Rule("subscription-mailbox", burst=3, per_hour=3)
LINKS_PER_CLIENT = ratelimit.Rule("subscription-link-client", burst=60, per_hour=300)

_BAD_LINK = Problem(400, "Invalid link", type_="invalid-link", detail="The link is incomplete or was altered.")


def build_router(settings: NotificationSettings) -> APIRouter:
    router = APIRouter(tags=["notifications"])

    # -- public ----------------------------------------------------------------------------------------

    @router.post("/subscriptions", status_code=202, response_model=SubscriptionOut)
    async def subscribe(body: SubscribeIn, request: Request) -> SubscriptionOut:
        """Subscribe an address to a process's news; a mail with a confirmation link is sent (double opt-in).
        Only processes the service has heard of (content's events) can be subscribed to."""
        ctx = context_of(request, NAME)
        await ratelimit.enforce(
            request,
            ctx,
            (SUBSCRIBE_PER_CLIENT, ratelimit.CLIENT),
            (SUBSCRIBE_PER_MAILBOX, ratelimit.mailbox(body.email)),
        )
        if not await repository.process_known(ctx.pool, body.tenant, body.process_id):
            raise Problem(
                422,
                "Invalid request",
                type_="validation",
                detail="There is no such participation process to subscribe to.",
                errors=[
                    {"in": "body", "pointer": "/process_id", "detail": "no such process", "code": "unknown_process"}
                ],
            )
        now = ctx.clock.now()
        key = domain.recipient_key(settings.signing_secret, body.email)
        async with ctx.pool.acquire() as conn, conn.transaction():
            sid, _state, mail = await repository.subscribe(
                conn,
                tenant=body.tenant,
                address=body.email,
                email_sha256=domain.email_sha256(body.email),
                email_hmac=person_hmac(ctx.settings.privacy_secret, "email", body.email),
                recipient_key=key,
                locale=body.locale,
                process_id=body.process_id,
                now=now,
            )
            if mail:
                await repository.enqueue_email(
                    conn,
                    EmailDelivery(
                        tenant=body.tenant,
                        cause_event_id=uuid4(),
                        recipient_key=key,
                        address=body.email,
                        template="subscription_confirm",
                        transactional=True,
                        locale=body.locale,
                        subscription_id=sid,
                    ),
                    now,
                    repository.Cap(
                        domain.mailbox_key(settings.signing_secret, body.email), settings.unconfirmed_mails_per_hour
                    ),
                )
        # The same answer whether the address was known or not: nobody learns who subscribed.
        return SubscriptionOut(state="pending", detail="Please follow the link in the mail we sent.")

    async def _confirm(request: Request, token: str) -> SubscriptionOut:
        ctx = context_of(request, NAME)
        await ratelimit.enforce(request, ctx, (LINKS_PER_CLIENT, ratelimit.CLIENT))
        value = domain.verify_token(settings.signing_secret, "confirm", token)
        if value is None:
            raise _BAD_LINK
        async with ctx.pool.acquire() as conn:
            row = await conn.fetchrow("select state from subscriptions where id = $1", UUID(value))
            if row is None:
                raise Problem(404, "Not found", type_="not-found", detail="This subscription no longer exists.")
            if row["state"] == "unsubscribed":
                raise Problem(409, "Unsubscribed", type_="unsubscribed", detail="Subscribe again to receive news.")
            await repository.set_subscription_state(conn, UUID(value), "confirmed", ctx.clock.now())
        return SubscriptionOut(state="confirmed", detail="Your subscription is confirmed.")

    @router.get(
        "/subscriptions/confirm",
        status_code=303,
        response_class=RedirectResponse,
        responses={303: {"description": "to the confirm page"}},
    )
    async def confirm_get(token: Annotated[str, Query(max_length=200)]) -> RedirectResponse:
        """Links in mails sent before the web client lead here: on to its page (CIVIC_LINK_SUBSCRIPTION_CONFIRM),
        which confirms with a POST (mail scanners follow GET links)."""
        return RedirectResponse(
            link(settings.links, settings.public_base_url, "subscription_confirm", token=token), status_code=303
        )

    @router.post("/subscriptions/confirm", response_model=SubscriptionOut, responses=problems(400, 404, 409))
    async def confirm_post(request: Request, token: Annotated[str, Query(max_length=200)]) -> SubscriptionOut:
        return await _confirm(request, token)

    @router.get(
        "/unsubscribe",
        status_code=303,
        response_class=RedirectResponse,
        responses={303: {"description": "to the unsubscribe page"}},
    )
    async def unsubscribe_page(token: Annotated[str, Query(max_length=200)]) -> RedirectResponse:
        """On to the web client's page with one button (CIVIC_LINK_UNSUBSCRIBE): link scanners that follow GET
        links must not unsubscribe anybody."""
        return RedirectResponse(
            link(settings.links, settings.public_base_url, "unsubscribe", token=token), status_code=303
        )

    @router.post("/unsubscribe", response_model=SubscriptionOut, responses=problems(400))
    async def unsubscribe(
        request: Request, token: Annotated[str | None, Query(max_length=200)] = None
    ) -> SubscriptionOut:
        """One-click unsubscribe (RFC 8058: ``List-Unsubscribe=One-Click`` posted to the link), or the page's form."""
        if token is None:
            form = parse_qs((await request.body()).decode(errors="replace")[:2000])
            token = (form.get("token") or [""])[0]
        ctx = context_of(request, NAME)
        await ratelimit.enforce(request, ctx, (LINKS_PER_CLIENT, ratelimit.CLIENT))
        value = domain.verify_token(settings.signing_secret, "unsubscribe", token)
        if value is None:
            raise _BAD_LINK
        async with ctx.pool.acquire() as conn:
            await repository.set_subscription_state(conn, UUID(value), "unsubscribed", ctx.clock.now())
        return SubscriptionOut(state="unsubscribed", detail="You will receive no more news of this process.")

    # -- staff: deliveries -----------------------------------------------------------------------------

    @router.get("/causes/{event_id}/deliveries", response_model=list[DeliveryOut])
    async def deliveries_of_cause(event_id: UUID, request: Request, staff: Staff) -> list[DeliveryOut]:
        """Every message one event caused, by channel and recipient, with its state and last answer."""
        ctx = context_of(request, NAME)
        rows = await repository.deliveries_where(ctx.pool, staff.tenant, "cause_event_id = $2", event_id)
        return [_delivery(r) for r in rows]

    @router.get("/deliveries", response_model=list[DeliveryOut])
    async def deliveries_of_recipient(
        request: Request,
        staff: Staff,
        email: Annotated[Email | None, Query()] = None,
        registration_id: Annotated[UUID | None, Query()] = None,
    ) -> list[DeliveryOut]:
        """Messages to one recipient: by address (matched by its keyed hash) or by registration."""
        ctx = context_of(request, NAME)
        if email is None and registration_id is None:
            raise Problem(
                422,
                "Invalid request",
                type_="validation",
                detail="Name a recipient.",
                errors=[{"in": "query", "pointer": "/email", "detail": "email or registration_id is required"}],
            )
        if email is not None:
            key = domain.recipient_key(settings.signing_secret, email)
            rows = await repository.deliveries_where(ctx.pool, staff.tenant, "recipient_key = $2", key)
        else:
            rows = await repository.deliveries_where(ctx.pool, staff.tenant, "registration_id = $2", registration_id)
        return [_delivery(r) for r in rows]

    # -- staff: webhooks -------------------------------------------------------------------------------

    @router.post("/webhooks", status_code=201, response_model=WebhookCreated)
    async def create_webhook(body: WebhookIn, request: Request, staff: Staff) -> WebhookCreated:
        """Register an endpoint; the answer holds its signing secret, which is not shown again."""
        errors = [
            {"in": "body", "pointer": "/url", "detail": e} for e in check_url(body.url, settings.allow_private_targets)
        ]
        if errors:
            raise Problem(422, "Invalid request", type_="validation", detail="The URL cannot be used.", errors=errors)
        ctx = context_of(request, NAME)
        secret = domain.new_webhook_secret(secrets.token_bytes(32))
        row = await ctx.pool.fetchrow(
            "insert into webhook_endpoints (id, tenant, url, event_types, secret, description, created_at)"
            " values ($1, $2, $3, $4, $5, $6, $7) returning *",
            uuid4(),
            staff.tenant,
            body.url,
            body.event_types,
            secret,
            body.description,
            ctx.clock.now(),
        )
        return WebhookCreated(**endpoint_json(row), secret=secret)

    @router.get("/webhooks", response_model=list[WebhookOut])
    async def list_webhooks(request: Request, staff: Staff) -> list[WebhookOut]:
        ctx = context_of(request, NAME)
        rows = await ctx.pool.fetch(
            "select * from webhook_endpoints where tenant = $1 order by created_at", staff.tenant
        )
        return [WebhookOut(**endpoint_json(r)) for r in rows]

    @router.delete("/webhooks/{endpoint_id}", status_code=204)
    async def delete_webhook(endpoint_id: UUID, request: Request, staff: Staff) -> None:
        ctx = context_of(request, NAME)
        status = await ctx.pool.execute(
            "delete from webhook_endpoints where tenant = $1 and id = $2", staff.tenant, endpoint_id
        )
        if status.endswith(" 0"):
            raise Problem(404, "Not found", type_="not-found", detail="No such webhook endpoint.")

    @router.get("/webhooks/{endpoint_id}/deliveries", response_model=list[DeliveryOut])
    async def webhook_deliveries(endpoint_id: UUID, request: Request, staff: Staff) -> list[DeliveryOut]:
        ctx = context_of(request, NAME)
        rows = await repository.deliveries_where(ctx.pool, staff.tenant, "endpoint_id = $2", endpoint_id)
        return [_delivery(r) for r in rows]

    return router


# Links between operations (OpenAPI; shared/http/openapi.py).
LINKS = {
    "notifications.create_webhook": {
        "notifications.delete_webhook": {"endpoint_id": "$response.body#/id"},
        "notifications.webhook_deliveries": {"endpoint_id": "$response.body#/id"},
    },
}

__all__ = ["LINKS", "build_router"]
