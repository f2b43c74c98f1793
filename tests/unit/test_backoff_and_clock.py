from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.bus.backoff import Backoff
from shared.bus.streams import Keys, parse_entry_id
from shared.clock import FrozenClock


def test_backoff_grows_and_is_capped() -> None:
    b = Backoff(0.1, 2.0)
    delays = [b.next_delay() for _ in range(10)]
    assert delays[0] <= 0.1
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert max(delays[6:]) > 0.9  # reached the cap's range
    b.reset()
    assert b.next_delay() <= 0.1


def test_frozen_clock_moves_only_when_told() -> None:
    c = FrozenClock(datetime(2021, 10, 25, 12, tzinfo=UTC))
    c.advance(timedelta(hours=36))
    assert c.now() == datetime(2021, 10, 27, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        FrozenClock(datetime(2021, 10, 25))


def test_entry_ids_order_numerically() -> None:
    assert parse_entry_id(b"1700000000000-12") > parse_entry_id("1700000000000-2")
    assert Keys("civic").stream("registration") == "civic:stream:registration"


def test_file_clock_jumps_to_the_instant_written(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from shared.clock import FileClock, clock_from_settings

    path = tmp_path / "now"
    clock = FileClock(str(path))
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 1
    path.write_text("2021-10-24T18:00:00+00:00")
    assert abs((clock.now() - datetime(2021, 10, 24, 18, tzinfo=UTC)).total_seconds()) < 1
    with pytest.raises(RuntimeError):
        clock_from_settings(str(path), production=True)


def test_production_mode_refuses_the_development_secret() -> None:
    from pydantic import ValidationError

    from shared.settings import Settings

    with pytest.raises(ValidationError):
        Settings(production=True)
    with pytest.raises(ValidationError, match="CIVIC_PRIVACY_SECRET"):
        Settings(production=True, jwt_secret="x" * 40)
    assert Settings(production=True, jwt_secret="x" * 40, privacy_secret="y" * 40).production
