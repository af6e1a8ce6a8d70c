"""What happens by itself: breach, lock expiry, away reclaim, auto-close
(DESIGN.md 1.4, 1.7, 1.8, 1.9, 2). Time only moves through the frozen clock."""
from __future__ import annotations

from datetime import timedelta

import pytest

from agents.models import Agent
from agents.services import agent_set_status
from tickets.models import Notification, Ticket, TicketEvent, TicketState
from tickets.services.dispatch import dispatch_run
from tickets.services.sweeps import (
    auto_close_sweep,
    away_reclaim_ids,
    away_reclaim_sweep,
    breach_due_ids,
    breach_sweep,
    lock_expiry_sweep,
    ticket_breach,
    ticket_reclaim,
)
from tickets.services.work import ticket_lock_acquire, ticket_resolve
from tests.factories import (
    AgentUserFactory,
    TicketFactory,
    TicketTypeFactory,
    event_trail,
    system_supervisor,
    ticket_row,
)

from tests.factories import agent_load as load, fresh

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


def kinds(ticket: Ticket, kind: str) -> int:
    return TicketEvent.objects.filter(ticket=ticket, kind=kind).count()


@pytest.fixture
def notify_type(team):
    return TicketTypeFactory(slug="complaint", team=team, on_breach="notify",
                             time_limit_minutes=60)


# -- breach: when ----------------------------------------------------------------------------------


def test_no_breach_one_second_before_due_at(assigned_ticket, clock):
    clock.move_to(assigned_ticket.due_at - timedelta(seconds=1))
    before = ticket_row(assigned_ticket)
    assert breach_sweep() == 0
    assert ticket_row(assigned_ticket) == before
    assert kinds(assigned_ticket, "breached") == 0


def test_breach_exactly_at_due_at(assigned_ticket, clock):
    clock.move_to(assigned_ticket.due_at)
    assert breach_sweep() == 1
    assert fresh(assigned_ticket).breached_at == assigned_ticket.due_at


def test_breach_once_per_round(ticket_type, notify_type, agent_user, clock):
    ticket = TicketFactory(ticket_type=notify_type, state="assigned", assignee=agent_user)
    clock.move_to(ticket.due_at + timedelta(minutes=1))
    assert breach_sweep() == 1
    row = ticket_row(ticket)
    clock.shift(hours=5)
    assert breach_due_ids() == []   # a breached round is not due again (no batch starvation)
    assert breach_sweep() == 0
    assert ticket_breach(ticket_id=ticket.pk) is False
    assert ticket_row(ticket) == row
    assert kinds(ticket, "breached") == 1


@pytest.mark.parametrize("state", ["resolved", "closed", "cancelled"])
def test_finished_tickets_never_breach(ticket_type, agent_user, state, clock):
    ticket = TicketFactory(ticket_type=ticket_type, state=state, assignee=agent_user)
    clock.shift(days=2)
    assert breach_sweep() == 0
    assert fresh(ticket).breached_at is None


def test_callback_tickets_never_breach(team, clock):
    ticket = TicketFactory(ticket_type=TicketTypeFactory(team=team, callback=True))
    clock.shift(days=2)
    assert breach_sweep() == 0
    assert fresh(ticket).state == TicketState.CALLBACK


def test_breach_due_ids_lists_only_due_open_tickets(ticket_type, agent_user, clock):
    due = TicketFactory(ticket_type=ticket_type)
    TicketFactory(ticket_type=ticket_type, state="resolved", assignee=agent_user)
    clock.shift(minutes=1)
    later = TicketFactory(ticket_type=ticket_type)
    clock.move_to(due.due_at)
    assert breach_due_ids() == [due.pk]
    clock.move_to(later.due_at)
    assert breach_due_ids() == [due.pk, later.pk]


# -- breach: what -----------------------------------------------------------------------------------


