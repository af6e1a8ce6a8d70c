"""Celery tasks are thin, idempotent adapters (DESIGN.md 2; STYLE.md 8-11).

Task functions are called directly, never in eager mode and never through a
broker; the outside world (the callback endpoint) is replaced where needed.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings

from agents.models import Agent
from agents.services import agent_set_status
from tickets import tasks
from tickets.models import TicketEvent, TicketState
from tickets.services.work import ticket_lock_acquire
from tests.factories import TicketFactory, TicketTypeFactory

from tests.factories import fresh

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]

SWEEP_TASKS = [
    "tickets.dispatch_sweep",
    "tickets.breach_sweep",
    "tickets.lock_expiry_sweep",
    "tickets.away_reclaim_sweep",
    "tickets.auto_close_sweep",
    "tickets.callback_sweep",
]


def test_every_sweep_is_on_the_beat_schedule():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert set(SWEEP_TASKS) <= scheduled


@pytest.mark.parametrize("task", [
    tasks.dispatch_task, tasks.dispatch_sweep_task, tasks.breach_sweep_task,
    tasks.lock_expiry_sweep_task, tasks.away_reclaim_sweep_task, tasks.auto_close_sweep_task,
    tasks.callback_task, tasks.callback_sweep_task,
])
def test_tasks_are_late_acked_and_named(task):
    assert task.name.startswith("tickets.")
    assert task.acks_late is True and task.reject_on_worker_lost is True


@pytest.mark.parametrize("task", [tasks.dispatch_task, tasks.dispatch_sweep_task])
def test_dispatch_tasks_assign_once(task, ticket, agent_user):
    assert task() == 1
    assert fresh(ticket).assignee == agent_user
    assert task() == 0
    assert TicketEvent.objects.filter(ticket=ticket, kind="assigned").count() == 1


def test_dispatch_task_with_nothing_to_do(agent_user):
    assert tasks.dispatch_task() == 0


def test_breach_sweep_task(assigned_ticket, clock):
    clock.move_to(assigned_ticket.due_at)
    assert tasks.breach_sweep_task() == 1
    assert tasks.breach_sweep_task() == 0
    assert fresh(assigned_ticket).breached_at == assigned_ticket.due_at


def test_lock_expiry_sweep_task(assigned_ticket, agent_user, clock):
    ticket_lock_acquire(ticket_id=assigned_ticket.pk, by=agent_user, minutes=5)
    clock.shift(minutes=5)
    assert tasks.lock_expiry_sweep_task() == 1
    assert tasks.lock_expiry_sweep_task() == 0
    assert fresh(assigned_ticket).locked_until is None


def test_away_reclaim_sweep_task(assigned_ticket, agent_user, clock):
    agent_set_status(by=agent_user, status=Agent.Status.OFFLINE)
    clock.shift(minutes=settings.ORDERLY_AWAY_GRACE_MINUTES, seconds=1)
    assert tasks.away_reclaim_sweep_task() == 1
    assert tasks.away_reclaim_sweep_task() == 0
    assert fresh(assigned_ticket).state == TicketState.POOLED


def test_auto_close_sweep_task(ticket_type, agent_user, clock):
    ticket = TicketFactory(ticket_type=ticket_type, state="resolved", assignee=agent_user)
    clock.shift(hours=72)
    assert tasks.auto_close_sweep_task() == 1
    assert tasks.auto_close_sweep_task() == 0
    assert fresh(ticket).state == TicketState.CLOSED


def test_a_lost_nudge_is_caught_by_the_sweep(ticket, agent_user, django_capture_on_commit_callbacks):
    """The dispatch nudge of the ticket's creation never ran (it was only
    captured); the periodic sweep still assigns the ticket."""
    assert fresh(ticket).state == TicketState.POOLED
    assert tasks.dispatch_sweep_task() == 1
    assert fresh(ticket).assignee == agent_user


def test_broker_failure_does_not_fail_the_committed_change(
    requester, ticket_type, monkeypatch, django_capture_on_commit_callbacks
):
    from celery.app.task import Task

    def broken(self, *args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(Task, "apply_async", broken)
    from tickets.services.creation import ticket_create

    with django_capture_on_commit_callbacks(execute=True):
        ticket, created = ticket_create(by=requester, type_slug=ticket_type.slug, title="t")
    assert created and fresh(ticket).state == TicketState.POOLED


# -- callback tasks (the endpoint is the outside world: replaced) ------------------------------------


@pytest.fixture
def callback_ticket(team, requester):
    return TicketFactory(ticket_type=TicketTypeFactory(team=team, callback=True),
                         requester=requester)


@pytest.fixture
def endpoint(monkeypatch):
    answers: list[tuple[str, str, str]] = []
    calls: list[int] = []

    def post(ticket):
        calls.append(ticket.pk)
        return answers.pop(0)

    monkeypatch.setattr("tickets.services.callback._post", post)
    return answers, calls


def test_callback_task_runs_one_attempt_and_is_idempotent(callback_ticket, endpoint):
    answers, calls = endpoint
    answers.append(("needs_agent", "please call", ""))
    assert tasks.callback_task(ticket_id=callback_ticket.pk) == "needs_agent"
    assert tasks.callback_task(ticket_id=callback_ticket.pk) is None
    assert calls == [callback_ticket.pk]
    ticket = fresh(callback_ticket)
    assert ticket.state == TicketState.POOLED and ticket.round == 1
    assert [e.kind for e in ticket.events.all()][-3:] == [
        "callback_needs_agent", "pooled", "notified"
    ]


def test_callback_task_tolerates_a_missing_ticket(endpoint):
    assert tasks.callback_task(ticket_id=999999) is None


def test_callback_sweep_task_redrives_due_callbacks(callback_ticket, ticket, sent_tasks, clock):
    assert tasks.callback_sweep_task() == 1
    assert sent_tasks == [("tickets.callback", {"ticket_id": callback_ticket.pk})]


def test_callback_sweep_task_skips_a_leased_attempt(callback_ticket, endpoint, sent_tasks, clock):
    answers, _ = endpoint
    answers.append(("failed", "", "HTTP 500"))
    tasks.callback_task(ticket_id=callback_ticket.pk)       # fails; retry after backoff
    ticket = fresh(callback_ticket)
    assert ticket.callback_next_at == clock.now() + timedelta(seconds=5)
    assert tasks.callback_sweep_task() == 0
    clock.shift(seconds=5)
    assert tasks.callback_sweep_task() == 1
