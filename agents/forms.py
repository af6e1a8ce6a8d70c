"""Forms of the sign-up page, the workbench and the supervisor views."""
from __future__ import annotations

from typing import Any

from django import forms

from agents.models import Agent
from tickets.models import TicketState


class SignupForm(forms.Form):
    username = forms.CharField(label="Username", max_length=150,
                               widget=forms.TextInput(attrs={"autocomplete": "username"}))
    email = forms.EmailField(label="Email (for password resets)", required=False,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(label="Password",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password_again = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self) -> dict[str, Any]:
        cd = super().clean()
        if cd.get("password") and cd.get("password_again") and cd["password"] != cd["password_again"]:
            self.add_error("password_again", "The two passwords differ.")
        return cd


class StatusForm(forms.Form):
    status = forms.ChoiceField(label="Availability", choices=Agent.Status.choices)


class PoolFilterForm(forms.Form):
    SORTS = [
        ("dispatch", "Dispatch order (priority, due)"),
        ("due", "Due soonest"),
        ("age", "Oldest first"),
        ("priority", "Highest priority"),
    ]
    STATES = [
        (TicketState.POOLED, "Waiting in the pool"),
        (TicketState.ASSIGNED, "Assigned"),
        ("open", "All open"),
    ]

    state = forms.ChoiceField(label="State", choices=STATES, required=False)
    team = forms.TypedChoiceField(label="Team", coerce=int, empty_value=None, required=False)
    ticket_type = forms.TypedChoiceField(label="Type", coerce=int, empty_value=None,
                                         required=False)
    breached = forms.BooleanField(label="Breached only", required=False)
    sort = forms.ChoiceField(label="Sort by", choices=SORTS, required=False)

    def __init__(self, *args: Any, teams=(), types=(), supervisor: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "All my teams")] + [(t.pk, t.name) for t in teams]
        self.fields["ticket_type"].choices = [("", "All types")] + [(t.pk, t.name) for t in types]
        if not supervisor:
            # Agents see the pool only (read-only).
            del self.fields["state"]


def _zone_choices() -> list[tuple[str, str]]:
    from zoneinfo import available_timezones

    return [("", "The desk's time zone")] + [(z, z) for z in sorted(available_timezones())]


class PreferencesForm(forms.Form):
    time_zone = forms.ChoiceField(label="Show times in", required=False, choices=_zone_choices)
