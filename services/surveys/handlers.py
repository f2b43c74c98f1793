"""The surveys service's subscription list."""

from __future__ import annotations

from shared.service import Subscription

#: Surveys consumes no events: it only publishes (published, opened, closed, response completed, deadlines).
SUBSCRIPTIONS: list[Subscription] = []
