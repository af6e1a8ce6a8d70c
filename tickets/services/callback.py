"""The callback flow (DESIGN.md 2): before a ticket of a callback-able type
enters the pool, its type's endpoint may resolve it without an agent.

An attempt is claimed by compare-and-set on ``callback_attempts`` (so two
workers never post the same attempt), the HTTP call runs outside any
transaction, and its outcome is applied under the row lock only if nobody
else moved the ticket meanwhile.
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import requests
from django.db import transaction
from django.utils import timezone

from tickets.locks import ticket_lock
from tickets.models import Ticket, TicketEvent, TicketState
from tickets.outbound import OutboundRefused, post_json
from tickets.services.common import event_record, notify_users, nudge, on_commit_dispatch

logger = logging.getLogger(__name__)


def _claim(ticket_id: int) -> tuple[Ticket, int] | None:
    now = timezone.now()
    ticket = Ticket.objects.select_related("ticket_type").filter(pk=ticket_id).first()
    if ticket is None or ticket.state != TicketState.CALLBACK:
        return None
    if ticket.callback_next_at and ticket.callback_next_at > now:
        return None
    ttype = ticket.ticket_type
    attempt = ticket.callback_attempts
    # A lease: nobody else takes this attempt until the request could have timed out.
    lease = now + timedelta(seconds=ttype.callback_timeout_seconds * 2 + 5)
    claimed = Ticket.objects.filter(
        pk=ticket_id, state=TicketState.CALLBACK, callback_attempts=attempt
    ).update(callback_attempts=attempt + 1, callback_next_at=lease)
    if claimed != 1:
        return None
    return ticket, attempt + 1


def _post(ticket: Ticket) -> tuple[str, str, str]:
    """POST the ticket; returns (outcome, text, error)."""
    from tickets.api.serializers import ticket_payload

    ttype = ticket.ticket_type
    body = json.dumps({"ticket": ticket_payload(ticket)}, separators=(",", ":")).encode()
    try:
        answer_raw = post_json(ttype.callback_url, body, secret=ttype.secret,
                               timeout=ttype.callback_timeout_seconds)
    except OutboundRefused as exc:
        return "failed", "", f"refused: {exc}"
    except requests.RequestException as exc:
        return "failed", "", type(exc).__name__
    if not 200 <= answer_raw.status < 300:
        return "failed", "", f"HTTP {answer_raw.status}"
    if answer_raw.truncated:
        return "failed", "", "response too large"
    raw = answer_raw.body
    try:
        answer = json.loads(raw)
    except ValueError:
        return "failed", "", "response is not JSON"
    if not isinstance(answer, dict):
        return "failed", "", "response is not a JSON object"
    outcome = answer.get("outcome")
    if outcome == "resolved":
        result = answer.get("result")
        if not isinstance(result, str) or not result.strip():
            return "failed", "", "resolved without a result"
        return "resolved", result[:20_000], ""
    if outcome == "needs_agent":
        note = answer.get("note")
        return "needs_agent", note[:10_000] if isinstance(note, str) else "", ""
    return "failed", "", f"unknown outcome {outcome!r}"[:500]


def callback_attempt(*, ticket_id: int) -> str | None:
    """Run one attempt if one is due; returns the outcome, or None if nothing was due."""
    claim = _claim(ticket_id)
    if claim is None:
        return None
    ticket, attempt = claim
    outcome, text, error = _post(ticket)
    callback_apply(ticket_id=ticket_id, attempt=attempt, outcome=outcome, text=text, error=error)
    return outcome


@transaction.atomic
def callback_apply(*, ticket_id: int, attempt: int, outcome: str, text: str, error: str) -> None:
    ticket = ticket_lock(ticket_id)
    if ticket.state != TicketState.CALLBACK or ticket.callback_attempts != attempt:
        return
    ttype = ticket.ticket_type
    now = timezone.now()
    requester = [ticket.requester_id]
    if outcome == "resolved":
        ticket.resolve_by_callback(now=now, result=text)
        ticket.save(update_fields=["state", "result", "resolved_at", "in_time", "feedback_due_at",
                                   "callback_next_at", "updated_at"])
        event_record(ticket=ticket, kind=TicketEvent.Kind.CALLBACK_RESOLVED, by=None,
                     from_state=TicketState.CALLBACK, at=now,
                     details={"attempt": attempt, "result": text})
        notify_users(ticket=ticket, user_ids=requester, kind="resolved", at=now,
                     message=(f"Your work order #{ticket.pk} \"{ticket.title}\" was resolved: "
                              f"{text}\nPlease accept the result or reject it with a comment."))
        return
    if outcome == "needs_agent" or attempt >= ttype.callback_attempts:
        kind = (TicketEvent.Kind.CALLBACK_NEEDS_AGENT if outcome == "needs_agent"
                else TicketEvent.Kind.CALLBACK_FAILED)
        ticket.enter_pool(now=now)
        ticket.save(update_fields=["state", "round", "sla_started_at", "due_at", "round_breached",
                                   "callback_next_at", "updated_at"])
        details = {"attempt": attempt}
        details.update({"note": text} if outcome == "needs_agent" else {"error": error})
        event_record(ticket=ticket, kind=kind, by=None, from_state=TicketState.CALLBACK, at=now,
                     details=details)
        event_record(ticket=ticket, kind=TicketEvent.Kind.POOLED, by=None,
                     from_state=TicketState.CALLBACK, at=now,
                     details={"round": ticket.round, "due_at": ticket.due_at.isoformat()})
        notify_users(ticket=ticket, user_ids=requester, kind=kind, at=now,
                     message=(f"Your work order #{ticket.pk} \"{ticket.title}\" was passed to an agent."
                              + (f" Note: {text}" if outcome == "needs_agent" and text else "")))
        on_commit_dispatch()
        return
    delay = ttype.callback_backoff_seconds * (2 ** (attempt - 1))
    ticket.callback_next_at = now + timedelta(seconds=delay)
    ticket.save(update_fields=["callback_next_at", "updated_at"])
    logger.info("callback attempt %s for ticket %s failed: %s", attempt, ticket_id, error)
    from tickets.tasks import callback_task

    transaction.on_commit(lambda: nudge(callback_task, countdown=delay, ticket_id=ticket_id))


def callback_due_ids(now=None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        Ticket.objects.filter(state=TicketState.CALLBACK, callback_next_at__lte=now)
        .order_by("callback_next_at")
        .values_list("id", flat=True)[:limit]
    )
