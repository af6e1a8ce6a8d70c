"""What happens to a ticket while it is worked: lock, unlock, hand-over,
resolve, cancel, public comments and internal notes."""
from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from agents.models import User
from tickets import clock
from tickets.errors import InvalidTransition, LockExceedsTimeLeft, ValidationFailed
from tickets.locks import agents_lock, ticket_lock
from tickets.models import MAX_PRIORITY, OPEN_STATES, Ticket, TicketEvent, TicketState
from tickets.services.common import (
    agent_load_change,
    clean_text,
    event_record,
    notify_users,
    on_commit_dispatch,
    raise_if,
    require_assignee,
    require_role,
    require_state,
    require_visible,
)

REASON_MAX = 1_000
RESULT_MAX = 20_000
BODY_MAX = 10_000


def lock_max_minutes(ticket: Ticket, now) -> int:
    """The longest lock allowed now: whole minutes left until due_at (0 once
    passed), capped by the type's ``max_lock_minutes``."""
    if ticket.due_at is None:
        return 0
    left = clock.whole_minutes(ticket.due_at - now)
    cap = ticket.ticket_type.max_lock_minutes
    return min(left, cap) if cap else left


@transaction.atomic
def ticket_lock_acquire(*, ticket_id: int, by: User, minutes: Any) -> Ticket:
    """Lock an assigned ticket for N minutes (the patent's rule).

    Refused when N minutes is longer than the time left until ``due_at`` (a
    lock of exactly the time left is accepted) or above the type's cap. A new
    lock replaces one in force under the same rule.
    """
    require_role(by, User.Role.AGENT)
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
        raise ValidationFailed({"minutes": ["Must be a whole number of minutes, at least 1."]})
    ticket = ticket_lock(ticket_id)
    require_visible(by, ticket)
    require_assignee(by, ticket)
    if ticket.state != TicketState.ASSIGNED:
        raise InvalidTransition(ticket.state, "lock")
    now = timezone.now()
    try:
        period = clock.minutes(minutes)
    except OverflowError:
        # Longer than any datetime can hold: certainly longer than the time left.
        raise LockExceedsTimeLeft(lock_max_minutes(ticket, now)) from None
    cap = ticket.ticket_type.max_lock_minutes
    if ticket.due_at is None or period > ticket.due_at - now or (cap and minutes > cap):
        raise LockExceedsTimeLeft(lock_max_minutes(ticket, now))
    replaced = ticket.locked_until if ticket.lock_in_force(now) else None
    ticket.locked_until = now + period
    ticket.locked_by = by
    ticket.save(update_fields=["locked_until", "locked_by", "updated_at"])
    event_record(
        ticket=ticket, kind=TicketEvent.Kind.LOCKED, by=by, from_state=ticket.state, at=now,
        details={
            "minutes": minutes,
            "locked_until": ticket.locked_until.isoformat(),
            "replaced_until": replaced.isoformat() if replaced else None,
        },
    )
    return ticket


@transaction.atomic
def ticket_unlock(*, ticket_id: int, by: User) -> Ticket:
    """End a lock early: the assignee, or a supervisor (force-unlock)."""
    require_role(by, User.Role.AGENT, User.Role.SUPERVISOR)
    ticket = ticket_lock(ticket_id)
    require_visible(by, ticket)
    if by.role == User.Role.AGENT:
        require_assignee(by, ticket)
    now = timezone.now()
    if not ticket.lock_in_force(now):
        raise InvalidTransition(detail="There is no lock in force on this ticket.")
    ticket.locked_until = None
    ticket.locked_by = None
    ticket.save(update_fields=["locked_until", "locked_by", "updated_at"])
    event_record(
        ticket=ticket, kind=TicketEvent.Kind.UNLOCKED, by=by, from_state=ticket.state, at=now,
        details={"forced": by.role == User.Role.SUPERVISOR},
    )
    return ticket


@transaction.atomic
def ticket_handover(*, ticket_id: int, by: User, reason: Any) -> Ticket:
    """The assignee hands the ticket back: priority up a step (max 5), back to
    the pool, the handing agent excluded. No new round: the clock runs on."""
    require_role(by, User.Role.AGENT)
    fields: dict[str, list[str]] = {}
    reason = clean_text(fields, "reason", reason, min_length=1, max_length=REASON_MAX)
    raise_if(fields)
    ticket = ticket_lock(ticket_id)
    require_visible(by, ticket)
    require_assignee(by, ticket)
    require_state(ticket, ticket.release, "hand over")
    now = timezone.now()
    agents = agents_lock([by.pk])
    old_priority = ticket.priority
    ticket.release()
    ticket.priority = min(MAX_PRIORITY, ticket.priority + ticket.ticket_type.handover_priority_step)
    ticket.handover_count += 1
    ticket.save(update_fields=["state", "assignee", "assigned_at", "locked_until", "locked_by",
                               "priority", "handover_count", "updated_at"])
    ticket.excluded_agents.add(by)
    agent_load_change(agents, by.pk, -1)
    event_record(
        ticket=ticket, kind=TicketEvent.Kind.HANDED_OVER, by=by, from_state=TicketState.ASSIGNED,
        at=now,
        details={"reason": reason, "agent": by.username, "priority_from": old_priority,
                 "priority_to": ticket.priority},
    )
    on_commit_dispatch()
    return ticket


