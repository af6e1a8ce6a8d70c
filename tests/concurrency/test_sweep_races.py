"""Two beat sweeps of the same kind at once (DESIGN.md 1.7, 1.4, 1.9, 1.8):
every due ticket is handled exactly once -- one event each -- and nothing
that is not due is touched."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from tickets.models import Ticket, TicketEvent, TicketState, TicketType
from tickets.services.sweeps import (
    auto_close_sweep,
    away_reclaim_sweep,
    breach_sweep,
    lock_expiry_sweep,
)
from tests.concurrency.conftest import agent_loads_match, bulk_tickets, make_agents, run_at_once
from tests.factories import RequesterFactory, TicketTypeFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DUE = 240
NOT_DUE = 60
SWEEPERS = 2


@pytest.fixture(autouse=True)
def small_batches(settings):
    # Many short batches, so that the two sweeps interleave ticket by ticket.
    settings.ORDERLY_SWEEP_BATCH = 25


@pytest.fixture
def world(team):
    reassign = TicketTypeFactory(slug="sweep-reassign", team=team, time_limit_minutes=60)
    notify = TicketTypeFactory(slug="sweep-notify", team=team, time_limit_minutes=60,
                               on_breach=TicketType.OnBreach.NOTIFY)
    agents = make_agents(8, teams_of=lambda i: [team], capacity_of=lambda i: 200,
                         prefix="sweeper")
    return {"reassign": reassign, "notify": notify, "agents": agents,
            "requester": RequesterFactory(username="sweep-requester")}


def assigned_specs(agents, n: int, **extra) -> list[dict]:
    now = timezone.now()
    return [{"state": TicketState.ASSIGNED, "assignee": agents[i % len(agents)],
             "assigned_at": now - timedelta(minutes=5), **extra} for i in range(n)]


def sync_loads() -> None:
    """Set each agent's stored load to what it holds (the bulk insert skipped it)."""
    for agent in Agent.objects.all():
        n = Ticket.objects.filter(state=TicketState.ASSIGNED, assignee_id=agent.user_id).count()
        Agent.objects.filter(pk=agent.pk).update(active_count=n)


def run_two(sweep) -> list[int]:
    outcomes = run_at_once(*[sweep] * SWEEPERS)
    assert all(o.ok for o in outcomes), outcomes
    return [o.value for o in outcomes]


def events_per_ticket(kind: str) -> Counter:
    return Counter(TicketEvent.objects.filter(kind=kind).values_list("ticket_id", flat=True))


def test_two_breach_sweeps(world):
    past = timezone.now() - timedelta(minutes=1)
    future = timezone.now() + timedelta(minutes=30)
    agents, requester = world["agents"], world["requester"]
    due = (
        bulk_tickets(world["reassign"], requester, [{"due_at": past}] * (DUE // 3))
        + bulk_tickets(world["reassign"], requester, assigned_specs(agents, DUE // 3, due_at=past))
        + bulk_tickets(world["notify"], requester, assigned_specs(agents, DUE // 3, due_at=past))
    )
    later = bulk_tickets(world["reassign"], requester,
                         assigned_specs(agents, NOT_DUE, due_at=future))
    sync_loads()

    done = run_two(breach_sweep)

    assert sum(done) == len(due)
    per_ticket = events_per_ticket(TicketEvent.Kind.BREACHED)
    assert set(per_ticket) == set(due) and set(per_ticket.values()) == {1}
    rows = Ticket.objects.filter(pk__in=due)
    # Reclaimed or breached in the pool: a new round (not yet breached) starts.
    assert rows.filter(breached_at__isnull=False, round_breached=False, priority=3, round=2,
                       state=TicketState.POOLED).count() == 2 * DUE // 3
    assert rows.filter(round_breached=True, priority=3, round=1,
                       state=TicketState.ASSIGNED).count() == DUE // 3  # notify-only
    assert not Ticket.objects.filter(pk__in=later, round_breached=True).exists()
    assert agent_loads_match() == []


def test_two_lock_expiry_sweeps(world):
    now = timezone.now()
    agents, requester = world["agents"], world["requester"]
    due = bulk_tickets(world["reassign"], requester, [
        {**spec, "locked_by": spec["assignee"], "locked_until": now - timedelta(seconds=1)}
        for spec in assigned_specs(agents, DUE)
    ])
    later = bulk_tickets(world["reassign"], requester, [
        {**spec, "locked_by": spec["assignee"], "locked_until": now + timedelta(minutes=20)}
        for spec in assigned_specs(agents, NOT_DUE)
    ])
    sync_loads()

    done = run_two(lock_expiry_sweep)

    assert sum(done) == DUE
    per_ticket = events_per_ticket(TicketEvent.Kind.LOCK_EXPIRED)
    assert set(per_ticket) == set(due) and set(per_ticket.values()) == {1}
    assert not Ticket.objects.filter(pk__in=due, locked_until__isnull=False).exists()
    assert Ticket.objects.filter(pk__in=later, locked_until__isnull=False).count() == NOT_DUE
    assert agent_loads_match() == []


def test_two_away_reclaim_sweeps(world):
    now = timezone.now()
    agents, requester = world["agents"], world["requester"]
    away, present = agents[:4], agents[4:]
    Agent.objects.filter(user__in=away).update(
        status=Agent.Status.AWAY, status_changed_at=now - timedelta(hours=1)
    )
    due = bulk_tickets(world["reassign"], requester, assigned_specs(away, DUE))
    locked = bulk_tickets(world["reassign"], requester, [
        {**spec, "locked_by": spec["assignee"], "locked_until": now + timedelta(minutes=20)}
        for spec in assigned_specs(away, NOT_DUE // 2)
    ])
    kept = bulk_tickets(world["reassign"], requester, assigned_specs(present, NOT_DUE // 2))
    sync_loads()

    done = run_two(away_reclaim_sweep)

    assert sum(done) == DUE
    per_ticket = events_per_ticket(TicketEvent.Kind.RECLAIMED)
    assert set(per_ticket) == set(due) and set(per_ticket.values()) == {1}
    assert Ticket.objects.filter(pk__in=due, state=TicketState.POOLED).count() == DUE
    assert Ticket.objects.filter(pk__in=locked + kept, state=TicketState.ASSIGNED).count() == NOT_DUE
    assert agent_loads_match() == []
    # The away agents keep exactly their locked tickets.
    assert sum(Agent.objects.filter(user__in=away).values_list("active_count", flat=True)) == len(
        locked
    )


def test_two_auto_close_sweeps(world):
    now = timezone.now()
    requester = world["requester"]
    resolved = {"state": TicketState.RESOLVED, "resolved_at": now - timedelta(days=4),
                "result": "done", "in_time": True}
    due = bulk_tickets(world["reassign"], requester,
                       [{**resolved, "feedback_due_at": now - timedelta(minutes=1)}] * DUE)
    later = bulk_tickets(world["reassign"], requester,
                         [{**resolved, "feedback_due_at": now + timedelta(hours=1)}] * NOT_DUE)

    done = run_two(auto_close_sweep)

    assert sum(done) == DUE
    per_ticket = events_per_ticket(TicketEvent.Kind.AUTO_CLOSED)
    assert set(per_ticket) == set(due) and set(per_ticket.values()) == {1}
    assert Ticket.objects.filter(pk__in=due, state=TicketState.CLOSED).count() == DUE
    assert Ticket.objects.filter(pk__in=later, state=TicketState.RESOLVED).count() == NOT_DUE