def test_breach_raises_priority_by_the_types_step(team, agent_user, clock):
    ttype = TicketTypeFactory(team=team, breach_priority_step=2)
    ticket = TicketFactory(ticket_type=ttype, priority=2, state="assigned", assignee=agent_user)
    clock.move_to(ticket.due_at)
    breach_sweep()
    assert fresh(ticket).priority == 4


def test_breach_priority_is_capped_at_5(team, agent_user, clock):
    ttype = TicketTypeFactory(team=team, breach_priority_step=3)
    ticket = TicketFactory(ticket_type=ttype, priority=4, state="assigned", assignee=agent_user)
    clock.move_to(ticket.due_at)
    breach_sweep()
    assert fresh(ticket).priority == 5


def test_breach_notifies_the_teams_supervisors(assigned_ticket, supervisor, outside_supervisor,
                                               requester, agent_user, clock):
    colleague = type(supervisor).objects.create(username="sid", role="supervisor")
    colleague.teams.add(assigned_ticket.team)
    clock.move_to(assigned_ticket.due_at)
    breach_sweep()
    recipients = set(Notification.objects.filter(kind="breached")
                     .values_list("user__username", flat=True))
    assert recipients == {"sue", "sid"}
    assert Notification.objects.filter(user__in=[requester, outside_supervisor,
                                                 system_supervisor()]).count() == 0
    assert event_trail(assigned_ticket)[-1][0] == "notified"


