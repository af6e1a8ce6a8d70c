"""Forms of the ticket page (agents and supervisors): they validate and present."""
from __future__ import annotations

from django import forms

from tickets.services.work import BODY_MAX, REASON_MAX, RESULT_MAX


class LockForm(forms.Form):
    # No max attribute on purpose: the rule (time left until due) is the
    # service's, and its refusal message is what the agent must see.
    minutes = forms.IntegerField(label="Lock for (minutes)", min_value=1)

    def __init__(self, *args, max_minutes: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if max_minutes is not None:
            self.fields["minutes"].help_text = (
                f"The longest lock allowed now is {max_minutes} minute(s)."
            )
            if not self.is_bound and max_minutes >= 1:
                self.initial.setdefault("minutes", min(max_minutes, 30))


class HandoverForm(forms.Form):
    reason = forms.CharField(
        label="Reason for the hand-over", max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ResolveForm(forms.Form):
    result = forms.CharField(
        label="Result for the requester", max_length=RESULT_MAX,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment to the requester", max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class NoteForm(forms.Form):
    body = forms.CharField(
        label="Internal note (agents only)", max_length=BODY_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class AssignForm(forms.Form):
    agent = forms.ChoiceField(label="Assign to agent")
    force = forms.BooleanField(
        label="Force: override the assignee's lock", required=False,
    )

    def __init__(self, *args, agents=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent"].choices = [
            (a.user.username, f"{a.user.username} ({a.get_status_display()}, "
                              f"{a.active_count}/{a.capacity})")
            for a in agents
        ]


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason (optional)", max_length=REASON_MAX, required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
