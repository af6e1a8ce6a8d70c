"""Customer portal forms: they validate and present (STYLE.md 14)."""
from __future__ import annotations

from typing import Any

from django import forms

from feedback.services import COMMENT_MAX
from tickets.models import TicketState, TicketType, TicketTypeField
from tickets.services.creation import DESCRIPTION_MAX, TITLE_MAX
from tickets.services.work import BODY_MAX, REASON_MAX

RESERVED = {"title", "description"}


def _type_field(definition: TicketTypeField) -> forms.Field:
    """A form field presenting one of the type's own fields."""
    common: dict[str, Any] = {
        "label": definition.label or definition.name.replace("_", " ").capitalize(),
        "required": definition.required,
    }
    kind = definition.kind
    if kind == TicketTypeField.Kind.NUMBER:
        # Text on purpose: the service owns number parsing (int vs decimal),
        # and its per-field message comes back onto this field.
        return forms.CharField(widget=forms.NumberInput(attrs={"step": "any"}), **common)
    if kind == TicketTypeField.Kind.DATE:
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if kind == TicketTypeField.Kind.CHOICE:
        # An empty first option even when required: a forgotten answer is
        # flagged instead of silently taking the first choice.
        choices = [("", "Choose…" if definition.required else "—")]
        choices += [(c, c) for c in (definition.choices or [])]
        return forms.ChoiceField(choices=choices, **common)
    if kind == TicketTypeField.Kind.EMAIL:
        return forms.EmailField(**common)
    limit = definition.effective_max_length
    widget = forms.Textarea(attrs={"rows": 3}) if limit and limit > 200 else forms.TextInput
    return forms.CharField(max_length=limit, widget=widget, **common)


class TicketCreateForm(forms.Form):
    """Title and description, then the type's own fields (prefixed ``data`` in
    nothing but the service's error keys: ``data.amount`` -> ``amount``)."""

    title = forms.CharField(label="Title", max_length=TITLE_MAX)
    description = forms.CharField(
        label="Description", max_length=DESCRIPTION_MAX, required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args: Any, ticket_type: TicketType, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ticket_type = ticket_type
        self.data_field_names: list[str] = []
        for definition in ticket_type.fields.all():
            name = definition.name
            if name in RESERVED:
                continue
            self.fields[name] = _type_field(definition)
            self.data_field_names.append(name)

    def service_kwargs(self) -> dict[str, Any]:
        cd = self.cleaned_data
        data: dict[str, Any] = {}
        for name in self.data_field_names:
            value = cd.get(name)
            if value in (None, ""):
                continue
            data[name] = value.isoformat() if hasattr(value, "isoformat") else value
        return {
            "type_slug": self.ticket_type.slug,
            "title": cd["title"],
            "description": cd.get("description", ""),
            "data": data,
        }


class StateFilterForm(forms.Form):
    STATE_CHOICES = [("", "All"), ("open", "Open")] + list(TicketState.choices)
    state = forms.ChoiceField(label="State", choices=STATE_CHOICES, required=False)


class PortalCommentForm(forms.Form):
    body = forms.CharField(
        label="Your comment", max_length=BODY_MAX, widget=forms.Textarea(attrs={"rows": 3})
    )


class PortalCancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason (optional)", max_length=REASON_MAX, required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class FeedbackForm(forms.Form):
    VERDICTS = [("accept", "Accept the result"), ("reject", "Reject: it is not done")]
    RATINGS = [("", "No rating")] + [(str(n), f"{n} ★") for n in range(1, 6)]

    verdict = forms.ChoiceField(label="Your answer", choices=VERDICTS, widget=forms.RadioSelect)
    rating = forms.TypedChoiceField(
        label="Rating (1 = poor, 5 = excellent)", choices=RATINGS, coerce=int,
        empty_value=None, required=False,
    )
    comment = forms.CharField(
        label="Comment (required to reject)", max_length=COMMENT_MAX, required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean(self) -> dict[str, Any]:
        cd = super().clean()
        if cd.get("verdict") == "reject" and not (cd.get("comment") or "").strip():
            self.add_error("comment", "Tell us what is missing to reject the result.")
        return cd

    def service_kwargs(self) -> dict[str, Any]:
        cd = self.cleaned_data
        return {
            "accepted": cd["verdict"] == "accept",
            "rating": cd.get("rating"),
            "comment": cd.get("comment") or None,
        }
