"""The requester's verdict on a resolution."""
from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import User
from feedback.models import Feedback
from tickets.errors import InvalidTransition
from tickets.locks import ticket_lock
from tickets.models import Ticket, TicketEvent, TicketState
from tickets.services.common import (
    clean_text,
    event_record,
    on_commit_dispatch,
    raise_if,
    require_role,
    require_state,
    require_visible,
)

COMMENT_MAX = 5_000


@transaction.atomic
def ticket_feedback(
    *, ticket_id: int, by: User, accepted: Any, rating: Any = None, comment: Any = None
) -> Ticket:
    """Accept (-> closed) or reject with a comment (-> reopened in the pool,
    priority up a step, a new round from now); once per resolution."""
    require_role(by, User.Role.REQUESTER)
    fields: dict[str, list[str]] = {}
    if not isinstance(accepted, bool):
        fields["accepted"] = ["Must be true or false."]
    if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)
                               or not 1 <= rating <= 5):
        fields["rating"] = ["Must be a whole number from 1 to 5."]
    comment = clean_text(
        fields, "comment", comment, min_length=1 if accepted is False else 0,
        max_length=COMMENT_MAX, required=accepted is False,
    )
    raise_if(fields)
    ticket = ticket_lock(ticket_id)
    require_visible(by, ticket)
    require_state(ticket, ticket.close, "give feedback on")
    now = timezone.now()
    try:
        with transaction.atomic():
            Feedback.objects.create(
                ticket=ticket, requester=by, resolution=ticket.reopen_count, accepted=accepted,
                rating=rating, comment=comment, created_at=now,
            )
    except IntegrityError:
        raise InvalidTransition(detail="This resolution has already been answered.") from None
    if rating is not None:
        ticket.rating = rating
    # The agent whose resolution is judged (None after a callback resolution):
    # ratings and reopens count for them in the KPIs (agents/kpi.py).
    resolver = (User.objects.filter(pk=ticket.assignee_id).values_list("username", flat=True)
                .first() if ticket.assignee_id else None)
    details = {"rating": rating, "comment": comment, "agent": resolver}
    if accepted:
        ticket.close(now=now)
        ticket.save(update_fields=["state", "closed_at", "feedback_due_at", "rating", "updated_at"])
        event_record(ticket=ticket, kind=TicketEvent.Kind.ACCEPTED, by=by,
                     from_state=TicketState.RESOLVED, at=now, details=details)
    else:
        old_priority = ticket.priority
        ticket.reopen(now=now, priority_step=ticket.ticket_type.reopen_priority_step)
        ticket.save(update_fields=[
            "state", "priority", "reopen_count", "assignee", "assigned_at", "resolved_at",
            "in_time", "result", "feedback_due_at", "round", "sla_started_at", "due_at",
            "round_breached", "rating", "updated_at",
        ])
        event_record(ticket=ticket, kind=TicketEvent.Kind.REJECTED, by=by,
                     from_state=TicketState.RESOLVED, at=now,
                     details={**details, "priority_from": old_priority,
                              "priority_to": ticket.priority, "round": ticket.round,
                              "due_at": ticket.due_at.isoformat()})
        on_commit_dispatch()
    return ticket
