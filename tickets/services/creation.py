"""Ticket creation: validation against the type's own fields, then pool or callback."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import User
from tickets.errors import UnknownType, ValidationFailed
from tickets.models import (
    MAX_PRIORITY,
    MIN_PRIORITY,
    IdempotencyKey,
    Ticket,
    TicketEvent,
    TicketState,
    TicketType,
    TicketTypeField,
)
from tickets.services.common import (
    clean_text,
    events_deliver,
    nudge,
    on_commit_dispatch,
    raise_if,
    require_role,
)

TITLE_MAX = 200
DESCRIPTION_MAX = 20_000


def ticket_data_clean(*, ticket_type: TicketType, data: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Validate ``data`` against the type's field definitions.

    Returns the cleaned values and a per-field error map keyed ``data.<name>``.
    """
    errors: dict[str, list[str]] = {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return {}, {"data": ["Must be an object of the type's fields."]}
    definitions = {f.name: f for f in ticket_type.fields.all()}
    cleaned: dict[str, Any] = {}
    for name in data:
        if name not in definitions:
            errors.setdefault(f"data.{name}", []).append("Unknown field for this ticket type.")
    for name, field in definitions.items():
        key = f"data.{name}"
        value = data.get(name)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if field.required:
                errors.setdefault(key, []).append("This field is required.")
            continue
        try:
            cleaned[name] = _clean_value(field, value)
        except ValueError as exc:
            errors.setdefault(key, []).append(str(exc))
    return cleaned, errors


def _clean_value(field: TicketTypeField, value: Any) -> Any:
    kind = field.kind
    if kind == TicketTypeField.Kind.TEXT:
        if not isinstance(value, str):
            raise ValueError("Must be text.")
        limit = field.effective_max_length
        if limit is not None and len(value) > limit:
            raise ValueError(f"At most {limit} characters.")
        return value
    if kind == TicketTypeField.Kind.NUMBER:
        if isinstance(value, bool):
            raise ValueError("Must be a number.")
        if isinstance(value, (int, float)):
            # NaN and infinities are not JSON: storing one would fail the row.
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("Must be a number.")
            return value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise ValueError("Must be a number.") from None
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError("Must be a number.")
            return int(number) if number.is_integer() and "." not in value else number
        raise ValueError("Must be a number.")
    if kind == TicketTypeField.Kind.DATE:
        if not isinstance(value, str):
            raise ValueError("Must be a date (YYYY-MM-DD).")
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError("Must be a date (YYYY-MM-DD).") from None
    if kind == TicketTypeField.Kind.CHOICE:
        if not isinstance(value, str) or value not in (field.choices or []):
            allowed = ", ".join(field.choices or [])
            raise ValueError(f"Must be one of: {allowed}.")
        return value
    if kind == TicketTypeField.Kind.EMAIL:
        if not isinstance(value, str):
            raise ValueError("Must be an email address.")
        try:
            validate_email(value)
        except DjangoValidationError:
            raise ValueError("Must be a valid email address.") from None
        return value
    raise ValueError("Unknown field kind.")


def ticket_create(
    *,
    by: User,
    type_slug: Any,
    title: Any,
    description: Any = "",
    data: Any = None,
    priority: Any = None,
    requester_username: Any = None,
    idempotency_key: str | None = None,
) -> tuple[Ticket, bool]:
    """Create a ticket; returns it and whether it was created now.

    With an idempotency key the same user gets the first ticket back instead of
    a second one (also when two identical requests race: the unique key wins).
    """
    require_role(by, User.Role.REQUESTER, User.Role.INTEGRATION)
    if idempotency_key:
        existing = _ticket_for_key(by, idempotency_key)
        if existing is not None:
            return existing, False

    fields: dict[str, list[str]] = {}
    if not isinstance(type_slug, str) or not type_slug:
        raise ValidationFailed({"type": ["This field is required."]})
    try:
        ticket_type = TicketType.objects.select_related("team").prefetch_related("fields").get(
            slug=type_slug
        )
    except TicketType.DoesNotExist:
        raise UnknownType(f"There is no ticket type '{type_slug}'.", fields={"type": ["Unknown ticket type."]}) from None

    title = clean_text(fields, "title", title, min_length=1, max_length=TITLE_MAX)
    description = clean_text(
        fields, "description", description, min_length=0, max_length=DESCRIPTION_MAX, required=False
    )
    if priority is None:
        priority = ticket_type.default_priority
    elif isinstance(priority, bool) or not isinstance(priority, int) or not (
        MIN_PRIORITY <= priority <= MAX_PRIORITY
    ):
        fields.setdefault("priority", []).append("Must be a whole number from 1 to 5.")
    requester = by
    if by.role == User.Role.INTEGRATION:
        if not requester_username or not isinstance(requester_username, str):
            fields.setdefault("requester", []).append("This field is required for integrations.")
        else:
            requester = User.objects.filter(
                username=requester_username, role=User.Role.REQUESTER, is_active=True
            ).first()
            if requester is None:
                fields.setdefault("requester", []).append("No requester with this username.")
    elif requester_username is not None:
        fields.setdefault("requester", []).append("Only integrations may name a requester.")
    cleaned, data_errors = ticket_data_clean(ticket_type=ticket_type, data=data)
    fields.update(data_errors)
    raise_if(fields)

    try:
        with transaction.atomic():
            ticket = _ticket_insert(
                by=by,
                requester=requester,
                ticket_type=ticket_type,
                title=title,
                description=description,
                data=cleaned,
                priority=priority,
            )
            if idempotency_key:
                IdempotencyKey.objects.create(user=by, key=idempotency_key, ticket=ticket)
    except IntegrityError:
        if idempotency_key:
            existing = _ticket_for_key(by, idempotency_key)
            if existing is not None:
                return existing, False
        raise
    return ticket, True


def _ticket_for_key(user: User, key: str) -> Ticket | None:
    row = IdempotencyKey.objects.filter(user=user, key=key).select_related("ticket").first()
    return row.ticket if row else None


def _ticket_insert(*, by, requester, ticket_type, title, description, data, priority) -> Ticket:
    now = timezone.now()
    ticket = Ticket(
        ticket_type=ticket_type,
        team_id=ticket_type.team_id,
        title=title,
        description=description,
        data=data,
        priority=priority,
        requester=requester,
        created_by=by,
        state=TicketState.CALLBACK,
        created_at=now,
    )
    if ticket_type.callback:
        ticket.callback_next_at = now
        ticket.save()
        events = [
            TicketEvent(ticket=ticket, kind=TicketEvent.Kind.CREATED, actor=by, at=now,
                        from_state="", to_state=TicketState.CALLBACK),
            TicketEvent(ticket=ticket, kind=TicketEvent.Kind.CALLBACK_STARTED, actor=None, at=now,
                        from_state=TicketState.CALLBACK, to_state=TicketState.CALLBACK,
                        details={"url": ticket_type.callback_url}),
        ]
        events_deliver(ticket, TicketEvent.objects.bulk_create(events))
        from tickets.tasks import callback_task

        ticket_id = ticket.pk
        transaction.on_commit(lambda: nudge(callback_task, ticket_id=ticket_id))
        return ticket
    ticket.enter_pool(now=now)
    ticket.save()
    events = TicketEvent.objects.bulk_create(
        [
            TicketEvent(ticket=ticket, kind=TicketEvent.Kind.CREATED, actor=by, at=now,
                        from_state="", to_state=TicketState.POOLED),
            TicketEvent(ticket=ticket, kind=TicketEvent.Kind.POOLED, actor=None, at=now,
                        from_state="", to_state=TicketState.POOLED,
                        details={"round": ticket.round, "due_at": ticket.due_at.isoformat()}),
        ]
    )
    events_deliver(ticket, events)
    on_commit_dispatch()
    return ticket