def test_breach_reassign_reclaims_to_pool_with_a_new_round(
    assigned_ticket, agent_user, clock, django_capture_on_commit_callbacks, sent_tasks
):
    clock.move_to(assigned_ticket.due_at + timedelta(seconds=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert breach_sweep() == 1
    ticket = fresh(assigned_ticket)
    assert ticket.state == TicketState.POOLED and ticket.assignee is None
    assert ticket.breached_at == clock.now()
    assert ticket.round == 2
    assert ticket.sla_started_at == clock.now()
    assert ticket.due_at == clock.now() + timedelta(minutes=60)
    assert ticket.priority == 3
    assert set(ticket.excluded_agents.all()) == {agent_user}
    assert load(agent_user) == 0
    event = ticket.events.get(kind="breached")
    assert (event.from_state, event.to_state, event.actor) == ("assigned", "pooled", None)
    assert event.details["reclaimed"] is True and event.details["agent"] == "agnes"
    assert ("tickets.dispatch", {}) in sent_tasks


def test_reclaimed_ticket_goes_to_another_agent_who_can_lock_within_the_new_round(
    assigned_ticket, agent_user, other_agent_user, clock
):
    clock.move_to(assigned_ticket.due_at)
    breach_sweep()
    dispatch_run()
    ticket = fresh(assigned_ticket)
    assert ticket.assignee == other_agent_user
    ticket_lock_acquire(ticket_id=ticket.pk, by=other_agent_user, minutes=60)


def test_resolution_in_the_new_round_after_reclaim_is_in_time(assigned_ticket, agent_user,
                                                              other_agent_user, clock):
    clock.move_to(assigned_ticket.due_at)
    breach_sweep()
    dispatch_run()
    clock.shift(minutes=30)
    ticket = ticket_resolve(ticket_id=assigned_ticket.pk, by=other_agent_user, result="ok")
    assert fresh(ticket).in_time is True
    assert fresh(ticket).breached_at is not None


def test_breach_notify_leaves_the_ticket_with_the_agent(notify_type, agent_user, clock):
    ticket = TicketFactory(ticket_type=notify_type, state="assigned", assignee=agent_user)
    due = ticket.due_at
    clock.move_to(due)
    assert breach_sweep() == 1
    ticket = fresh(ticket)
    assert ticket.state == TicketState.ASSIGNED and ticket.assignee == agent_user
    assert ticket.due_at == due and ticket.round == 1
    assert ticket.breached_at == clock.now() and ticket.priority == 3
    assert load(agent_user) == 1
    event = ticket.events.get(kind="breached")
    assert (event.from_state, event.to_state) == ("assigned", "assigned")
    assert event.details["reclaimed"] is False


def test_breach_notify_then_resolve_is_not_in_time(notify_type, agent_user, clock):
    ticket = TicketFactory(ticket_type=notify_type, state="assigned", assignee=agent_user)
    clock.move_to(ticket.due_at)
    breach_sweep()
    clock.shift(minutes=10)
    ticket_resolve(ticket_id=ticket.pk, by=agent_user, result="late")
    ticket = fresh(ticket)
    assert ticket.in_time is False
    assert ticket.events.get(kind="resolved").details["in_time"] is False


def test_breach_in_the_pool_starts_a_new_round_at_once(ticket, clock):
    clock.move_to(ticket.due_at)
    assert breach_sweep() == 1
    ticket = fresh(ticket)
    assert ticket.state == TicketState.POOLED
    assert ticket.round == 2 and ticket.due_at == clock.now() + timedelta(minutes=60)
    assert ticket.priority == 3 and ticket.breached_at == clock.now()
    event = ticket.events.get(kind="breached")
    assert (event.from_state, event.to_state) == ("pooled", "pooled")
    assert event.details["reclaimed"] is False


def test_ticket_waiting_in_the_pool_breaches_again_each_round(ticket, supervisor, clock):
    first_due = ticket.due_at
    clock.move_to(first_due)
    breach_sweep()
    second_due = fresh(ticket).due_at

    clock.move_to(second_due - timedelta(seconds=1))
    assert breach_sweep() == 0
    clock.move_to(second_due)
    assert breach_sweep() == 1
    assert breach_sweep() == 0

    ticket = fresh(ticket)
    assert kinds(ticket, "breached") == 2
    assert ticket.breached_at == second_due          # the latest breach
    assert ticket.round == 3 and ticket.priority == 4
    assert Notification.objects.filter(user=supervisor, kind="breached").count() == 2


def test_reclaimed_ticket_breaches_again_with_its_next_holder(assigned_ticket, agent_user,
                                                              other_agent_user, clock):
    clock.move_to(assigned_ticket.due_at)
    breach_sweep()
    dispatch_run()
    second_due = fresh(assigned_ticket).due_at
    clock.move_to(second_due)
    assert breach_sweep() == 1
    ticket = fresh(assigned_ticket)
    assert ticket.state == TicketState.POOLED and ticket.breached_at == second_due
    assert set(ticket.excluded_agents.values_list("username", flat=True)) == {"agnes", "otto"}


# -- lock expiry -------------------------------------------------------------------------------------


def test_lock_expiry_sweep_clears_the_lock_once(assigned_ticket, agent_user, clock):
    ticket_lock_acquire(ticket_id=assigned_ticket.pk, by=agent_user, minutes=10)
    clock.shift(minutes=10, seconds=-1)
    assert lock_expiry_sweep() == 0
    assert fresh(assigned_ticket).locked_until is not None

    clock.shift(seconds=1)
    assert lock_expiry_sweep() == 1
    ticket = fresh(assigned_ticket)
    assert ticket.locked_until is None and ticket.locked_by is None
    assert ticket.state == TicketState.ASSIGNED
    event = ticket.events.get(kind="lock_expired")
    assert (event.from_state, event.to_state, event.actor) == ("assigned", "assigned", None)
    assert event.details["locked_by"] == "agnes"

    assert lock_expiry_sweep() == 0
    assert kinds(ticket, "lock_expired") == 1


def test_unlocked_ticket_gets_no_lock_expired_event(assigned_ticket, agent_user, clock):
    from tickets.services.work import ticket_unlock

    ticket_lock_acquire(ticket_id=assigned_ticket.pk, by=agent_user, minutes=10)
    ticket_unlock(ticket_id=assigned_ticket.pk, by=agent_user)
    clock.shift(minutes=11)
    assert lock_expiry_sweep() == 0


# -- away reclaim ------------------------------------------------------------------------------------


def go(user, status):
    agent_set_status(by=user, status=status)


@pytest.mark.parametrize("status", [Agent.Status.AWAY, Agent.Status.OFFLINE])
def test_away_reclaim_waits_out_the_grace_period(assigned_ticket, agent_user, status, settings,
                                                 clock):
    assert settings.ORDERLY_AWAY_GRACE_MINUTES == 10
    go(agent_user, status)
    clock.shift(minutes=10)
    before = ticket_row(assigned_ticket)
    assert away_reclaim_sweep() == 0
    assert ticket_row(assigned_ticket) == before

    clock.shift(seconds=1)
    assert away_reclaim_sweep() == 1
    ticket = fresh(assigned_ticket)
    assert ticket.state == TicketState.POOLED and ticket.assignee is None
    assert load(agent_user) == 0
    event = ticket.events.get(kind="reclaimed")
    assert (event.from_state, event.to_state, event.actor) == ("assigned", "pooled", None)
    assert event.details == {"agent": "agnes", "agent_status": status}
    assert away_reclaim_sweep() == 0


def test_reclaim_service_rechecks_grace_and_lock(ticket_type, agent_user, clock):
    """The sweep's id query and the per-ticket service each enforce the rule,
    so a stale id list (two sweeps, a status change in between) does no harm."""
    locked = TicketFactory(ticket_type=ticket_type, state="assigned", assignee=agent_user)
    free = TicketFactory(ticket_type=ticket_type, state="assigned", assignee=agent_user)
    ticket_lock_acquire(ticket_id=locked.pk, by=agent_user, minutes=30)
    go(agent_user, "away")
    clock.shift(minutes=10)
    assert away_reclaim_ids() == []
    assert ticket_reclaim(ticket_id=free.pk) is False
    clock.shift(seconds=1)
    assert away_reclaim_ids() == [free.pk]
    assert ticket_reclaim(ticket_id=locked.pk) is False
    assert ticket_reclaim(ticket_id=free.pk) is True
    assert ticket_reclaim(ticket_id=free.pk) is False
    go(agent_user, "online")
    clock.shift(minutes=30)
    assert ticket_reclaim(ticket_id=locked.pk) is False


def test_away_reclaim_changes_no_priority_and_starts_no_round(assigned_ticket, agent_user, clock):
    go(agent_user, "away")
    clock.shift(minutes=11)
    away_reclaim_sweep()
    ticket = fresh(assigned_ticket)
    assert (ticket.priority, ticket.round, ticket.due_at, ticket.sla_started_at) == (
        assigned_ticket.priority, assigned_ticket.round, assigned_ticket.due_at,
        assigned_ticket.sla_started_at,
    )
    assert ticket.breached_at is None and ticket.handover_count == 0


def test_away_reclaim_leaves_locked_tickets_until_the_lock_ends(ticket_type, agent_user, clock):
    locked = TicketFactory(ticket_type=ticket_type, state="assigned", assignee=agent_user)
    unlocked = TicketFactory(ticket_type=ticket_type, state="assigned", assignee=agent_user)
    ticket_lock_acquire(ticket_id=locked.pk, by=agent_user, minutes=30)
    go(agent_user, "away")
    clock.shift(minutes=11)
    assert away_reclaim_sweep() == 1
    assert fresh(unlocked).state == TicketState.POOLED
    assert fresh(locked).state == TicketState.ASSIGNED and load(agent_user) == 1

    clock.shift(minutes=19)  # the lock ends now; the expiry sweep has not run yet
    assert away_reclaim_sweep() == 1
    assert fresh(locked).state == TicketState.POOLED and load(agent_user) == 0


def test_agent_back_online_within_grace_keeps_tickets(assigned_ticket, agent_user, clock):
    go(agent_user, "away")
    clock.shift(minutes=9)
    go(agent_user, "online")
    clock.shift(minutes=30)
    assert away_reclaim_sweep() == 0
    assert fresh(assigned_ticket).assignee == agent_user


def test_online_agents_tickets_are_never_reclaimed(assigned_ticket, agent_user, clock):
    clock.shift(minutes=59)
    assert away_reclaim_sweep() == 0


def test_grace_counts_from_leaving_online_not_from_the_last_status_change(
    assigned_ticket, agent_user, clock
):
    go(agent_user, "away")
    clock.shift(minutes=9)
    go(agent_user, "offline")
    clock.shift(minutes=1, seconds=1)   # 10 min 1 s since leaving online
    assert away_reclaim_sweep() == 1
    assert fresh(assigned_ticket).state == TicketState.POOLED


def test_reclaimed_ticket_is_dispatched_to_an_online_agent(assigned_ticket, agent_user,
                                                           other_agent_user, clock):
    go(agent_user, "away")
    clock.shift(minutes=11)
    away_reclaim_sweep()
    dispatch_run()
    assert fresh(assigned_ticket).assignee == other_agent_user


# -- auto-close ----------------------------------------------------------------------------------------


def test_auto_close_exactly_at_the_end_of_the_feedback_window(team, agent_user, clock):
    ttype = TicketTypeFactory(team=team, feedback_window_hours=24)
    ticket = TicketFactory(ticket_type=ttype, state="resolved", assignee=agent_user)
    window_end = ticket.resolved_at + timedelta(hours=24)

    clock.move_to(window_end - timedelta(seconds=1))
    before = ticket_row(ticket)
    assert auto_close_sweep() == 0
    assert ticket_row(ticket) == before

    clock.move_to(window_end)
    assert auto_close_sweep() == 1
    ticket = fresh(ticket)
    assert ticket.state == TicketState.CLOSED and ticket.closed_at == window_end
    event = ticket.events.get(kind="auto_closed")
    assert (event.from_state, event.to_state, event.actor) == ("resolved", "closed", None)
    assert auto_close_sweep() == 0
    assert kinds(ticket, "auto_closed") == 1


def test_auto_close_ignores_answered_tickets(ticket_type, agent_user, clock):
    ticket = TicketFactory(ticket_type=ticket_type, state="closed", assignee=agent_user)
    clock.shift(days=10)
    assert auto_close_sweep() == 0
    assert kinds(ticket, "auto_closed") == 0


# -- every sweep is idempotent -------------------------------------------------------------------------


def test_all_sweeps_twice_do_nothing_more(ticket_type, notify_type, team, agent_user, clock):
    TicketFactory(ticket_type=ticket_type)                                        # breaches in pool
    TicketFactory(ticket_type=notify_type, state="assigned", assignee=agent_user)  # breach, notify
    slow = TicketTypeFactory(team=team, time_limit_minutes=600)
    locked = TicketFactory(ticket_type=slow, state="assigned", assignee=agent_user)
    ticket_lock_acquire(ticket_id=locked.pk, by=agent_user, minutes=5)         # expires, reclaimed
    TicketFactory(ticket_type=TicketTypeFactory(team=team, feedback_window_hours=1),
                  state="resolved", assignee=AgentUserFactory(teams=[team]))
    go(agent_user, "offline")
    clock.shift(hours=2)

    sweeps = [breach_sweep, lock_expiry_sweep, away_reclaim_sweep, auto_close_sweep]
    first = [sweep() for sweep in sweeps]
    assert all(first), first
    snapshot = (list(Ticket.objects.order_by("id").values()), TicketEvent.objects.count(),
                Notification.objects.count())
    assert [sweep() for sweep in sweeps] == [0, 0, 0, 0]
    assert snapshot == (list(Ticket.objects.order_by("id").values()),
                        TicketEvent.objects.count(), Notification.objects.count())
