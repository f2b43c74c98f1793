"""How the content service plugs into the runtime: routes, subscription list, migrations, loops."""

from __future__ import annotations

from pathlib import Path

from services.content import projections
from services.content.api import LINKS, router, short_links
from services.content.publishing import publishing_loop
from shared.service import ServiceDefinition

definition = ServiceDefinition(
    name="content",
    router=router,
    migrations=Path(__file__).parent / "migrations",
    # The live state of referenced meetings and surveys on public process pages (see projections.py).
    subscriptions={
        "civic.registration.meeting.published.v1": projections.meeting_snapshot,
        "civic.registration.meeting.changed.v1": projections.meeting_snapshot,
        "civic.registration.meeting.cancelled.v1": projections.meeting_cancelled,
        "civic.registration.meeting.seats_changed.v1": projections.seats_changed,
        # Seat counts come from seats_changed only: the per-registration events are private (docs/privacy.md).
        "civic.surveys.survey.published.v1": projections.survey_published,
        "civic.surveys.survey.opened.v1": projections.survey_opened,
        "civic.surveys.survey.closed.v1": projections.survey_closed,
    },
    # Scheduled publishing, phase starts and aggregated QR scan reports (see publishing.py).
    background=lambda ctx: [publishing_loop(ctx)],
    root_router=short_links,
    links=LINKS,
)