@transaction.atomic
def ticket_resolve(*, ticket_id: int, by: User, result: Any) -> Ticket:
    """The assignee submits the result; in time when this round had no breach."""
    require_role(by, User.Role.AGENT)
    fields: dict[str, list[str]] = {}
    result = clean_text(fields, "result", result, min_length=1, max_length=RESULT_MAX)
    raise_if(fields)
    ticket = ticket_lock(ticket_id)
    require_visible(by, ticket)
    require_assignee(by, ticket)
    require_state(ticket, ticket.resolve, "resolve")
    now = timezone.now()
    agents = agents_lock([by.pk])
    # This agent's stint, for the handle-time KPI (agents/kpi.py): earlier
    # holders' time (hand-overs, reclaims) is not theirs.
    handle_seconds = (now - ticket.assigned_at).total_seconds() if ticket.assigned_at else None
    ticket.resolve(now=now, result=result)
    ticket.save(update_fields=["state", "result", "resolved_at", "in_time", "feedback_due_at",
                               "locked_until", "locked_by", "updated_at"])
    ticket.excluded_agents.clear()
    agent_load_change(agents, by.pk, -1)
    event_record(
        ticket=ticket, kind=TicketEvent.Kind.RESOLVED, by=by, from_state=TicketState.ASSIGNED,
        at=now, details={"in_time": ticket.in_time, "round": ticket.round, "agent": by.username,
                         "handle_seconds": handle_seconds},
    )
    notify_users(
        ticket=ticket, user_ids=[ticket.requester_id], kind="resolved", at=now,
        message=(
            f"Your work order #{ticket.pk} \"{ticket.title}\" was resolved: {result}\n"
            "Please accept the result or reject it with a comment."
        ),
    )
    on_commit_dispatch()
    return ticket


@transaction.atomic
def ticket_cancel(*, ticket_id: int, by: User, reason: Any = None) -> Ticket:
    """The requester (own ticket) or a supervisor cancels an open ticket."""
    require_role(by, User.Role.REQUESTER, User.Role.SUPERVISOR)
    fields: dict[str, list[str]] = {}
    reason = clean_text(fields, "reason", reason, min_length=0, max_length=REASON_MAX,
                        required=False)
    raise_if(fields)
    ticket = ticket_lock(ticket_id)
    require_visible(by, ticket)
    require_state(ticket, ticket.cancel, "cancel")
    now = timezone.now()
    from_state = ticket.state
    previous = ticket.assignee_id if from_state == TicketState.ASSIGNED else None
    agents = agents_lock([previous] if previous else [])
    ticket.cancel(now=now)
    ticket.save(update_fields=["state", "cancelled_at", "callback_next_at", "locked_until",
                               "locked_by", "updated_at"])
    agent_load_change(agents, previous, -1)
    event_record(ticket=ticket, kind=TicketEvent.Kind.CANCELLED, by=by, from_state=from_state,
                 at=now, details={"reason": reason})
    notify_users(
        ticket=ticket, user_ids=[ticket.requester_id], kind="cancelled", at=now,
        message=f"Your work order #{ticket.pk} \"{ticket.title}\" was cancelled."
        + (f" Reason: {reason}" if reason else ""),
    )
    if previous:
        on_commit_dispatch()
    return ticket


@transaction.atomic
def ticket_comment(*, ticket_id: int, by: User, body: Any) -> TicketEvent:
    """A public comment, seen by both sides; it notifies the other side."""
    require_role(by, User.Role.REQUESTER, User.Role.AGENT, User.Role.SUPERVISOR)
    fields: dict[str, list[str]] = {}
    body = clean_text(fields, "body", body, min_length=1, max_length=BODY_MAX)
    raise_if(fields)
    ticket = ticket_lock(ticket_id)
    require_visible(by, ticket)
    if ticket.state not in OPEN_STATES:
        raise InvalidTransition(detail=f"Comments are closed: the ticket is {ticket.state}.")
    now = timezone.now()
    event = event_record(ticket=ticket, kind=TicketEvent.Kind.COMMENT, by=by,
                         from_state=ticket.state, at=now, details={"body": body})
    if by.role == User.Role.REQUESTER:
        if ticket.assignee_id:
            recipients = [ticket.assignee_id]
        else:
            recipients = list(
                User.objects.filter(role=User.Role.AGENT, teams=ticket.team_id, is_active=True)
                .values_list("id", flat=True)
            )
        message = f"The requester commented on #{ticket.pk} \"{ticket.title}\": {body}"
    else:
        recipients = [ticket.requester_id]
        message = f"New comment on your work order #{ticket.pk} \"{ticket.title}\": {body}"
    notify_users(ticket=ticket, user_ids=recipients, kind="comment", message=message, at=now)
    return event


@transaction.atomic
def ticket_note(*, ticket_id: int, by: User, body: Any) -> TicketEvent:
    """An internal note: agents and supervisors only, never shown to the requester."""
    require_role(by, User.Role.AGENT, User.Role.SUPERVISOR)
    fields: dict[str, list[str]] = {}
    body = clean_text(fields, "body", body, min_length=1, max_length=BODY_MAX)
    raise_if(fields)
    ticket = ticket_lock(ticket_id)
    require_visible(by, ticket)
    return event_record(ticket=ticket, kind=TicketEvent.Kind.NOTE, by=by,
                        from_state=ticket.state, details={"body": body})
