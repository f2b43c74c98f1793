"""Mail amplification through notifications (issue 14): opt-in only for processes the service has heard of,
per-client and per-inbox limits on subscribing, and a cap on mails an hour to unconfirmed addresses."""

from __future__ import annotations

from uuid import uuid4

from prometheus_client import REGISTRY

from services.notifications.domain import CAPPED
from shared.settings import Settings
from tests.integration.notifications.support import envelope, mail_settings, meeting, running_service, smtp_server
from tests.integration.notifications.test_mail import confirmed
from tests.integration.notifications.test_subscriptions import subscribe_and_confirm
from tests.support import eventually


def _capped() -> float:
    return REGISTRY.get_sample_value("civic_notifications_mails_capped_total") or 0.0


async def test_opt_in_only_for_processes_that_exist(settings: Settings) -> None:
    async with running_service(settings, mail_settings(1)) as svc:
        known = await svc.known_process()
        for tenant, process in ((svc.tenant, uuid4()), ("erfundener-kreis", known)):
            r = await svc.client.post(
                "/api/notifications/subscriptions",
                json={"tenant": tenant, "email": "opfer@example.org", "process_id": str(process)},
            )
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["code"] == "unknown_process"
        assert await svc.rows("select 1 from deliveries") == []
        r = await svc.client.post(
            "/api/notifications/subscriptions",
            json={"tenant": svc.tenant, "email": "opfer@example.org", "process_id": str(known)},
        )
        assert r.status_code == 202
        assert len(await svc.rows("select 1 from deliveries where template = 'subscription_confirm'")) == 1


async def test_subscribing_is_limited_per_client_and_per_inbox(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limits": True})
    async with running_service(limited, mail_settings(1)) as svc:
        processes = [await svc.known_process() for _ in range(6)]
        statuses = []
        for i, p in enumerate(processes):
            r = await svc.client.post(
                "/api/notifications/subscriptions",
                json={"tenant": svc.tenant, "email": f"opfer+{i}@example.org", "process_id": str(p)},
            )
            statuses.append(r.status_code)
        assert statuses == [202, 202, 202, 429, 429, 429]
        assert len(await svc.rows("select 1 from deliveries")) == 3
        r = await svc.client.post(
            "/api/notifications/subscriptions",
            json={"tenant": svc.tenant, "email": "jemand@example.org", "process_id": str(processes[0])},
        )
        assert r.status_code == 202


async def test_mails_to_an_unconfirmed_inbox_are_capped_per_hour(settings: Settings) -> None:
    with smtp_server() as smtp:
        async with running_service(settings, mail_settings(smtp.port, unconfirmed_mails_per_hour=4)) as svc:
            m = meeting()
            await svc.feed(envelope(m, svc.tenant, f"meeting/{m.meeting_id}"))
            before = _capped()
            for i in range(10):
                reg = confirmed(m.meeting_id, f"opfer+{i}@example.org")
                await svc.feed(envelope(reg, svc.tenant, f"meeting/{m.meeting_id}"))
            rows = await svc.rows("select state, last_answer from deliveries")
            assert sum(r["last_answer"] == CAPPED for r in rows) == 6
            assert _capped() - before == 6
            await eventually(lambda: _count(smtp.sink.messages, 4), what="the four mails within the cap")
            assert len(smtp.sink.messages) == 4

            # An address that confirmed a subscription is vouched for: not capped.
            process = await svc.known_process()
            await subscribe_and_confirm(svc, smtp.sink, "bestaetigt@example.org", process)
            for _ in range(5):
                reg = confirmed(m.meeting_id, "bestaetigt@example.org")
                await svc.feed(envelope(reg, svc.tenant, f"meeting/{m.meeting_id}"))
            mine = await svc.rows(
                "select last_answer from deliveries where address = 'bestaetigt@example.org' and template = 'confirmed'"
            )
            assert len(mine) == 5 and all(r["last_answer"] != CAPPED for r in mine)


async def _count(messages: list, n: int) -> bool:  # type: ignore[type-arg]
    return len(messages) >= n
