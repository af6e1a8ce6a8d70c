"""Hand-over, resolve, cancel, comments and notes (DESIGN.md 1.5, 1.6, 1.10, 1.11)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from agents.models import Agent
from tickets.errors import InvalidTransition, NotAssignee, NotFound, PermissionDenied, ValidationFailed
from tickets.models import Notification, Ticket, TicketEvent, TicketState
from tickets.services.creation import ticket_create
from tickets.services.dispatch import dispatch_run
from tickets.services.work import (
    ticket_cancel,
    ticket_comment,
    ticket_handover,
    ticket_lock_acquire,
    ticket_note,
    ticket_resolve,
)
from tests.factories import (
    AgentUserFactory,
    SupervisorFactory,
    TicketFactory,
    TicketTypeFactory,
    event_trail,
    ticket_row,
)

from tests.factories import agent_load as load, fresh

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


def excluded(ticket: Ticket) -> set[str]:
    return set(fresh(ticket).excluded_agents.values_list("username", flat=True))


def inbox(user) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("id").values_list("kind", flat=True))


def unchanged_after(ticket, error, call):
    """``call`` must raise ``error`` and leave the row and its events untouched."""
    before, events = ticket_row(ticket), event_trail(ticket)
    notifications = Notification.objects.count()
    with pytest.raises(error) as exc:
        call()
    assert ticket_row(ticket) == before
    assert event_trail(ticket) == events
    assert Notification.objects.count() == notifications
    return exc.value


# -- hand-over -------------------------------------------------------------------------------------


def test_handover_returns_ticket_to_pool_and_excludes_the_agent(assigned_ticket, agent_user):
    ticket = ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="wrong skills")
    ticket = fresh(ticket)
    assert ticket.state == TicketState.POOLED
    assert ticket.assignee is None and ticket.assigned_at is None
    assert excluded(ticket) == {"agnes"}
    assert ticket.handover_count == 1
    assert load(agent_user) == 0


def test_handover_raises_priority_by_the_types_step(team, agent_user):
    ttype = TicketTypeFactory(team=team, handover_priority_step=2)
    ticket = TicketFactory(ticket_type=ttype, priority=2, state="assigned", assignee=agent_user)
    ticket_handover(ticket_id=ticket.pk, by=agent_user, reason="r")
    assert fresh(ticket).priority == 4


@pytest.mark.parametrize("start, step", [(4, 2), (5, 1), (2, 4)])
def test_handover_priority_is_capped_at_5(team, agent_user, start, step):
    ttype = TicketTypeFactory(team=team, handover_priority_step=step)
    ticket = TicketFactory(ticket_type=ttype, priority=start, state="assigned", assignee=agent_user)
    ticket_handover(ticket_id=ticket.pk, by=agent_user, reason="r")
    assert fresh(ticket).priority == 5


def test_handover_starts_no_new_round(assigned_ticket, agent_user, other_agent_user, clock):
    clock.shift(minutes=25)
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="r")
    dispatch_run()
    ticket = fresh(assigned_ticket)
    assert ticket.assignee == other_agent_user
    assert (ticket.round, ticket.due_at, ticket.sla_started_at) == (
        assigned_ticket.round, assigned_ticket.due_at, assigned_ticket.sla_started_at
    )


def test_handover_writes_event_and_nudges_dispatch(
    assigned_ticket, agent_user, django_capture_on_commit_callbacks, sent_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="on leave")
    event = TicketEvent.objects.filter(ticket=assigned_ticket).last()
    assert (event.kind, event.from_state, event.to_state, event.actor) == (
        "handed_over", "assigned", "pooled", agent_user
    )
    assert event.details["reason"] == "on leave"
    assert (event.details["priority_from"], event.details["priority_to"]) == (2, 3)
    assert sent_tasks == [("tickets.dispatch", {})]


def test_handover_of_own_locked_ticket_ends_the_lock(assigned_ticket, agent_user):
    ticket_lock_acquire(ticket_id=assigned_ticket.pk, by=agent_user, minutes=30)
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="r")
    ticket = fresh(assigned_ticket)
    assert ticket.locked_until is None and ticket.locked_by is None


def test_handover_count_and_exclusions_accumulate(assigned_ticket, agent_user, other_agent_user):
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="r")
    dispatch_run()
    assert fresh(assigned_ticket).assignee == other_agent_user
    ticket_handover(ticket_id=assigned_ticket.pk, by=other_agent_user, reason="r")
    ticket = fresh(assigned_ticket)
    assert ticket.handover_count == 2 and ticket.priority == 4
    assert excluded(ticket) == {"agnes", "otto"}
    # Everyone is excluded now: the exclusion gives way.
    assert dispatch_run() == 1


@pytest.mark.parametrize("reason", [None, "", "   ", "x" * 1001])
def test_handover_needs_a_reason(assigned_ticket, agent_user, reason):
    unchanged_after(assigned_ticket, ValidationFailed, lambda: ticket_handover(
        ticket_id=assigned_ticket.pk, by=agent_user, reason=reason))


def test_only_the_assignee_hands_over(assigned_ticket, other_agent_user):
    unchanged_after(assigned_ticket, NotAssignee, lambda: ticket_handover(
        ticket_id=assigned_ticket.pk, by=other_agent_user, reason="r"))


def test_handover_of_a_locked_ticket_by_another_agent_is_refused(assigned_ticket, agent_user,
                                                                 other_agent_user):
    ticket_lock_acquire(ticket_id=assigned_ticket.pk, by=agent_user, minutes=30)
    unchanged_after(assigned_ticket, NotAssignee, lambda: ticket_handover(
        ticket_id=assigned_ticket.pk, by=other_agent_user, reason="r"))


@pytest.mark.parametrize("persona", ["supervisor", "requester"])
def test_handover_is_for_agents_only(request, persona, assigned_ticket):
    unchanged_after(assigned_ticket, PermissionDenied, lambda: ticket_handover(
        ticket_id=assigned_ticket.pk, by=request.getfixturevalue(persona), reason="r"))


def test_handover_of_invisible_ticket_is_not_found(assigned_ticket, outside_agent_user):
    unchanged_after(assigned_ticket, NotFound, lambda: ticket_handover(
        ticket_id=assigned_ticket.pk, by=outside_agent_user, reason="r"))


def test_unknown_ticket_is_not_found(agent_user):
    with pytest.raises(NotFound):
        ticket_handover(ticket_id=987654, by=agent_user, reason="r")


# -- resolve ---------------------------------------------------------------------------------------


def test_resolve_in_time(assigned_ticket, agent_user, requester, clock):
    clock.shift(minutes=59, seconds=59)
    ticket = ticket_resolve(ticket_id=assigned_ticket.pk, by=agent_user, result="Refunded.")
    ticket = fresh(ticket)
    assert ticket.state == TicketState.RESOLVED
    assert ticket.in_time is True
    assert ticket.result == "Refunded." and ticket.resolved_at == clock.now()
    assert ticket.feedback_due_at == clock.now() + timedelta(hours=72)
    event = ticket.events.get(kind="resolved")
    assert (event.from_state, event.to_state, event.actor) == ("assigned", "resolved", agent_user)
    assert event.details["in_time"] is True
    assert load(agent_user) == 0


def test_resolve_notifies_the_requester(assigned_ticket, agent_user, requester):
    ticket_resolve(ticket_id=assigned_ticket.pk, by=agent_user, result="Refunded 20 EUR.")
    note = Notification.objects.get(user=requester)
    assert note.kind == "resolved" and note.ticket_id == assigned_ticket.pk
    assert "Refunded 20 EUR." in note.message
    assert event_trail(assigned_ticket)[-1] == ("notified", "resolved", "resolved")
    assert inbox(agent_user) == []


def test_resolve_after_due_at_is_late_even_before_the_breach_sweep(assigned_ticket, agent_user,
                                                                   clock):
    """The deadline, not the sweep's timing, decides: a late sweep must not
    turn a late resolution into an in-time one."""
    clock.move_to(assigned_ticket.due_at)
    ticket = ticket_resolve(ticket_id=assigned_ticket.pk, by=agent_user, result="late")
    assert fresh(ticket).in_time is False
    assert ticket.events.get(kind="resolved").details["in_time"] is False


def test_resolve_clears_exclusions(assigned_ticket, agent_user, other_agent_user):
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="r")
    dispatch_run()
    ticket_resolve(ticket_id=assigned_ticket.pk, by=other_agent_user, result="ok")
    assert excluded(assigned_ticket) == set()


def test_resolve_ends_the_lock(assigned_ticket, agent_user):
    ticket_lock_acquire(ticket_id=assigned_ticket.pk, by=agent_user, minutes=30)
    ticket_resolve(ticket_id=assigned_ticket.pk, by=agent_user, result="ok")
    assert fresh(assigned_ticket).locked_until is None


def test_resolve_frees_the_agent_and_nudges_dispatch(
    assigned_ticket, agent_user, django_capture_on_commit_callbacks, sent_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        ticket_resolve(ticket_id=assigned_ticket.pk, by=agent_user, result="ok")
    assert ("tickets.dispatch", {}) in sent_tasks


@pytest.mark.parametrize("result", [None, "", "  ", "x" * 20_001])
def test_resolve_needs_a_result(assigned_ticket, agent_user, result):
    unchanged_after(assigned_ticket, ValidationFailed, lambda: ticket_resolve(
        ticket_id=assigned_ticket.pk, by=agent_user, result=result))


def test_only_the_assignee_resolves(assigned_ticket, other_agent_user):
    unchanged_after(assigned_ticket, NotAssignee, lambda: ticket_resolve(
        ticket_id=assigned_ticket.pk, by=other_agent_user, result="x"))


def test_nobody_resolves_a_pooled_ticket(ticket, agent_user):
    unchanged_after(ticket, NotAssignee, lambda: ticket_resolve(
        ticket_id=ticket.pk, by=agent_user, result="x"))


@pytest.mark.parametrize("persona", ["supervisor", "requester", "integration"])
def test_resolve_is_for_agents_only(request, persona, assigned_ticket):
    unchanged_after(assigned_ticket, PermissionDenied, lambda: ticket_resolve(
        ticket_id=assigned_ticket.pk, by=request.getfixturevalue(persona), result="x"))


# -- wrong state: the former assignee acting on a finished ticket ------------------------------------


@pytest.fixture(params=["resolved", "closed", "cancelled_from_assigned"])
def finished_ticket(request, ticket_type, requester, agent_user):
    if request.param == "cancelled_from_assigned":
        ticket = TicketFactory(ticket_type=ticket_type, requester=requester, state="assigned",
                               assignee=agent_user)
        ticket_cancel(ticket_id=ticket.pk, by=requester)
        return fresh(ticket)
    return TicketFactory(ticket_type=ticket_type, requester=requester, state=request.param,
                         assignee=agent_user)


def test_resolve_of_finished_ticket_is_invalid(finished_ticket, agent_user):
    exc = unchanged_after(finished_ticket, InvalidTransition, lambda: ticket_resolve(
        ticket_id=finished_ticket.pk, by=agent_user, result="again"))
    assert exc.code == "invalid_transition" and exc.status == 409


def test_handover_of_finished_ticket_is_invalid(finished_ticket, agent_user):
    unchanged_after(finished_ticket, InvalidTransition, lambda: ticket_handover(
        ticket_id=finished_ticket.pk, by=agent_user, reason="r"))


def test_lock_of_finished_ticket_is_invalid(finished_ticket, agent_user):
    unchanged_after(finished_ticket, InvalidTransition, lambda: ticket_lock_acquire(
        ticket_id=finished_ticket.pk, by=agent_user, minutes=1))


def test_cancel_of_finished_ticket_is_invalid(finished_ticket, requester, supervisor):
    for by in (requester, supervisor):
        unchanged_after(finished_ticket, InvalidTransition, lambda: ticket_cancel(
            ticket_id=finished_ticket.pk, by=by))


def test_comment_on_finished_ticket_is_refused(finished_ticket, requester, agent_user):
    for by in (requester, agent_user):
        unchanged_after(finished_ticket, InvalidTransition, lambda: ticket_comment(
            ticket_id=finished_ticket.pk, by=by, body="hello?"))


# -- cancel ----------------------------------------------------------------------------------------


@pytest.fixture
def open_ticket_in(ticket_type, team, requester, agent_user):
    def make(state: str) -> Ticket:
        if state == "callback":
            return TicketFactory(ticket_type=TicketTypeFactory(team=team, callback=True),
                                 requester=requester)
        return TicketFactory(ticket_type=ticket_type, requester=requester, state=state,
                             assignee=agent_user if state == "assigned" else None)
    return make


@pytest.mark.parametrize("state", ["callback", "pooled", "assigned"])
@pytest.mark.parametrize("persona", ["requester", "supervisor"])
def test_cancel_from_each_open_state(request, open_ticket_in, state, persona, clock):
    ticket = open_ticket_in(state)
    by = request.getfixturevalue(persona)
    ticket_cancel(ticket_id=ticket.pk, by=by, reason="no longer needed")
    ticket = fresh(ticket)
    assert ticket.state == TicketState.CANCELLED and ticket.cancelled_at == clock.now()
    assert ticket.locked_until is None and ticket.callback_next_at is None
    event = ticket.events.get(kind="cancelled")
    assert (event.from_state, event.to_state, event.actor) == (state, "cancelled", by)
    assert event.details == {"reason": "no longer needed"}
    assert Notification.objects.filter(user=ticket.requester, kind="cancelled").count() == 1


def test_cancel_of_assigned_ticket_frees_the_agent(assigned_ticket, agent_user, requester,
                                                   django_capture_on_commit_callbacks, sent_tasks):
    with django_capture_on_commit_callbacks(execute=True):
        ticket_cancel(ticket_id=assigned_ticket.pk, by=requester)
    assert load(agent_user) == 0
    assert sent_tasks == [("tickets.dispatch", {})]


def test_cancel_of_locked_ticket_by_requester(assigned_ticket, agent_user, requester):
    ticket_lock_acquire(ticket_id=assigned_ticket.pk, by=agent_user, minutes=30)
    ticket_cancel(ticket_id=assigned_ticket.pk, by=requester)
    ticket = fresh(assigned_ticket)
    assert ticket.state == TicketState.CANCELLED and ticket.locked_until is None


@pytest.mark.parametrize("persona", ["agent_user", "integration"])
def test_cancel_by_other_roles_is_denied(request, persona, assigned_ticket):
    unchanged_after(assigned_ticket, PermissionDenied, lambda: ticket_cancel(
        ticket_id=assigned_ticket.pk, by=request.getfixturevalue(persona)))


@pytest.mark.parametrize("persona", ["other_requester", "outside_supervisor"])
def test_cancel_of_someone_elses_ticket_is_not_found(request, persona, ticket):
    unchanged_after(ticket, NotFound, lambda: ticket_cancel(
        ticket_id=ticket.pk, by=request.getfixturevalue(persona)))


def test_cancel_reason_is_limited(ticket, requester):
    unchanged_after(ticket, ValidationFailed, lambda: ticket_cancel(
        ticket_id=ticket.pk, by=requester, reason="x" * 1001))


# -- comments and notes ----------------------------------------------------------------------------


def test_requester_comment_reaches_the_assignee(assigned_ticket, requester, agent_user,
                                                other_agent_user, supervisor):
    event = ticket_comment(ticket_id=assigned_ticket.pk, by=requester, body="Any news?")
    assert (event.kind, event.from_state, event.to_state, event.actor) == (
        "comment", "assigned", "assigned", requester
    )
    assert event.details == {"body": "Any news?"}
    assert inbox(agent_user) == ["comment"]
    assert inbox(other_agent_user) == [] and inbox(supervisor) == [] and inbox(requester) == []


def test_requester_comment_on_pooled_ticket_reaches_the_teams_agents(
    ticket, requester, agent_user, other_agent_user, outside_agent_user
):
    ticket_comment(ticket_id=ticket.pk, by=requester, body="Hello?")
    assert inbox(agent_user) == ["comment"] and inbox(other_agent_user) == ["comment"]
    assert inbox(outside_agent_user) == [] and inbox(requester) == []


@pytest.mark.parametrize("persona", ["agent_user", "other_agent_user", "supervisor"])
def test_staff_comment_reaches_the_requester(request, persona, assigned_ticket, requester,
                                             agent_user):
    by = request.getfixturevalue(persona)
    ticket_comment(ticket_id=assigned_ticket.pk, by=by, body="Working on it.")
    assert inbox(requester) == ["comment"]
    assert "Working on it." in Notification.objects.get(user=requester).message
    assert inbox(by) == []


def test_comment_changes_no_state_and_no_time_limit(assigned_ticket, requester, clock):
    before = ticket_row(assigned_ticket)
    clock.shift(minutes=5)
    ticket_comment(ticket_id=assigned_ticket.pk, by=requester, body="?")
    assert ticket_row(assigned_ticket) == before


def test_comment_on_callback_ticket_is_allowed(team, requester):
    ticket = TicketFactory(ticket_type=TicketTypeFactory(team=team, callback=True),
                           requester=requester)
    assert ticket_comment(ticket_id=ticket.pk, by=requester, body="hi").kind == "comment"


@pytest.mark.parametrize("body", [None, "", "  ", "x" * 10_001])
def test_comment_body_is_validated(ticket, requester, body):
    unchanged_after(ticket, ValidationFailed, lambda: ticket_comment(
        ticket_id=ticket.pk, by=requester, body=body))


@pytest.mark.parametrize("persona", ["other_requester", "outside_agent_user", "outside_supervisor"])
def test_comment_on_invisible_ticket_is_not_found(request, persona, ticket):
    unchanged_after(ticket, NotFound, lambda: ticket_comment(
        ticket_id=ticket.pk, by=request.getfixturevalue(persona), body="hi"))


def test_integration_may_not_comment(integration, requester, ticket_type):
    ticket, _ = ticket_create(
        by=integration, type_slug=ticket_type.slug, title="t", requester_username=requester.username)
    unchanged_after(ticket, PermissionDenied, lambda: ticket_comment(
        ticket_id=ticket.pk, by=integration, body="hi"))


@pytest.mark.parametrize("persona", ["agent_user", "other_agent_user", "supervisor"])
def test_note_is_recorded_and_notifies_nobody(request, persona, assigned_ticket):
    by = request.getfixturevalue(persona)
    before = ticket_row(assigned_ticket)
    event = ticket_note(ticket_id=assigned_ticket.pk, by=by, body="Customer is a VIP.")
    assert (event.kind, event.from_state, event.to_state, event.actor) == (
        "note", "assigned", "assigned", by
    )
    assert Notification.objects.count() == 0
    assert ticket_row(assigned_ticket) == before


@pytest.mark.parametrize("persona", ["requester", "integration"])
def test_note_is_for_staff_only(request, persona, ticket):
    unchanged_after(ticket, PermissionDenied, lambda: ticket_note(
        ticket_id=ticket.pk, by=request.getfixturevalue(persona), body="x"))


def test_note_on_invisible_ticket_is_not_found(ticket, outside_agent_user):
    unchanged_after(ticket, NotFound, lambda: ticket_note(
        ticket_id=ticket.pk, by=outside_agent_user, body="x"))


def test_supervisor_superuser_sees_every_team(ticket):
    boss = SupervisorFactory(is_superuser=True)
    assert ticket_note(ticket_id=ticket.pk, by=boss, body="x").kind == "note"


def test_new_agent_of_the_team_is_a_comment_recipient(ticket, requester, team):
    newcomer = AgentUserFactory(teams=[team], agent__status=Agent.Status.OFFLINE)
    ticket_comment(ticket_id=ticket.pk, by=requester, body="hi")
    assert inbox(newcomer) == ["comment"]
