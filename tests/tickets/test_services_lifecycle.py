"""Every transition writes its TicketEvent with the right from/to state
(DESIGN.md 1, last paragraph): whole lifecycles, event by event."""
from __future__ import annotations

import pytest

from feedback.services import ticket_feedback
from tickets.models import Ticket, TicketEvent
from tickets.services.dispatch import dispatch_run, ticket_assign, ticket_pull_next
from tickets.services.sweeps import (
    auto_close_sweep,
    away_reclaim_sweep,
    breach_sweep,
    lock_expiry_sweep,
)
from tickets.services.work import (
    ticket_cancel,
    ticket_comment,
    ticket_handover,
    ticket_lock_acquire,
    ticket_note,
    ticket_resolve,
    ticket_unlock,
)
from agents.services import agent_set_status
from tests.factories import event_trail

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


def new_events(ticket: Ticket, since: int) -> list[tuple[str, str, str]]:
    return event_trail(ticket)[since:]


def test_full_lifecycle_event_trail(ticket, requester, agent_user, other_agent_user, supervisor,
                                    clock):
    trail = event_trail(ticket)
    assert trail == [("created", "", "pooled"), ("pooled", "", "pooled")]
    steps = [
        (lambda: ticket_pull_next(by=agent_user), [("assigned", "pooled", "assigned")]),
        (lambda: ticket_lock_acquire(ticket_id=ticket.pk, by=agent_user, minutes=10),
         [("locked", "assigned", "assigned")]),
        (lambda: ticket_unlock(ticket_id=ticket.pk, by=agent_user),
         [("unlocked", "assigned", "assigned")]),
        (lambda: ticket_note(ticket_id=ticket.pk, by=agent_user, body="n"),
         [("note", "assigned", "assigned")]),
        (lambda: ticket_comment(ticket_id=ticket.pk, by=requester, body="c"),
         [("comment", "assigned", "assigned"), ("notified", "assigned", "assigned")]),
        (lambda: ticket_handover(ticket_id=ticket.pk, by=agent_user, reason="r"),
         [("handed_over", "assigned", "pooled")]),
        (lambda: dispatch_run(), [("assigned", "pooled", "assigned")]),
        (lambda: ticket_assign(ticket_id=ticket.pk, agent_username="agnes", by=supervisor),
         [("assigned", "assigned", "assigned")]),
        (lambda: ticket_resolve(ticket_id=ticket.pk, by=agent_user, result="x"),
         [("resolved", "assigned", "resolved"), ("notified", "resolved", "resolved")]),
        (lambda: ticket_feedback(ticket_id=ticket.pk, by=requester, accepted=False, comment="no"),
         [("rejected", "resolved", "pooled")]),
        (lambda: dispatch_run(), [("assigned", "pooled", "assigned")]),
        (lambda: ticket_resolve(ticket_id=ticket.pk, by=Ticket.objects.get(pk=ticket.pk).assignee,
                                result="y"),
         [("resolved", "assigned", "resolved"), ("notified", "resolved", "resolved")]),
        (lambda: ticket_feedback(ticket_id=ticket.pk, by=requester, accepted=True),
         [("accepted", "resolved", "closed")]),
    ]
    for number, (step, expected) in enumerate(steps):
        since = len(event_trail(ticket))
        clock.shift(minutes=1)
        step()
        assert new_events(ticket, since) == expected, f"step {number}"


def test_sweep_transitions_event_trail(ticket_type, team, requester, agent_user, supervisor,
                                       clock):
    from tests.factories import TicketFactory, TicketTypeFactory

    pool_breach = TicketFactory(ticket_type=ticket_type, requester=requester)
    reclaim = TicketFactory(ticket_type=ticket_type, requester=requester, state="assigned",
                            assignee=agent_user)
    notify = TicketFactory(ticket_type=TicketTypeFactory(team=team, on_breach="notify",
                                                         time_limit_minutes=600),
                           requester=requester, state="assigned", assignee=agent_user)
    ticket_lock_acquire(ticket_id=notify.pk, by=agent_user, minutes=20)
    done = TicketFactory(ticket_type=TicketTypeFactory(team=team, feedback_window_hours=1,
                                                       time_limit_minutes=600),
                         requester=requester, state="resolved", assignee=agent_user)
    cancelled = TicketFactory(ticket_type=ticket_type, requester=requester)
    marks = {t.pk: len(event_trail(t)) for t in (pool_breach, reclaim, notify, done, cancelled)}

    ticket_cancel(ticket_id=cancelled.pk, by=supervisor)
    clock.shift(minutes=30)
    lock_expiry_sweep()
    agent_set_status(by=agent_user, status="away")
    clock.shift(minutes=31)   # 61 min: the 60-minute tickets are due, the away grace is over
    breach_sweep()
    away_reclaim_sweep()
    auto_close_sweep()

    def after(t):
        return [e for e in new_events(t, marks[t.pk]) if e[0] != "notified"]

    assert after(pool_breach) == [("breached", "pooled", "pooled")]
    assert after(reclaim) == [("breached", "assigned", "pooled")]
    assert after(notify) == [("lock_expired", "assigned", "assigned"),
                             ("reclaimed", "assigned", "pooled")]
    assert after(done) == [("auto_closed", "resolved", "closed")]
    assert after(cancelled) == [("cancelled", "pooled", "cancelled")]
    assert TicketEvent.objects.filter(kind="breached").count() == 2
