"""API answers.

Tickets and events are rendered by plain functions (the hot path: no field
introspection per row); the Serializer classes declare the same shapes for
the OpenAPI schema and for request bodies.
"""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from agents.models import Agent
from tickets.models import Notification, Ticket, TicketEvent, TicketType, TicketTypeField


_UTC = dt_timezone.utc


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is _UTC:  # what the database gives back: already UTC
        return value.isoformat()
    return value.astimezone(_UTC).isoformat()


def ticket_payload(ticket: Ticket, *, internal: bool = True,
                   now: datetime | None = None) -> dict[str, Any]:
    """The API's Ticket. ``internal`` adds what only agents and supervisors see."""
    now = now or timezone.now()
    lock_on = ticket.lock_in_force(now)
    payload: dict[str, Any] = {
        "id": ticket.pk,
        "type": ticket.ticket_type.slug,
        "title": ticket.title,
        "description": ticket.description,
        "data": ticket.data,
        "state": ticket.state,
        "priority": ticket.priority,
        "requester": ticket.requester.username,
        "assignee": ticket.assignee.username if ticket.assignee_id else None,
        "team": ticket.team.name,
        "created_at": iso(ticket.created_at),
        "sla_started_at": iso(ticket.sla_started_at),
        "due_at": iso(ticket.due_at),
        "assigned_at": iso(ticket.assigned_at),
        "locked_until": iso(ticket.locked_until) if lock_on else None,
        "locked_by": ticket.locked_by.username if lock_on and ticket.locked_by_id else None,
        "resolved_at": iso(ticket.resolved_at),
        "closed_at": iso(ticket.closed_at),
        "breached_at": iso(ticket.breached_at),
        "in_time": ticket.in_time,
        "result": ticket.result,
        "handover_count": ticket.handover_count,
        "reopen_count": ticket.reopen_count,
        "rating": ticket.rating,
    }
    if internal:
        # Prefetched (a list page): read the cache, not a related manager per ticket.
        prefetched = getattr(ticket, "_prefetched_objects_cache", {}).get("excluded_agents")
        agents = prefetched if prefetched is not None else ticket.excluded_agents.all()
        payload["excluded_agents"] = sorted(u.username for u in agents)
    return payload


def event_payload(event: TicketEvent) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "at": iso(event.at),
        "actor": event.actor.username if event.actor_id else None,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "details": event.details,
    }


def ticket_type_payload(ticket_type: TicketType) -> dict[str, Any]:
    return {
        "slug": ticket_type.slug,
        "name": ticket_type.name,
        "team": ticket_type.team.name,
        "default_priority": ticket_type.default_priority,
        "time_limit_minutes": ticket_type.time_limit_minutes,
        "max_lock_minutes": ticket_type.max_lock_minutes,
        "handover_priority_step": ticket_type.handover_priority_step,
        "breach_priority_step": ticket_type.breach_priority_step,
        "reopen_priority_step": ticket_type.reopen_priority_step,
        "on_breach": ticket_type.on_breach,
        "feedback_window_hours": ticket_type.feedback_window_hours,
        "callback": ticket_type.callback,
        "callback_url": ticket_type.callback_url or None,
        "webhook_url": ticket_type.webhook_url or None,
        "has_secret": bool(ticket_type.secret),
        "callback_attempts": ticket_type.callback_attempts,
        "callback_backoff_seconds": ticket_type.callback_backoff_seconds,
        "callback_timeout_seconds": ticket_type.callback_timeout_seconds,
        "channels": list(ticket_type.channels or []),
        "fields": [field_payload(f) for f in ticket_type.fields.all()],
    }


def field_payload(field: TicketTypeField) -> dict[str, Any]:
    return {
        "name": field.name,
        "label": field.label or field.name,
        "kind": field.kind,
        "required": field.required,
        "choices": list(field.choices or []) if field.kind == TicketTypeField.Kind.CHOICE else [],
        "max_length": field.effective_max_length,
    }


def notification_payload(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.pk,
        "ticket": notification.ticket_id,
        "kind": notification.kind,
        "message": notification.message,
        "created_at": iso(notification.created_at),
        "read": notification.read,
    }


# -- shapes for the schema ------------------------------------------------------

# Bounds that keep a configured period inside a datetime (and an integer column).
MAX_MINUTES = 2**31 - 1
MAX_FEEDBACK_HOURS = 1_000_000
MAX_FIELD_LENGTH = 1_000_000


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: no "5", no 5.0, no true (as the ticket endpoints read them)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: no "yes", no 1."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class _StrictText:
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(_StrictText, serializers.CharField):
    """A JSON string: a number is not silently turned into one."""


class StrictURLField(_StrictText, serializers.URLField):
    pass


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                   required=False)
    max_minutes = serializers.IntegerField(required=False)


class EventSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TicketEvent.Kind.choices)
    at = serializers.DateTimeField()
    actor = serializers.CharField(allow_null=True)
    from_state = serializers.CharField(allow_blank=True)
    to_state = serializers.CharField(allow_blank=True)
    details = serializers.DictField()


class TicketSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    data = serializers.DictField()
    state = serializers.ChoiceField(choices=["callback", "pooled", "assigned", "resolved",
                                             "closed", "cancelled"])
    priority = serializers.IntegerField(min_value=1, max_value=5)
    requester = serializers.CharField()
    assignee = serializers.CharField(allow_null=True)
    team = serializers.CharField()
    created_at = serializers.DateTimeField()
    sla_started_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    assigned_at = serializers.DateTimeField(allow_null=True)
    locked_until = serializers.DateTimeField(allow_null=True)
    locked_by = serializers.CharField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    breached_at = serializers.DateTimeField(allow_null=True)
    in_time = serializers.BooleanField(allow_null=True)
    result = serializers.CharField(allow_null=True, allow_blank=True)
    handover_count = serializers.IntegerField()
    reopen_count = serializers.IntegerField()
    rating = serializers.IntegerField(allow_null=True)
    excluded_agents = serializers.ListField(
        child=serializers.CharField(), required=False,
        help_text="Agents and supervisors only.",
    )


