"""Email and webhook deliveries: recorded with the change they report, sent
after commit by a task, retried with a doubling delay, their final failure
recorded and visible to supervisors (never swallowed)."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import timedelta

import requests
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from agents.models import User
from tickets.delivery_models import Delivery
from tickets.errors import InvalidTransition, NotFound
from tickets.models import Channel, Ticket, TicketEvent
from tickets.outbound import OutboundRefused, post_json
from tickets.selectors import ticket_is_visible
from tickets.services.common import nudge, require_role

logger = logging.getLogger(__name__)

# Kinds that never go out as webhooks: internal notes, and the record of a
# notification itself (sending it must not trigger another).
NO_WEBHOOK = {TicketEvent.Kind.NOTE, TicketEvent.Kind.NOTIFIED}


def _schedule(deliveries: list[Delivery]) -> None:
    from tickets.tasks import delivery_send_task

    ids = [d.pk for d in deliveries]
    if ids:
        transaction.on_commit(lambda: [nudge(delivery_send_task, delivery_id=i) for i in ids])


def webhooks_for_events(ticket: Ticket, events: Iterable[TicketEvent]) -> list[Delivery]:
    """Record one webhook delivery per event when the type has the channel.

    The payload is the ticket as it is now (caller holds the lock, after save).
    """
    ttype = ticket.ticket_type
    if Channel.WEBHOOK not in (ttype.channels or []) or not ttype.webhook_url:
        return []
    events = [e for e in events if e.kind not in NO_WEBHOOK]
    if not events:
        return []
    from tickets.api.serializers import ticket_payload

    snapshot = ticket_payload(ticket)
    rows = Delivery.objects.bulk_create(
        [
            Delivery(ticket=ticket, channel=Delivery.Channel.WEBHOOK, recipient=ttype.webhook_url,
                     event=e.kind, payload={"event": e.kind, "ticket": snapshot})
            for e in events
        ]
    )
    _schedule(rows)
    return rows


def emails_for_notification(ticket: Ticket, user_ids: list[int], kind: str, message: str) -> list[Delivery]:
    """Record one email per recipient with an address, when the type has the channel."""
    if Channel.EMAIL not in (ticket.ticket_type.channels or []):
        return []
    link = f"{settings.ORDERLY_BASE_URL}/t/{ticket.pk}/"
    rows = []
    for user in User.objects.filter(pk__in=user_ids).exclude(email=""):
        context = {"name": user.get_full_name() or user.username, "message": message,
                   "ticket": ticket, "link": link}
        rows.append(Delivery(
            ticket=ticket, channel=Delivery.Channel.EMAIL, recipient=user.email, event=kind,
            payload={
                "subject": f"[Orderly #{ticket.pk}] {ticket.title}"[:200],
                "text": render_to_string("emails/notification.txt", context),
                "html": render_to_string("emails/notification.html", context),
            },
        ))
    rows = Delivery.objects.bulk_create(rows)
    _schedule(rows)
    return rows


# -- sending ---------------------------------------------------------------------------


def _claim(delivery_id: int) -> Delivery | None:
    now = timezone.now()
    delivery = Delivery.objects.select_related("ticket__ticket_type").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != Delivery.Status.PENDING:
        return None
    if delivery.next_attempt_at and delivery.next_attempt_at > now:
        return None
    lease = now + timedelta(seconds=settings.ORDERLY_WEBHOOK_TIMEOUT_SECONDS * 2 + 30)
    claimed = Delivery.objects.filter(
        pk=delivery_id, status=Delivery.Status.PENDING, attempts=delivery.attempts
    ).update(attempts=delivery.attempts + 1, next_attempt_at=lease)
    if claimed != 1:
        return None
    delivery.attempts += 1
    return delivery


def _send(delivery: Delivery) -> str:
    """Send once; returns '' on success or the error."""
    if delivery.channel == Delivery.Channel.EMAIL:
        payload = delivery.payload
        message = EmailMultiAlternatives(
            subject=payload.get("subject", ""), body=payload.get("text", ""),
            from_email=settings.DEFAULT_FROM_EMAIL, to=[delivery.recipient],
        )
        if payload.get("html"):
            message.attach_alternative(payload["html"], "text/html")
        try:
            message.send(fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any backend error is a failed attempt
            return f"{type(exc).__name__}: {exc}"[:1000]
        return ""
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    try:
        answer = post_json(delivery.recipient, body, secret=delivery.ticket.ticket_type.secret,
                           timeout=settings.ORDERLY_WEBHOOK_TIMEOUT_SECONDS)
    except OutboundRefused as exc:
        return f"refused: {exc}"
    except requests.RequestException as exc:
        return f"{type(exc).__name__}"[:1000]
    if not 200 <= answer.status < 300:
        return f"HTTP {answer.status}"
    return ""


def delivery_send(*, delivery_id: int) -> str | None:
    """Make one attempt if one is due: 'sent', 'retry', 'failed', or None."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    error = _send(delivery)
    return delivery_record(delivery_id=delivery_id, attempt=delivery.attempts, error=error)


@transaction.atomic
def delivery_record(*, delivery_id: int, attempt: int, error: str) -> str | None:
    delivery = Delivery.objects.select_for_update().filter(pk=delivery_id).first()
    if delivery is None or delivery.status != Delivery.Status.PENDING or delivery.attempts != attempt:
        return None
    now = timezone.now()
    if not error:
        delivery.status = Delivery.Status.SENT
        delivery.sent_at = now
        delivery.next_attempt_at = None
        delivery.last_error = ""
        delivery.save(update_fields=["status", "sent_at", "next_attempt_at", "last_error"])
        return "sent"
    delivery.last_error = error
    if attempt >= settings.ORDERLY_DELIVERY_ATTEMPTS:
        delivery.status = Delivery.Status.FAILED
        delivery.next_attempt_at = None
        delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
        logger.warning("delivery %s (%s) failed for good after %s attempts: %s",
                       delivery.pk, delivery.channel, attempt, error)
        return "failed"
    delay = settings.ORDERLY_DELIVERY_BACKOFF_SECONDS * 2 ** (attempt - 1)
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    delivery.save(update_fields=["next_attempt_at", "last_error"])
    from tickets.tasks import delivery_send_task

    transaction.on_commit(lambda: nudge(delivery_send_task, countdown=delay, delivery_id=delivery_id))
    return "retry"


def delivery_due_ids(now=None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )


# -- supervisors -------------------------------------------------------------------------


def delivery_get_for_user(*, user: User, delivery_id: int) -> Delivery:
    delivery = Delivery.objects.select_related("ticket").filter(pk=delivery_id).first()
    if delivery is None or not ticket_is_visible(user=user, ticket=delivery.ticket):
        raise NotFound("No such delivery.")
    return delivery


@transaction.atomic
def delivery_retry(*, delivery_id: int, by: User) -> Delivery:
    """A supervisor sends a failed delivery again (a fresh round of attempts)."""
    require_role(by, User.Role.SUPERVISOR)
    delivery_get_for_user(user=by, delivery_id=delivery_id)
    delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
    if delivery.status != Delivery.Status.FAILED:
        raise InvalidTransition(detail=f"Only a failed delivery can be retried; this one is {delivery.status}.")
    delivery.status = Delivery.Status.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = timezone.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    _schedule([delivery])
    return delivery
