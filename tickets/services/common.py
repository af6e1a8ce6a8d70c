"""Pieces every ticket service uses: events, inbox notifications, checks."""
from __future__ import annotations

from collections.abc import Iterable
import logging
import time
from typing import Any

from django.conf import settings
from django.db import transaction

from agents.models import Agent, User
from tickets.errors import InvalidTransition, NotAssignee, NotFound, PermissionDenied, ValidationFailed
from tickets.models import Notification, Ticket, TicketEvent
from tickets.selectors import ticket_is_visible

logger = logging.getLogger(__name__)


def event_record(
    *,
    ticket: Ticket,
    kind: str,
    by: User | None,
    from_state: str,
    to_state: str | None = None,
    details: dict[str, Any] | None = None,
    at=None,
) -> TicketEvent:
    """Write one timeline event. Caller holds the ticket lock."""
    kwargs: dict[str, Any] = {}
    if at is not None:
        kwargs["at"] = at
    event = TicketEvent.objects.create(
        ticket=ticket,
        kind=kind,
        actor=by,
        from_state=from_state,
        to_state=ticket.state if to_state is None else to_state,
        details=details or {},
        **kwargs,
    )
    events_deliver(ticket, [event])
    return event


def events_deliver(ticket: Ticket, events: list[TicketEvent]) -> None:
    """Record the webhook deliveries these events call for (if any)."""
    from tickets.services.deliveries import webhooks_for_events

    webhooks_for_events(ticket, events)


def notify_users(
    *, ticket: Ticket, user_ids: Iterable[int], kind: str, message: str, at=None
) -> list[Notification]:
    """Put a message in users' portal inboxes and record a ``notified`` event.

    Inbox rows are part of the same transaction as the change they report, so
    a rolled-back change never leaves a notification behind.
    """
    ids = sorted({uid for uid in user_ids if uid is not None})
    if not ids:
        return []
    extra = {"created_at": at} if at is not None else {}
    rows = Notification.objects.bulk_create(
        [Notification(user_id=uid, ticket=ticket, kind=kind, message=message, **extra) for uid in ids]
    )
    from tickets.services.deliveries import emails_for_notification

    emails = emails_for_notification(ticket, ids, kind, message)
    event_record(
        ticket=ticket,
        kind=TicketEvent.Kind.NOTIFIED,
        by=None,
        from_state=ticket.state,
        details={"channels": ["portal"] + (["email"] if emails else []), "about": kind,
                 "recipients": len(ids)},
        at=at,
    )
    return rows


def nudge(task, countdown: int | None = None, **kwargs: Any) -> None:
    """Send a task now (call it from on_commit).

    Tasks are nudges: the database is the source of truth and every sweep
    re-derives what is due, so a broker that is down delays the work and
    must not fail the request that already committed. The failure is logged.
    """
    try:
        if countdown:
            task.apply_async(kwargs=kwargs, countdown=countdown)
        else:
            task.apply_async(kwargs=kwargs)
    except Exception:  # noqa: BLE001 - any broker error; the sweep catches up
        logger.warning("could not send %s; the next sweep will do it", task.name, exc_info=True)


_last_dispatch_nudge = float("-inf")  # time.monotonic() of this process's last one
_delayed_dispatch_at = float("-inf")  # when this process's delayed nudge runs


def on_commit_dispatch() -> None:
    """Nudge the dispatcher once this transaction commits."""
    transaction.on_commit(_dispatch_nudge)


def _dispatch_nudge() -> None:
    """Send a dispatch task after a commit, at most one per
    ``ORDERLY_DISPATCH_NUDGE_COALESCE_MS`` from this process (a burst of
    creations then costs two messages to the broker, not one each).

    Every commit is still followed by a dispatch that starts after it: within
    the window, one delayed nudge is sent for the window's end (unless one is
    already waiting, which then runs after this commit too), so a burst's last
    ticket is not left for the sweep.
    """
    global _last_dispatch_nudge, _delayed_dispatch_at
    from tickets.tasks import dispatch_task

    window = settings.ORDERLY_DISPATCH_NUDGE_COALESCE_MS / 1000
    now = time.monotonic()
    if window <= 0 or now - _last_dispatch_nudge >= window:
        _last_dispatch_nudge = now
        nudge(dispatch_task)
        return
    if _delayed_dispatch_at > now:
        return  # the waiting one runs after this commit
    _delayed_dispatch_at = _last_dispatch_nudge + window
    nudge(dispatch_task, countdown=_delayed_dispatch_at - now)


def require_role(user: User, *roles: str) -> None:
    if not user.is_authenticated or user.role not in roles:
        raise PermissionDenied()


def require_visible(user: User, ticket: Ticket) -> None:
    if not ticket_is_visible(user=user, ticket=ticket):
        raise NotFound("No such ticket.")


def require_assignee(user: User, ticket: Ticket) -> None:
    if ticket.assignee_id != user.pk:
        raise NotAssignee()


def require_state(ticket: Ticket, transition_method, action: str) -> None:
    from django_fsm import can_proceed

    if not can_proceed(transition_method):
        raise InvalidTransition(ticket.state, action)


def clean_text(
    fields: dict[str, list[str]], name: str, value: Any, *, min_length: int, max_length: int,
    required: bool = True,
) -> str:
    """Validate one text input; record a message in ``fields`` when it fails."""
    if value is None:
        if required and min_length > 0:
            fields.setdefault(name, []).append("This field is required.")
        return ""
    if not isinstance(value, str):
        fields.setdefault(name, []).append("Must be a string.")
        return ""
    if len(value.strip()) < min_length:
        fields.setdefault(name, []).append(
            "This field is required." if not value.strip() else f"At least {min_length} characters."
        )
    elif len(value) > max_length:
        fields.setdefault(name, []).append(f"At most {max_length} characters.")
    return value


def raise_if(fields: dict[str, list[str]]) -> None:
    if fields:
        raise ValidationFailed(fields)


def agent_load_change(agents: dict[int, Agent], user_id: int | None, delta: int, now=None) -> None:
    """Adjust a locked agent's active count (and last-assigned time on +1)."""
    if user_id is None or user_id not in agents:
        return
    agent = agents[user_id]
    agent.active_count = max(0, agent.active_count + delta)
    fields = ["active_count", "updated_at"]
    if delta > 0 and now is not None:
        agent.last_assigned_at = now
        fields.append("last_assigned_at")
    agent.save(update_fields=fields)
