"""Time as a dependency, so schedulers and deadlines can be tested by moving time instead of waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = at

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, at: datetime) -> None:
        self._now = at


class FileClock:
    """Real time plus an offset read from a file: lets a test move time in service processes it started.

    The file holds an ISO 8601 instant the clock jumps to (it then runs on from there). Only for tests:
    the runtime refuses it in production mode.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._mtime = -1.0
        self._offset = timedelta(0)

    def now(self) -> datetime:
        import os

        real = datetime.now(UTC)
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            return real + self._offset
        if mtime != self._mtime:
            with open(self.path) as f:
                text = f.read().strip()
            if text:
                self._offset = datetime.fromisoformat(text) - real
            self._mtime = mtime
        return real + self._offset


def clock_from_settings(clock_file: str | None, production: bool) -> Clock:
    if clock_file:
        if production:
            raise RuntimeError("CIVIC_CLOCK_FILE is for tests and refused in production mode")
        return FileClock(clock_file)
    return SystemClock()
