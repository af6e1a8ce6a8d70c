"""Shared fixtures: one persona per role, a type, a frozen clock, sent tasks.

Personas (all in ``team`` unless the name says otherwise)::

    team, other_team
    requester, other_requester          (requesters see only their own tickets)
    agent_user, other_agent_user        (online agents of ``team``, capacity 5)
    outside_agent_user                  (online agent of ``other_team``)
    supervisor, outside_supervisor      (supervisor of ``team`` / ``other_team``)
    integration                         (an API integration)
    ticket_type                         (a type of ``team``: 60-minute limit)
    ticket                              (a pooled ticket of ``ticket_type`` by ``requester``)
    assigned_ticket                     (that ticket, assigned to ``agent_user``)

``clock`` freezes time (time-machine, no ticking) at ``START``; move it with
``clock.shift(minutes=5)`` or ``clock.move_to(dt)`` -- never sleep.
``sent_tasks`` records Celery tasks sent instead of talking to a broker.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from tests.factories import (
    AgentUserFactory,
    IntegrationFactory,
    RequesterFactory,
    SupervisorFactory,
    TeamFactory,
    TicketFactory,
    TicketTypeFactory,
)

START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt_timezone.utc)


class Clock:
    """A frozen clock the test moves by hand."""

    def __init__(self, traveller: Any) -> None:
        self._traveller = traveller

    def now(self) -> datetime:
        return timezone.now()

    def shift(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._traveller.shift(delta if delta is not None else timedelta(**kwargs))
        return timezone.now()

    def move_to(self, when: datetime) -> datetime:
        self._traveller.move_to(when)
        return timezone.now()


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield Clock(traveller)


@pytest.fixture
def sent_tasks(monkeypatch):
    """Tasks sent (``.delay``/``.apply_async``) as ``(name, kwargs)`` pairs; no broker."""
    from celery.app.task import Task

    sent: list[tuple[str, dict[str, Any]]] = []

    def apply_async(self, args=None, kwargs=None, **options):
        sent.append((self.name, dict(kwargs or {})))

    monkeypatch.setattr(Task, "apply_async", apply_async)
    return sent


@pytest.fixture
def team(db):
    return TeamFactory(name="Refunds")


@pytest.fixture
def other_team(db):
    return TeamFactory(name="Bookings")


@pytest.fixture
def requester(db):
    return RequesterFactory(username="alice")


@pytest.fixture
def other_requester(db):
    return RequesterFactory(username="bob")


@pytest.fixture
def agent_user(team):
    return AgentUserFactory(username="agnes", teams=[team])


@pytest.fixture
def other_agent_user(team):
    return AgentUserFactory(username="otto", teams=[team])


@pytest.fixture
def outside_agent_user(other_team):
    return AgentUserFactory(username="olga", teams=[other_team])


@pytest.fixture
def supervisor(team):
    return SupervisorFactory(username="sue", teams=[team])


@pytest.fixture
def outside_supervisor(other_team):
    return SupervisorFactory(username="sam", teams=[other_team])


@pytest.fixture
def integration(db):
    return IntegrationFactory(username="crm")


@pytest.fixture
def ticket_type(team):
    return TicketTypeFactory(slug="refund", name="Refund", team=team, time_limit_minutes=60)


@pytest.fixture
def ticket(ticket_type, requester):
    return TicketFactory(ticket_type=ticket_type, requester=requester)


@pytest.fixture
def assigned_ticket(ticket_type, requester, agent_user):
    return TicketFactory(ticket_type=ticket_type, requester=requester, state="assigned",
                         assignee=agent_user)
