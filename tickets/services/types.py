"""Configuring ticket types (the API's provisioning; the admin uses model forms)."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from agents.models import Team
from tickets.errors import NotFound, ValidationFailed
from tickets.models import TicketType, TicketTypeField, field_name_validator, slug_validator

SIMPLE_FIELDS = (
    "name", "default_priority", "time_limit_minutes", "max_lock_minutes",
    "handover_priority_step", "breach_priority_step", "reopen_priority_step", "on_breach",
    "feedback_window_hours", "callback_attempts", "callback_backoff_seconds",
    "callback_timeout_seconds", "channels",
)


def _check_fields(definitions: list[dict[str, Any]], errors: dict[str, list[str]]) -> None:
    seen: set[str] = set()
    for index, item in enumerate(definitions):
        prefix = f"fields.{index}"
        name = item.get("name", "")
        try:
            field_name_validator(name)
        except DjangoValidationError as exc:
            errors.setdefault(f"{prefix}.name", []).extend(exc.messages)
        if name in seen:
            errors.setdefault(f"{prefix}.name", []).append("Field names must be unique.")
        seen.add(name)
        kind = item.get("kind")
        choices = item.get("choices") or []
        if kind == TicketTypeField.Kind.CHOICE and not choices:
            errors.setdefault(f"{prefix}.choices", []).append("A choice field needs choices.")
        if kind != TicketTypeField.Kind.CHOICE and choices:
            errors.setdefault(f"{prefix}.choices", []).append("Only choice fields have choices.")
        if item.get("max_length") is not None and kind != TicketTypeField.Kind.TEXT:
            errors.setdefault(f"{prefix}.max_length", []).append("Only text fields have a max length.")
        if item.get("max_length") is not None and item["max_length"] < 1:
            errors.setdefault(f"{prefix}.max_length", []).append("Must be at least 1.")


def _apply(ticket_type: TicketType, values: dict[str, Any], errors: dict[str, list[str]]) -> None:
    if "team" in values:
        team = Team.objects.filter(name=values["team"]).first()
        if team is None:
            errors.setdefault("team", []).append("No team with this name.")
        else:
            ticket_type.team = team
    for key in SIMPLE_FIELDS:
        if key in values:
            setattr(ticket_type, key, values[key])
    if "channels" in values:
        ticket_type.channels = sorted(set(values["channels"]))
    for key in ("callback_url", "webhook_url", "secret"):
        if key in values:
            setattr(ticket_type, key, values[key] or "")
    if "fields" in values:
        _check_fields(values["fields"], errors)


def _save_fields(ticket_type: TicketType, definitions: list[dict[str, Any]]) -> None:
    ticket_type.fields.all().delete()
    TicketTypeField.objects.bulk_create(
        [
            TicketTypeField(
                ticket_type=ticket_type,
                name=item["name"],
                label=item.get("label") or item["name"],
                kind=item["kind"],
                required=bool(item.get("required", False)),
                choices=list(item.get("choices") or []),
                max_length=item.get("max_length"),
                position=index,
            )
            for index, item in enumerate(definitions)
        ]
    )


@transaction.atomic
def ticket_type_create(*, values: dict[str, Any]) -> TicketType:
    """``values`` has passed the API's shape checks; the domain checks are here."""
    errors: dict[str, list[str]] = {}
    slug = values.get("slug", "")
    try:
        slug_validator(slug)
    except DjangoValidationError as exc:
        errors.setdefault("slug", []).extend(exc.messages)
    if len(slug) > 50:
        errors.setdefault("slug", []).append("At most 50 characters.")
    if TicketType.objects.filter(slug=slug).exists():
        errors.setdefault("slug", []).append("A ticket type with this slug already exists.")
    ticket_type = TicketType(slug=slug)
    if not values.get("channels"):
        values = {**values, "channels": ["portal"]}
    _apply(ticket_type, values, errors)
    if errors:
        raise ValidationFailed(errors)
    ticket_type.save()
    _save_fields(ticket_type, values.get("fields") or [])
    return ticket_type


@transaction.atomic
def ticket_type_update(*, slug: str, values: dict[str, Any]) -> TicketType:
    ticket_type = TicketType.objects.select_for_update().filter(slug=slug).first()
    if ticket_type is None:
        raise NotFound("No ticket type with this slug.")
    errors: dict[str, list[str]] = {}
    if "slug" in values and values["slug"] != slug:
        errors["slug"] = ["The slug of a ticket type cannot change."]
    _apply(ticket_type, values, errors)
    if errors:
        raise ValidationFailed(errors)
    ticket_type.save()
    if "fields" in values:
        _save_fields(ticket_type, values["fields"])
    return ticket_type
