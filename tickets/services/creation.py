"""Ticket creation: validation against the type's own fields, then pool or callback."""
from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from agents.models import Team, User
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
    ticket_type = _ticket_type(type_slug)
    if ticket_type is None:
        raise UnknownType(f"There is no ticket type '{type_slug}'.", fields={"type": ["Unknown ticket type."]})

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


# -- ticket types, cached per process -------------------------------------------
#
# Creating a ticket needs its type, the type's team and the type's fields (two
# queries and a dozen model instances). They change rarely, so each process
# keeps the last one it loaded per slug and checks it with one indexed row:
# the type's id and ``updated_at`` and its team's ``updated_at``. Every change
# to a type saves the type (``ticket_type_create``/``_update`` and the admin,
# whose inline fields are saved with it in one transaction), so a new
# ``updated_at`` is seen by every process. In this process any save or delete
# of a type, a field or a team also drops the cache at once.

_TYPE_CACHE: dict[str, tuple[tuple[Any, ...], TicketType]] = {}


def _types_changed(**_kwargs: Any) -> None:
    _TYPE_CACHE.clear()


for _model in (TicketType, TicketTypeField, Team):
    post_save.connect(_types_changed, sender=_model, dispatch_uid=f"type-cache-{_model.__name__}")
    post_delete.connect(_types_changed, sender=_model, dispatch_uid=f"type-cache-del-{_model.__name__}")


_TYPE_VERSION_SQL = (
    'SELECT t.{pk}, t.{updated}, t.{team}, g.{team_updated} FROM {types} t '
    'INNER JOIN {teams} g ON g.{team_pk} = t.{team} WHERE t.{slug} = %s'
).format(
    pk=TicketType._meta.pk.column, updated=TicketType._meta.get_field("updated_at").column,
    team=TicketType._meta.get_field("team").column, slug=TicketType._meta.get_field("slug").column,
    types=TicketType._meta.db_table, teams=Team._meta.db_table, team_pk=Team._meta.pk.column,
    team_updated=Team._meta.get_field("updated_at").column,
)


def _ticket_type(slug: str) -> TicketType | None:
    """The type (with its team and fields loaded) or None."""
    # One indexed row, as plain SQL: building the QuerySet cost more than the query.
    with connection.cursor() as cursor:
        cursor.execute(_TYPE_VERSION_SQL, [slug])
        row = cursor.fetchone()
    if row is None:
        return None
    version = tuple(row)
    cached = _TYPE_CACHE.get(slug)
    if cached is not None and cached[0] == version:
        return cached[1]
    ticket_type = (
        TicketType.objects.select_related("team").prefetch_related("fields").filter(pk=version[0]).first()
    )
    if ticket_type is None:
        return None
    # Keyed by the row as read (raw values; a change in between only costs a reload).
    _TYPE_CACHE[slug] = (version, ticket_type)
    return ticket_type


def _as_stored(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as the database gives it back (so the answer to a create equals
    a later read). SQLite keeps the JSON text as written; PostgreSQL's jsonb
    orders keys by length, then bytes, and a float written with an exponent
    that is a whole number (1e+16) reads back as an integer."""
    if connection.vendor != "postgresql":
        return data
    stored: dict[str, Any] = {}
    for key in sorted(data, key=lambda k: (len(k.encode()), k.encode())):
        value = data[key]
        if isinstance(value, float) and value.is_integer() and "e" in repr(value):
            value = int(value)
        stored[key] = value
    return stored


def _ticket_for_key(user: User, key: str) -> Ticket | None:
    row = IdempotencyKey.objects.filter(user=user, key=key).select_related("ticket").first()
    return row.ticket if row else None


def _ticket_insert(*, by, requester, ticket_type, title, description, data, priority) -> Ticket:
    now = timezone.now()
    ticket = Ticket(
        ticket_type=ticket_type,
        team=ticket_type.team,
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
        ticket.data = _as_stored(data)
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
    ticket.data = _as_stored(data)
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
