"""HTTP API under /api/notifications/: public subscribe, confirm and unsubscribe; staff deliveries and webhooks.
Routes only: each parses its request, calls one use case (use_cases.py) and renders the answer."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from services.notifications import use_cases
from services.notifications.schemas import (
    DeliveryOut,
    SubscribeIn,
    SubscriptionOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    endpoint_json,
)
from services.notifications.settings import settings_of
from services.notifications.store import Store
from shared.http import ratelimit
from shared.http.auth import Staff
from shared.http.email import Email
from shared.http.openapi import problems
from shared.http.problems import Problem
from shared.links import link
from shared.privacy import person_hmac
from shared.service import ServiceContext, context_of

NAME = "notifications"

router = APIRouter(tags=["notifications"])

# Public writes (shared/http/ratelimit.py): per client address, and per target mailbox for the opt-in mail.
SUBSCRIBE_PER_CLIENT = ratelimit.Rule("subscription-client", burst=20, per_hour=20)
SUBSCRIBE_PER_MAILBOX = ratelimit.Rule("subscription-mailbox", burst=3, per_hour=3)
LINKS_PER_CLIENT = ratelimit.Rule("subscription-link-client", burst=60, per_hour=300)


def _ctx(request: Request) -> ServiceContext:
    return context_of(request, NAME)


# -- public ------------------------------------------------------------------------------------------------


@router.post("/subscriptions", status_code=202, response_model=SubscriptionOut)
async def subscribe(body: SubscribeIn, request: Request) -> SubscriptionOut:
    """Subscribe an address to a process's news; a mail with a confirmation link is sent (double opt-in).
    Only processes the service has heard of (content's events) can be subscribed to."""
    ctx = _ctx(request)
    await ratelimit.enforce(
        request,
        ctx,
        (SUBSCRIBE_PER_CLIENT, ratelimit.CLIENT),
        (SUBSCRIBE_PER_MAILBOX, ratelimit.mailbox(body.email)),
    )
    await use_cases.subscribe(
        ctx.uows(Store)(),
        settings_of(ctx).policy(),
        tenant=body.tenant,
        email=body.email,
        email_hmac=person_hmac(ctx.settings.privacy_secret, "email", body.email),
        process_id=body.process_id,
        locale=body.locale,
        now=ctx.clock.now(),
    )
    # The same answer whether the address was known or not: nobody learns who subscribed.
    return SubscriptionOut(state="pending", detail="Please follow the link in the mail we sent.")


@router.get(
    "/subscriptions/confirm",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "to the confirm page"}},
)
async def confirm_get(request: Request, token: Annotated[str, Query(max_length=200)]) -> RedirectResponse:
    """Links in mails sent before the web client lead here: on to its page (CIVIC_LINK_SUBSCRIPTION_CONFIRM),
    which confirms with a POST (mail scanners follow GET links)."""
    s = settings_of(_ctx(request))
    return RedirectResponse(link(s.links, s.public_base_url, "subscription_confirm", token=token), status_code=303)


@router.post("/subscriptions/confirm", response_model=SubscriptionOut, responses=problems(400, 404, 409))
async def confirm_post(request: Request, token: Annotated[str, Query(max_length=200)]) -> SubscriptionOut:
    ctx = _ctx(request)
    await ratelimit.enforce(request, ctx, (LINKS_PER_CLIENT, ratelimit.CLIENT))
    await use_cases.confirm(ctx.uows(Store)(), settings_of(ctx).policy(), token, ctx.clock.now())
    return SubscriptionOut(state="confirmed", detail="Your subscription is confirmed.")


@router.get(
    "/unsubscribe",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "to the unsubscribe page"}},
)
async def unsubscribe_page(request: Request, token: Annotated[str, Query(max_length=200)]) -> RedirectResponse:
    """On to the web client's page with one button (CIVIC_LINK_UNSUBSCRIBE): link scanners that follow GET
    links must not unsubscribe anybody."""
    s = settings_of(_ctx(request))
    return RedirectResponse(link(s.links, s.public_base_url, "unsubscribe", token=token), status_code=303)


@router.post("/unsubscribe", response_model=SubscriptionOut, responses=problems(400))
async def unsubscribe(request: Request, token: Annotated[str | None, Query(max_length=200)] = None) -> SubscriptionOut:
    """One-click unsubscribe (RFC 8058: ``List-Unsubscribe=One-Click`` posted to the link), or the page's form."""
    if token is None:
        form = parse_qs((await request.body()).decode(errors="replace")[:2000])
        token = (form.get("token") or [""])[0]
    ctx = _ctx(request)
    await ratelimit.enforce(request, ctx, (LINKS_PER_CLIENT, ratelimit.CLIENT))
    await use_cases.unsubscribe(ctx.uows(Store)(), settings_of(ctx).policy(), token, ctx.clock.now())
    return SubscriptionOut(state="unsubscribed", detail="You will receive no more news of this process.")


