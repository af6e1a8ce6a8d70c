"""Concurrency proofs: real threads, each on its own PostgreSQL connection.

These tests only mean something where rows are really locked, so they skip
on SQLite (there every transaction is IMMEDIATE and writers queue up). Run
them with ``make test-unit-postgres`` or::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orderly \\
        .venv/bin/pytest tests/concurrency -q

Data is bulk-inserted (not built through the services) so that thousands of
tickets take a second, not a minute; each helper sets exactly the columns the
services would have set for that state.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from agents.models import Agent, User
from tickets.models import Ticket, TicketState, TicketType
from tests.factories import AgentUserFactory

JOIN_TIMEOUT = 300


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("concurrency proofs need PostgreSQL (set DATABASE_URL)")


@pytest.fixture(autouse=True)
def _no_broker(sent_tasks):
    """Nudges (dispatch after commit, deliveries) are recorded, not sent."""
    return sent_tasks


class Outcome:
    """What one thread's call returned or raised."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        return f"<Outcome ok={self.ok} value={self.value!r} error={self.error!r}>"


def run_at_once(*calls: Callable[[], Any]) -> list[Outcome]:
    """Run each call in its own thread, released together by a barrier.

    Every thread closes its own database connections at the end, so the test
    database can be dropped afterwards.
    """
    barrier = threading.Barrier(len(calls))
    outcomes = [Outcome() for _ in calls]

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=60)
            outcomes[i].value = call()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcomes[i].error = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    stuck = [t for t in threads if t.is_alive()]
    assert not stuck, f"{len(stuck)} thread(s) still running after {JOIN_TIMEOUT}s (deadlock?)"
    return outcomes


def make_agents(n: int, *, teams_of: Callable[[int], list], capacity_of: Callable[[int], int],
                status_of: Callable[[int], str] = lambda i: Agent.Status.ONLINE,
                prefix: str = "agent") -> list[User]:
    users = []
    for i in range(n):
        user = AgentUserFactory(username=f"{prefix}{i:03d}", teams=teams_of(i),
                                agent__capacity=capacity_of(i), agent__status=status_of(i))
        users.append(user)
    return users


def bulk_tickets(ticket_type: TicketType, requester: User, specs: list[dict[str, Any]]) -> list[int]:
    """Insert tickets of a type; each spec overrides columns (state, priority, due_at, ...)."""
    now = timezone.now()
    rows = []
    for n, spec in enumerate(specs):
        values = {
            "ticket_type": ticket_type, "team_id": ticket_type.team_id, "title": f"Order {n}",
            "requester": requester, "created_by": requester, "state": TicketState.POOLED,
            "priority": 2, "round": 1, "sla_started_at": now,
            "due_at": now + timedelta(minutes=ticket_type.time_limit_minutes),
        }
        values.update(spec)
        rows.append(Ticket(**values))
    created = Ticket.objects.bulk_create(rows, batch_size=1000)
    return [t.pk for t in created]


def agent_loads_match() -> list[str]:
    """Agents whose stored load differs from their assigned tickets or exceeds capacity."""
    held = {}
    for assignee_id in Ticket.objects.filter(state=TicketState.ASSIGNED).values_list(
        "assignee_id", flat=True
    ):
        held[assignee_id] = held.get(assignee_id, 0) + 1
    problems = []
    for agent in Agent.objects.select_related("user"):
        n = held.get(agent.user_id, 0)
        if agent.active_count != n or n > agent.capacity:
            problems.append(
                f"{agent.user.username}: active_count={agent.active_count} holds={n} "
                f"capacity={agent.capacity}"
            )
    return problems
