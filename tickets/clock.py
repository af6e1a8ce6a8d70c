"""How long a configured minute lasts.

Time limits, lock periods, feedback windows and the away grace are configured
in minutes (or hours). ``ORDERLY_SECONDS_PER_MINUTE`` (default 60) is the
length of such a minute in real seconds; the system tests and demos shorten it
so a whole lifecycle can be watched in a minute. Everything derived from these
settings uses this one helper, so the rules keep their proportions.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def minute_seconds() -> float:
    return float(settings.ORDERLY_SECONDS_PER_MINUTE)


def minutes(n: float) -> timedelta:
    return timedelta(seconds=n * minute_seconds())


def hours(n: float) -> timedelta:
    return minutes(n * 60)


def whole_minutes(delta: timedelta) -> int:
    """Whole configured minutes in ``delta``, rounded down, never negative."""
    seconds = delta.total_seconds()
    if seconds <= 0:
        return 0
    return int(seconds // minute_seconds())