# -- staff: deliveries -------------------------------------------------------------------------------------


@router.get("/causes/{event_id}/deliveries", response_model=list[DeliveryOut])
async def deliveries_of_cause(event_id: UUID, request: Request, staff: Staff) -> list[DeliveryOut]:
    """Every message one event caused, by channel and recipient, with its state and last answer."""
    async with _ctx(request).uows(Store).reading() as store:
        rows = await use_cases.deliveries_of_cause(store, staff.tenant, event_id)
    return [DeliveryOut.of(r) for r in rows]


@router.get("/deliveries", response_model=list[DeliveryOut])
async def deliveries_of_recipient(
    request: Request,
    staff: Staff,
    email: Annotated[Email | None, Query()] = None,
    registration_id: Annotated[UUID | None, Query()] = None,
) -> list[DeliveryOut]:
    """Messages to one recipient: by address (matched by its keyed hash) or by registration."""
    if email is None and registration_id is None:
        # Which query parameters a request needs: a matter of parsing it.
        raise Problem(
            422,
            "Invalid request",
            type_="validation",
            detail="Name a recipient.",
            errors=[{"in": "query", "pointer": "/email", "detail": "email or registration_id is required"}],
        )
    ctx = _ctx(request)
    async with ctx.uows(Store).reading() as store:
        if email is not None:
            rows = await use_cases.deliveries_to(store, settings_of(ctx).policy(), staff.tenant, email)
        else:
            assert registration_id is not None
            rows = await use_cases.deliveries_of_registration(store, staff.tenant, registration_id)
    return [DeliveryOut.of(r) for r in rows]


@router.post("/deliveries/{delivery_id}/resend", status_code=202, response_model=DeliveryOut, responses=problems(409))
async def resend_delivery(delivery_id: UUID, request: Request, staff: Staff) -> DeliveryOut:
    """Send a webhook delivery again, now (after the receiver was fixed): the same delivery, queued with its
    attempts counted from zero; idempotent while it is queued. 409 for mails and for disabled endpoints."""
    ctx = _ctx(request)
    row = await use_cases.resend_webhook_delivery(ctx.uows(Store)(), staff.tenant, delivery_id, ctx.clock.now())
    return DeliveryOut.of(row)


# -- staff: webhooks ---------------------------------------------------------------------------------------


@router.post("/webhooks", status_code=201, response_model=WebhookCreated)
async def create_webhook(body: WebhookIn, request: Request, staff: Staff) -> WebhookCreated:
    """Register an endpoint; the answer holds its signing secret, which is not shown again."""
    ctx = _ctx(request)
    row = await use_cases.create_webhook(
        ctx.uows(Store)(),
        tenant=staff.tenant,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        allow_private_targets=settings_of(ctx).allow_private_targets,
        now=ctx.clock.now(),
    )
    return WebhookCreated(**endpoint_json(row), secret=row["secret"])


@router.get("/webhooks", response_model=list[WebhookOut])
async def list_webhooks(request: Request, staff: Staff) -> list[WebhookOut]:
    async with _ctx(request).uows(Store).reading() as store:
        rows = await use_cases.webhooks(store, staff.tenant)
    return [WebhookOut(**endpoint_json(r)) for r in rows]


@router.delete("/webhooks/{endpoint_id}", status_code=204)
async def delete_webhook(endpoint_id: UUID, request: Request, staff: Staff) -> None:
    await use_cases.delete_webhook(_ctx(request).uows(Store)(), staff.tenant, endpoint_id)


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=list[DeliveryOut])
async def webhook_deliveries(endpoint_id: UUID, request: Request, staff: Staff) -> list[DeliveryOut]:
    async with _ctx(request).uows(Store).reading() as store:
        rows = await use_cases.deliveries_of_endpoint(store, staff.tenant, endpoint_id)
    return [DeliveryOut.of(r) for r in rows]


# Links between operations (OpenAPI; shared/http/openapi.py).
LINKS = {
    "notifications.create_webhook": {
        "notifications.delete_webhook": {"endpoint_id": "$response.body#/id"},
        "notifications.webhook_deliveries": {"endpoint_id": "$response.body#/id"},
    },
    "notifications.webhook_deliveries": {"notifications.resend_delivery": {"delivery_id": "$response.body#/0/id"}},
}

__all__ = ["LINKS", "router"]
