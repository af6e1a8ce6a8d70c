"""The requester's verdict (DESIGN.md 1.8)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from feedback.models import Feedback
from feedback.services import ticket_feedback
from tickets.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from tickets.models import Notification, TicketEvent, TicketState
from tickets.services.dispatch import dispatch_run
from tickets.services.sweeps import auto_close_sweep, breach_sweep
from tickets.services.work import ticket_cancel, ticket_resolve
from tests.factories import TicketFactory, TicketTypeFactory, event_trail, ticket_row

from tests.factories import fresh

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


@pytest.fixture
def resolved_ticket(ticket_type, requester, agent_user):
    return TicketFactory(ticket_type=ticket_type, requester=requester, state="resolved",
                         assignee=agent_user)


def unchanged_after(ticket, error, call):
    before, events = ticket_row(ticket), event_trail(ticket)
    feedbacks = Feedback.objects.count()
    with pytest.raises(error) as exc:
        call()
    assert ticket_row(ticket) == before
    assert event_trail(ticket) == events
    assert Feedback.objects.count() == feedbacks
    return exc.value


# -- accept ----------------------------------------------------------------------------------------


def test_accept_closes_the_ticket(resolved_ticket, requester, clock):
    clock.shift(hours=1)
    ticket = ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=True, rating=5,
                             comment="Great")
    ticket = fresh(ticket)
    assert ticket.state == TicketState.CLOSED and ticket.closed_at == clock.now()
    assert ticket.rating == 5 and ticket.feedback_due_at is None
    assert ticket.in_time is True and ticket.result == "Done."
    event = ticket.events.last()
    assert (event.kind, event.from_state, event.to_state, event.actor) == (
        "accepted", "resolved", "closed", requester
    )
    assert event.details["rating"] == 5 and event.details["comment"] == "Great"
    answer = Feedback.objects.get(ticket=ticket)
    assert (answer.accepted, answer.rating, answer.comment, answer.resolution) == (
        True, 5, "Great", 0
    )


def test_accept_needs_neither_rating_nor_comment(resolved_ticket, requester):
    ticket = ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=True)
    assert fresh(ticket).state == TicketState.CLOSED and fresh(ticket).rating is None


@pytest.mark.parametrize("rating", [1, 5])
def test_rating_bounds_are_accepted(resolved_ticket, requester, rating):
    ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=True, rating=rating)
    assert fresh(resolved_ticket).rating == rating


@pytest.mark.parametrize("rating", [0, 6, -1, "5", 4.5, True])
def test_rating_outside_1_to_5_is_refused(resolved_ticket, requester, rating):
    exc = unchanged_after(resolved_ticket, ValidationFailed, lambda: ticket_feedback(
        ticket_id=resolved_ticket.pk, by=requester, accepted=True, rating=rating))
    assert list(exc.fields) == ["rating"]


@pytest.mark.parametrize("accepted", [None, "yes", 1, 0])
def test_accepted_must_be_a_boolean(resolved_ticket, requester, accepted):
    exc = unchanged_after(resolved_ticket, ValidationFailed, lambda: ticket_feedback(
        ticket_id=resolved_ticket.pk, by=requester, accepted=accepted, comment="x"))
    assert "accepted" in exc.fields


def test_comment_is_limited_to_5000(resolved_ticket, requester):
    unchanged_after(resolved_ticket, ValidationFailed, lambda: ticket_feedback(
        ticket_id=resolved_ticket.pk, by=requester, accepted=True, comment="x" * 5001))
    ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=True, comment="x" * 5000)


# -- reject ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("comment", [None, "", "   "])
def test_reject_needs_a_comment(resolved_ticket, requester, comment):
    exc = unchanged_after(resolved_ticket, ValidationFailed, lambda: ticket_feedback(
        ticket_id=resolved_ticket.pk, by=requester, accepted=False, comment=comment))
    assert list(exc.fields) == ["comment"]


def test_reject_reopens_in_the_pool_with_a_new_round(
    resolved_ticket, requester, clock, django_capture_on_commit_callbacks, sent_tasks
):
    clock.shift(hours=3)
    with django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=False,
                                 rating=2, comment="Still broken")
    ticket = fresh(ticket)
    assert ticket.state == TicketState.POOLED and ticket.assignee is None
    assert ticket.priority == resolved_ticket.priority + 1
    assert ticket.reopen_count == 1
    assert ticket.round == resolved_ticket.round + 1
    assert ticket.sla_started_at == clock.now()
    assert ticket.due_at == clock.now() + timedelta(minutes=60)
    assert ticket.in_time is None and ticket.result is None and ticket.resolved_at is None
    assert ticket.feedback_due_at is None and ticket.rating == 2
    event = ticket.events.last()
    assert (event.kind, event.from_state, event.to_state, event.actor) == (
        "rejected", "resolved", "pooled", requester
    )
    assert event.details["comment"] == "Still broken"
    assert sent_tasks == [("tickets.dispatch", {})]


@pytest.mark.parametrize("start, step, expected", [(2, 2, 4), (4, 3, 5), (5, 1, 5)])
def test_reject_raises_priority_by_the_reopen_step_capped_at_5(team, requester, agent_user,
                                                               start, step, expected):
    ttype = TicketTypeFactory(team=team, reopen_priority_step=step)
    ticket = TicketFactory(ticket_type=ttype, requester=requester, priority=start,
                           state="resolved", assignee=agent_user)
    ticket_feedback(ticket_id=ticket.pk, by=requester, accepted=False, comment="no")
    assert fresh(ticket).priority == expected


def test_reopen_after_a_late_round_starts_clean(team, requester, agent_user, clock):
    notify = TicketTypeFactory(team=team, on_breach="notify")
    ticket = TicketFactory(ticket_type=notify, requester=requester, state="assigned",
                           assignee=agent_user)
    clock.move_to(ticket.due_at)
    breach_sweep()
    ticket_resolve(ticket_id=ticket.pk, by=agent_user, result="late")
    assert fresh(ticket).in_time is False
    ticket_feedback(ticket_id=ticket.pk, by=requester, accepted=False, comment="no")
    dispatch_run()
    clock.shift(minutes=30)
    ticket_resolve(ticket_id=ticket.pk, by=agent_user, result="better")
    assert fresh(ticket).in_time is True


def test_reopened_ticket_is_dispatched_again(resolved_ticket, requester, agent_user):
    ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=False, comment="no")
    assert dispatch_run() == 1
    assert fresh(resolved_ticket).assignee == agent_user


# -- once per resolution -------------------------------------------------------------------------------


def test_second_answer_after_accept_is_refused(resolved_ticket, requester):
    ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=True)
    unchanged_after(resolved_ticket, InvalidTransition, lambda: ticket_feedback(
        ticket_id=resolved_ticket.pk, by=requester, accepted=False, comment="changed my mind"))


def test_second_answer_after_reject_is_refused(resolved_ticket, requester):
    ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=False, comment="no")
    unchanged_after(resolved_ticket, InvalidTransition, lambda: ticket_feedback(
        ticket_id=resolved_ticket.pk, by=requester, accepted=True))


def test_each_resolution_gets_its_own_answer(resolved_ticket, requester, agent_user):
    ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=False, comment="no",
                    rating=1)
    dispatch_run()
    ticket_resolve(ticket_id=resolved_ticket.pk, by=agent_user, result="fixed now")
    ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=True, rating=4)
    assert list(Feedback.objects.filter(ticket=resolved_ticket).values_list(
        "resolution", "accepted", "rating")) == [(0, False, 1), (1, True, 4)]
    assert fresh(resolved_ticket).rating == 4


def test_answer_after_auto_close_is_refused(resolved_ticket, requester, clock):
    clock.shift(hours=72)
    assert auto_close_sweep() == 1
    unchanged_after(resolved_ticket, InvalidTransition, lambda: ticket_feedback(
        ticket_id=resolved_ticket.pk, by=requester, accepted=True))


def test_answer_just_before_auto_close_is_taken(resolved_ticket, requester, clock):
    clock.shift(hours=72, seconds=-1)
    ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=False, comment="no")
    clock.shift(seconds=1)
    assert auto_close_sweep() == 0
    assert fresh(resolved_ticket).state == TicketState.POOLED


def test_reresolved_ticket_gets_a_fresh_feedback_window(resolved_ticket, requester, agent_user,
                                                        clock):
    ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=False, comment="no")
    dispatch_run()
    clock.shift(hours=1)
    ticket_resolve(ticket_id=resolved_ticket.pk, by=agent_user, result="again")
    clock.shift(hours=72, seconds=-1)
    assert auto_close_sweep() == 0
    clock.shift(seconds=1)
    assert auto_close_sweep() == 1


# -- wrong state, wrong person -------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["pooled", "assigned", "closed", "cancelled"])
def test_feedback_outside_resolved_is_invalid(ticket_type, requester, agent_user, state):
    ticket = TicketFactory(ticket_type=ticket_type, requester=requester, state=state,
                           assignee=agent_user if state != "cancelled" else None)
    unchanged_after(ticket, InvalidTransition, lambda: ticket_feedback(
        ticket_id=ticket.pk, by=requester, accepted=True))


def test_feedback_on_callback_ticket_is_invalid(team, requester):
    ticket = TicketFactory(ticket_type=TicketTypeFactory(team=team, callback=True),
                           requester=requester)
    unchanged_after(ticket, InvalidTransition, lambda: ticket_feedback(
        ticket_id=ticket.pk, by=requester, accepted=True))


def test_other_requester_gets_not_found(resolved_ticket, other_requester):
    unchanged_after(resolved_ticket, NotFound, lambda: ticket_feedback(
        ticket_id=resolved_ticket.pk, by=other_requester, accepted=True))


@pytest.mark.parametrize("persona", ["agent_user", "supervisor", "integration"])
def test_feedback_is_for_requesters_only(request, persona, resolved_ticket):
    unchanged_after(resolved_ticket, PermissionDenied, lambda: ticket_feedback(
        ticket_id=resolved_ticket.pk, by=request.getfixturevalue(persona), accepted=True))


def test_feedback_writes_no_stray_notifications(resolved_ticket, requester):
    before = Notification.objects.count()
    ticket_feedback(ticket_id=resolved_ticket.pk, by=requester, accepted=True)
    assert Notification.objects.count() == before
    assert TicketEvent.objects.filter(ticket=resolved_ticket, kind="accepted").count() == 1


def test_cancel_is_refused_while_waiting_for_feedback(resolved_ticket, requester):
    unchanged_after(resolved_ticket, InvalidTransition, lambda: ticket_cancel(
        ticket_id=resolved_ticket.pk, by=requester))
