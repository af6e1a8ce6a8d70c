"""The time-limited lock, the patent's rule (DESIGN.md 1.4)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tickets.errors import (
    InvalidTransition,
    LockExceedsTimeLeft,
    NotAssignee,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tickets.models import Ticket, TicketEvent
from tickets.services.work import lock_max_minutes, ticket_lock_acquire, ticket_unlock
from tests.factories import TicketFactory, TicketTypeFactory, event_trail, ticket_row

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


def lock(ticket, by, minutes):
    return ticket_lock_acquire(ticket_id=ticket.pk, by=by, minutes=minutes)


def refused_lock(ticket, by, minutes) -> LockExceedsTimeLeft:
    before = ticket_row(ticket)
    events = event_trail(ticket)
    with pytest.raises(LockExceedsTimeLeft) as exc:
        lock(ticket, by, minutes)
    assert ticket_row(ticket) == before
    assert event_trail(ticket) == events
    assert exc.value.code == "lock_exceeds_time_left" and exc.value.status == 409
    assert exc.value.as_dict()["max_minutes"] == exc.value.max_minutes
    return exc.value


# -- the rule ------------------------------------------------------------------------------------


def test_lock_of_exactly_the_time_left_is_accepted(assigned_ticket, agent_user, clock):
    assert assigned_ticket.due_at == clock.now() + timedelta(minutes=60)
    ticket = lock(assigned_ticket, agent_user, 60)
    assert ticket.locked_until == assigned_ticket.due_at
    assert ticket.locked_by == agent_user
    assert Ticket.objects.get(pk=ticket.pk).locked_until == clock.now() + timedelta(minutes=60)


def test_lock_one_minute_longer_than_time_left_is_refused(assigned_ticket, agent_user):
    assert refused_lock(assigned_ticket, agent_user, 61).max_minutes == 60


def test_max_minutes_is_whole_minutes_left_rounded_down(assigned_ticket, agent_user, clock):
    clock.shift(minutes=30, seconds=30)      # 29 min 30 s left
    assert refused_lock(assigned_ticket, agent_user, 30).max_minutes == 29
    ticket = lock(assigned_ticket, agent_user, 29)
    assert ticket.locked_until == clock.now() + timedelta(minutes=29)


def test_lock_shorter_than_time_left_is_accepted(assigned_ticket, agent_user, clock):
    ticket = lock(assigned_ticket, agent_user, 1)
    assert ticket.locked_until == clock.now() + timedelta(minutes=1)


def test_lock_with_less_than_a_minute_left_is_refused_with_zero(assigned_ticket, agent_user,
                                                                 clock):
    clock.shift(minutes=59, seconds=1)
    assert refused_lock(assigned_ticket, agent_user, 1).max_minutes == 0


@pytest.mark.parametrize("past", [timedelta(0), timedelta(seconds=1), timedelta(hours=3)])
def test_lock_at_or_after_due_at_is_refused_with_zero(team, agent_user, clock, past):
    notify_type = TicketTypeFactory(team=team, on_breach="notify")
    ticket = TicketFactory(ticket_type=notify_type, state="assigned", assignee=agent_user)
    clock.move_to(ticket.due_at + past)
    assert refused_lock(ticket, agent_user, 1).max_minutes == 0


def test_type_cap_limits_the_lock(team, agent_user, clock):
    capped = TicketTypeFactory(team=team, time_limit_minutes=60, max_lock_minutes=15)
    ticket = TicketFactory(ticket_type=capped, state="assigned", assignee=agent_user)
    assert refused_lock(ticket, agent_user, 16).max_minutes == 15
    assert lock(ticket, agent_user, 15).locked_until == clock.now() + timedelta(minutes=15)


def test_time_left_beats_the_type_cap_near_the_deadline(team, agent_user, clock):
    capped = TicketTypeFactory(team=team, time_limit_minutes=60, max_lock_minutes=15)
    ticket = TicketFactory(ticket_type=capped, state="assigned", assignee=agent_user)
    clock.shift(minutes=50)
    assert refused_lock(ticket, agent_user, 11).max_minutes == 10
    lock(ticket, agent_user, 10)


@pytest.mark.parametrize("minutes", [0, -5, 1.5, 2.0, "5", None, True])
def test_minutes_must_be_a_whole_number_at_least_one(assigned_ticket, agent_user, minutes):
    before = ticket_row(assigned_ticket)
    with pytest.raises(ValidationFailed) as exc:
        lock(assigned_ticket, agent_user, minutes)
    assert list(exc.value.fields) == ["minutes"]
    assert ticket_row(assigned_ticket) == before


def test_lock_max_minutes_helper(assigned_ticket, clock):
    ticket = Ticket.objects.select_related("ticket_type").get(pk=assigned_ticket.pk)
    assert lock_max_minutes(ticket, clock.now()) == 60
    assert lock_max_minutes(ticket, clock.now() + timedelta(seconds=59)) == 59
    assert lock_max_minutes(ticket, ticket.due_at) == 0
    assert lock_max_minutes(ticket, ticket.due_at + timedelta(days=1)) == 0


# -- the lock's life ---------------------------------------------------------------------------------


def test_lock_writes_locked_event(assigned_ticket, agent_user, clock):
    lock(assigned_ticket, agent_user, 20)
    event = TicketEvent.objects.filter(ticket=assigned_ticket).last()
    assert (event.kind, event.from_state, event.to_state, event.actor) == (
        "locked", "assigned", "assigned", agent_user
    )
    assert event.details["minutes"] == 20
    assert event.details["replaced_until"] is None


def test_relock_replaces_the_lock_under_the_same_rule(assigned_ticket, agent_user, clock):
    first = lock(assigned_ticket, agent_user, 40).locked_until
    clock.shift(minutes=10)
    ticket = lock(assigned_ticket, agent_user, 5)     # shorter: replaces, does not extend
    assert ticket.locked_until == clock.now() + timedelta(minutes=5)
    assert TicketEvent.objects.filter(ticket=ticket, kind="locked").last().details[
        "replaced_until"] == first.isoformat()
    assert refused_lock(assigned_ticket, agent_user, 51).max_minutes == 50
    assert Ticket.objects.get(pk=ticket.pk).locked_until == clock.now() + timedelta(minutes=5)


def test_lock_does_not_move_the_time_limit(assigned_ticket, agent_user):
    lock(assigned_ticket, agent_user, 30)
    assert Ticket.objects.get(pk=assigned_ticket.pk).due_at == assigned_ticket.due_at


def test_lock_is_not_in_force_at_locked_until(assigned_ticket, agent_user, clock):
    ticket = lock(assigned_ticket, agent_user, 10)
    assert ticket.lock_in_force(clock.now() + timedelta(minutes=10) - timedelta(seconds=1))
    assert not ticket.lock_in_force(clock.now() + timedelta(minutes=10))


# -- who may lock ----------------------------------------------------------------------------------


def test_other_agent_of_the_team_may_not_lock(assigned_ticket, other_agent_user):
    before = ticket_row(assigned_ticket)
    with pytest.raises(NotAssignee):
        lock(assigned_ticket, other_agent_user, 5)
    assert ticket_row(assigned_ticket) == before


def test_nobody_may_lock_a_pooled_ticket(ticket, agent_user):
    with pytest.raises(NotAssignee):
        lock(ticket, agent_user, 5)


def test_agent_of_another_team_gets_not_found(assigned_ticket, outside_agent_user):
    with pytest.raises(NotFound):
        lock(assigned_ticket, outside_agent_user, 5)


@pytest.mark.parametrize("persona", ["requester", "supervisor", "integration"])
def test_lock_is_for_agents_only(request, persona, assigned_ticket):
    with pytest.raises(PermissionDenied):
        lock(assigned_ticket, request.getfixturevalue(persona), 5)


def test_former_assignee_cannot_lock_a_resolved_ticket(ticket_type, agent_user):
    done = TicketFactory(ticket_type=ticket_type, state="resolved", assignee=agent_user)
    before = ticket_row(done)
    with pytest.raises(InvalidTransition):
        lock(done, agent_user, 5)
    assert ticket_row(done) == before


# -- unlock ----------------------------------------------------------------------------------------


def test_assignee_unlocks_early(assigned_ticket, agent_user):
    lock(assigned_ticket, agent_user, 30)
    ticket = ticket_unlock(ticket_id=assigned_ticket.pk, by=agent_user)
    assert ticket.locked_until is None and ticket.locked_by is None
    event = TicketEvent.objects.filter(ticket=ticket).last()
    assert (event.kind, event.from_state, event.to_state) == ("unlocked", "assigned", "assigned")
    assert event.details == {"forced": False}


def test_supervisor_force_unlocks(assigned_ticket, agent_user, supervisor):
    lock(assigned_ticket, agent_user, 30)
    ticket = ticket_unlock(ticket_id=assigned_ticket.pk, by=supervisor)
    assert ticket.locked_until is None
    assert TicketEvent.objects.filter(ticket=ticket).last().details == {"forced": True}


def test_unlock_without_a_lock_is_refused(assigned_ticket, agent_user):
    before = ticket_row(assigned_ticket)
    with pytest.raises(InvalidTransition):
        ticket_unlock(ticket_id=assigned_ticket.pk, by=agent_user)
    assert ticket_row(assigned_ticket) == before


def test_unlock_of_an_expired_lock_is_refused(assigned_ticket, agent_user, clock):
    lock(assigned_ticket, agent_user, 5)
    clock.shift(minutes=5)
    with pytest.raises(InvalidTransition):
        ticket_unlock(ticket_id=assigned_ticket.pk, by=agent_user)


def test_other_agent_may_not_unlock(assigned_ticket, agent_user, other_agent_user):
    lock(assigned_ticket, agent_user, 30)
    before = ticket_row(assigned_ticket)
    with pytest.raises(NotAssignee):
        ticket_unlock(ticket_id=assigned_ticket.pk, by=other_agent_user)
    assert ticket_row(assigned_ticket) == before


def test_requester_may_not_unlock(assigned_ticket, agent_user, requester):
    lock(assigned_ticket, agent_user, 30)
    with pytest.raises(PermissionDenied):
        ticket_unlock(ticket_id=assigned_ticket.pk, by=requester)


def test_supervisor_of_another_team_gets_not_found_on_unlock(assigned_ticket, agent_user,
                                                             outside_supervisor):
    lock(assigned_ticket, agent_user, 30)
    with pytest.raises(NotFound):
        ticket_unlock(ticket_id=assigned_ticket.pk, by=outside_supervisor)