class TicketDetailSerializer(TicketSerializer):
    events = EventSerializer(many=True)


class TicketPageSerializer(serializers.Serializer):
    results = TicketSerializer(many=True)
    next = serializers.URLField(allow_null=True)


class TicketCreateSerializer(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    data = serializers.DictField(required=False)
    priority = serializers.IntegerField(required=False, min_value=1, max_value=5)
    requester = serializers.CharField(required=False, help_text="Integrations only.")


class FieldSerializer(serializers.Serializer):
    name = StrictCharField(max_length=50)
    label = StrictCharField(required=False, allow_blank=True, max_length=200)
    kind = serializers.ChoiceField(choices=TicketTypeField.Kind.choices)
    required = StrictBooleanField(required=False)
    choices = serializers.ListField(child=StrictCharField(max_length=200), required=False)
    max_length = StrictIntegerField(allow_null=True, required=False, min_value=1,
                                    max_value=MAX_FIELD_LENGTH)


class TicketTypeSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    team = serializers.CharField()
    default_priority = serializers.IntegerField(min_value=1, max_value=5)
    time_limit_minutes = serializers.IntegerField(min_value=1)
    max_lock_minutes = serializers.IntegerField(allow_null=True, min_value=1)
    handover_priority_step = serializers.IntegerField(min_value=0)
    breach_priority_step = serializers.IntegerField(min_value=0)
    reopen_priority_step = serializers.IntegerField(min_value=0)
    on_breach = serializers.ChoiceField(choices=TicketType.OnBreach.choices)
    feedback_window_hours = serializers.IntegerField(min_value=1)
    callback = serializers.BooleanField()
    callback_url = serializers.URLField(allow_null=True)
    webhook_url = serializers.URLField(allow_null=True)
    has_secret = serializers.BooleanField()
    callback_attempts = serializers.IntegerField()
    callback_backoff_seconds = serializers.IntegerField()
    callback_timeout_seconds = serializers.IntegerField()
    channels = serializers.ListField(child=serializers.ChoiceField(choices=["portal", "email",
                                                                            "webhook"]))
    fields = FieldSerializer(many=True)


class TicketTypeWriteSerializer(serializers.Serializer):
    slug = StrictCharField(max_length=50)
    name = StrictCharField(max_length=200)
    team = StrictCharField(max_length=100)
    time_limit_minutes = StrictIntegerField(min_value=1, max_value=MAX_MINUTES)
    default_priority = StrictIntegerField(min_value=1, max_value=5, required=False)
    max_lock_minutes = StrictIntegerField(allow_null=True, min_value=1,
                                          max_value=MAX_MINUTES, required=False)
    handover_priority_step = StrictIntegerField(min_value=0, max_value=4, required=False)
    breach_priority_step = StrictIntegerField(min_value=0, max_value=4, required=False)
    reopen_priority_step = StrictIntegerField(min_value=0, max_value=4, required=False)
    on_breach = serializers.ChoiceField(choices=TicketType.OnBreach.choices, required=False)
    feedback_window_hours = StrictIntegerField(min_value=1, max_value=MAX_FEEDBACK_HOURS,
                                               required=False)
    callback_url = StrictURLField(allow_null=True, allow_blank=True, required=False,
                                  max_length=500)
    webhook_url = StrictURLField(allow_null=True, allow_blank=True, required=False,
                                 max_length=500)
    secret = StrictCharField(allow_blank=True, required=False, write_only=True,
                             max_length=200)
    callback_attempts = StrictIntegerField(min_value=1, max_value=20, required=False)
    callback_backoff_seconds = StrictIntegerField(min_value=1, max_value=3600, required=False)
    callback_timeout_seconds = StrictIntegerField(min_value=1, max_value=120, required=False)
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=["portal", "email", "webhook"]), required=False
    )
    fields = FieldSerializer(many=True, required=False)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField()


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()


class HealthSerializer(serializers.Serializer):
    database = serializers.CharField()
    broker = serializers.CharField()


class TeamSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class UserCreateSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField()
    email = serializers.CharField(required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=["requester", "agent", "supervisor", "integration"])
    teams = serializers.ListField(child=serializers.CharField(), required=False)
    capacity = serializers.IntegerField(required=False, min_value=0)


class UserCreatedSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField()
    token = serializers.CharField()


class LockSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1)


class EmptySerializer(serializers.Serializer):
    pass


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000)


class OptionalReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class ResultSerializer(serializers.Serializer):
    result = serializers.CharField(max_length=20000)


class FeedbackSerializer(serializers.Serializer):
    accepted = serializers.BooleanField()
    rating = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class AssignSerializer(serializers.Serializer):
    agent = serializers.CharField()
    force = serializers.BooleanField(required=False, default=False)


class BodySerializer(serializers.Serializer):
    body = serializers.CharField(max_length=10000)


class AgentMeSerializer(serializers.Serializer):
    username = serializers.CharField()
    status = serializers.ChoiceField(choices=Agent.Status.choices)
    capacity = serializers.IntegerField()
    active = serializers.IntegerField()
    teams = serializers.ListField(child=serializers.CharField())


class AgentStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Agent.Status.choices)


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ticket = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField()
    message = serializers.CharField()
    created_at = serializers.DateTimeField()
    read = serializers.BooleanField()


class NotificationPageSerializer(serializers.Serializer):
    results = NotificationSerializer(many=True)
    next = serializers.URLField(allow_null=True)
