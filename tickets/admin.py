"""Django admin for supervisors: ticket types and their fields, tickets with
their timeline, notifications and idempotency keys.

A ticket's state is never edited here (STYLE.md 15): the ticket pages are
read-only, and every change a supervisor may make (cancel, force-unlock,
assign, dispatch) is an admin action that calls the service layer, so it is
checked, audited and notified exactly as in the portals and the API.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db import models
from django.db.models import QuerySet

from agents.models import User
from feedback.models import Feedback
from tickets.errors import OrderlyError, ValidationFailed
from tickets.delivery_models import Delivery
from tickets.models import (
    Channel,
    IdempotencyKey,
    Notification,
    Ticket,
    TicketEvent,
    TicketType,
    TicketTypeField,
)


def _error_text(exc: OrderlyError) -> str:
    if isinstance(exc, ValidationFailed) and exc.fields:
        details = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in exc.fields.items())
        return f"{exc.detail} ({details})"
    return exc.detail


class ReadOnlyAdminMixin:
    """Rows written only by the service layer: visible, never edited here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class TicketTeamScopedMixin:
    """Rows that belong to a ticket: supervisors see those of their teams."""

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(ticket__team__in=request.user.teams.all())


def can_supervise(model_admin, request) -> bool:
    """Who may run the service-backed actions: active supervisors who see the rows."""
    user = request.user
    return (user.is_active and user.role == User.Role.SUPERVISOR
            and model_admin.has_view_permission(request))


# -- ticket types -------------------------------------------------------------------


class TicketTypeFieldForm(forms.ModelForm):
    class Meta:
        model = TicketTypeField
        fields = ("position", "name", "label", "kind", "required", "choices", "max_length")
        widgets = {"choices": forms.Textarea(attrs={"rows": 1, "cols": 30})}
        help_texts = {"choices": 'For choice fields, a JSON list: ["damaged", "late"]'}

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        choices = data.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, str) and c for c in choices):
            self.add_error("choices", "A JSON list of non-empty strings.")
        elif kind == TicketTypeField.Kind.CHOICE and not choices:
            self.add_error("choices", "A choice field needs choices.")
        elif kind != TicketTypeField.Kind.CHOICE and choices:
            self.add_error("choices", "Only choice fields have choices.")
        if data.get("max_length") is not None and kind != TicketTypeField.Kind.TEXT:
            self.add_error("max_length", "Only text fields have a max length.")
        return data


class TicketTypeFieldInline(admin.TabularInline):
    model = TicketTypeField
    form = TicketTypeFieldForm
    extra = 0
    ordering = ("position", "id")


class TicketTypeForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        choices=Channel.choices, widget=forms.CheckboxSelectMultiple, required=False,
        help_text="How the requester hears of results and replies.",
    )
    new_secret = forms.CharField(
        required=False, widget=forms.PasswordInput, label="Set a new secret",
        help_text="Signs callbacks and webhooks (HMAC-SHA256). Leave blank to keep the current one.",
    )
    clear_secret = forms.BooleanField(required=False, label="Remove the secret")

    class Meta:
        model = TicketType
        exclude = ("secret",)

    def save(self, commit=True):
        ticket_type = super().save(commit=False)
        ticket_type.channels = sorted(set(self.cleaned_data.get("channels") or []))
        if self.cleaned_data.get("clear_secret"):
            ticket_type.secret = ""
        elif self.cleaned_data.get("new_secret"):
            ticket_type.secret = self.cleaned_data["new_secret"]
        if commit:
            ticket_type.save()
            self.save_m2m()
        return ticket_type


@admin.register(TicketType)
class TicketTypeAdmin(admin.ModelAdmin):
    form = TicketTypeForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ("slug", "name", "team", "time_limit_minutes", "default_priority",
                    "on_breach", "callback_enabled", "channels")
    list_select_related = ("team",)
    list_filter = ("team", "on_breach", "default_priority")
    search_fields = ("slug", "name")
    autocomplete_fields = ("team",)
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("has_secret", "created_at", "updated_at")
    inlines = (TicketTypeFieldInline,)
    fieldsets = (
        (None, {"fields": ("slug", "name", "team", "default_priority", "channels")}),
        ("Time limit, lock and breach", {"fields": (
            "time_limit_minutes", "max_lock_minutes", "on_breach", "breach_priority_step",
            "handover_priority_step", "reopen_priority_step", "feedback_window_hours",
        )}),
        ("Callback flow and webhooks", {"classes": ("collapse",), "fields": (
            "callback_url", "callback_attempts", "callback_backoff_seconds",
            "callback_timeout_seconds", "webhook_url", "has_secret", "new_secret",
            "clear_secret",
        )}),
        ("Record", {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )

    def get_prepopulated_fields(self, request, obj=None):
        # The slug names the type in the API: it is chosen once.
        return {} if obj is not None else self.prepopulated_fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (("slug",) if obj is not None else ())

    @admin.display(description="callback", boolean=True)
    def callback_enabled(self, obj: TicketType) -> bool:
        return obj.callback

    @admin.display(description="secret set", boolean=True)
    def has_secret(self, obj: TicketType) -> bool:
        return bool(obj.secret)


# -- tickets --------------------------------------------------------------------------


class TicketEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = TicketEvent
    fields = ("at", "kind", "actor", "from_state", "to_state", "details")
    readonly_fields = fields
    ordering = ("id",)
    extra = 0
    verbose_name = "event"
    verbose_name_plural = "timeline"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class FeedbackInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = Feedback
    fields = ("created_at", "requester", "resolution", "accepted", "rating", "comment")
    readonly_fields = fields
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("requester")


class TicketActionForm(ActionForm):
    agent = forms.CharField(
        required=False, label="Agent (for assign)",
        widget=forms.TextInput(attrs={"placeholder": "username", "size": 12}),
    )
    force = forms.BooleanField(required=False, label="force over a lock")


class BreachedFilter(admin.SimpleListFilter):
    title = "breached"
    parameter_name = "breached"

    def lookups(self, request, model_admin):
        return (("yes", "Breached"), ("no", "Never breached"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(breached_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(breached_at__isnull=True)
        return queryset


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "ticket_type", "team", "state", "priority", "assignee",
                    "requester", "due_at", "locked_until", "breached_at", "created_at")
    list_display_links = ("id", "title")
    list_select_related = ("ticket_type", "team", "assignee", "requester")
    list_filter = ("state", "team", "ticket_type", "priority", BreachedFilter, "in_time")
    search_fields = ("=id", "title", "requester__username", "assignee__username")
    date_hierarchy = "created_at"
    ordering = ("-id",)
    list_per_page = 50
    inlines = (TicketEventInline, FeedbackInline)
    action_form = TicketActionForm
    actions = ("cancel_tickets", "force_unlock", "assign_to_agent", "run_dispatch")
    fieldsets = (
        (None, {"fields": ("title", "ticket_type", "team", "state", "priority", "requester",
                           "created_by", "description", "data")}),
        ("Work", {"fields": ("assignee", "assigned_at", "locked_until", "locked_by",
                             "excluded_agents", "handover_count")}),
        ("Time limit", {"fields": ("round", "sla_started_at", "due_at", "round_breached",
                                   "breached_at")}),
        ("Result", {"fields": ("resolved_at", "in_time", "result", "feedback_due_at",
                               "rating", "reopen_count", "closed_at", "cancelled_at")}),
        ("Callback", {"classes": ("collapse",), "fields": ("callback_attempts",
                                                           "callback_next_at")}),
    )

    def get_queryset(self, request) -> QuerySet[Ticket]:
        qs = super().get_queryset(request)
        user = request.user
        if user.is_superuser:
            return qs
        # Supervisors see everything in their teams (DESIGN.md 3).
        return qs.filter(team__in=user.teams.all())

    def has_add_permission(self, request) -> bool:
        return False  # tickets are raised in the portal or through the API

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only: state changes are the actions below

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the timeline and the KPIs depend on every ticket

    def has_supervise_permission(self, request) -> bool:
        return can_supervise(self, request)

    def _each(self, request, queryset, verb: str, call) -> None:
        done, failed = 0, 0
        for ticket_id in queryset.order_by("id").values_list("id", flat=True):
            try:
                call(ticket_id)
            except OrderlyError as exc:
                failed += 1
                self.message_user(request, f"#{ticket_id}: {_error_text(exc)}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{verb} {done} ticket(s).", messages.SUCCESS)
        elif not failed:
            self.message_user(request, "No ticket selected.", messages.WARNING)

    @admin.action(description="Cancel selected tickets", permissions=["supervise"])
    def cancel_tickets(self, request, queryset):
        from tickets.services.work import ticket_cancel

        self._each(request, queryset, "Cancelled", lambda tid: ticket_cancel(
            ticket_id=tid, by=request.user, reason="Cancelled by a supervisor."))

    @admin.action(description="Force-unlock selected tickets", permissions=["supervise"])
    def force_unlock(self, request, queryset):
        from tickets.services.work import ticket_unlock

        self._each(request, queryset, "Unlocked",
                   lambda tid: ticket_unlock(ticket_id=tid, by=request.user))

    @admin.action(description="Assign selected tickets to the agent named above",
                  permissions=["supervise"])
    def assign_to_agent(self, request, queryset):
        from tickets.services.dispatch import ticket_assign

        agent = (request.POST.get("agent") or "").strip()
        force = request.POST.get("force") in ("on", "true", "1")
        if not agent:
            self.message_user(request, "Name the agent (username) in the box next to the action.",
                              messages.ERROR)
            return
        self._each(request, queryset, f"Assigned to {agent}", lambda tid: ticket_assign(
            ticket_id=tid, agent_username=agent, by=request.user, force=force))

    @admin.action(description="Run dispatch now (the whole pool)", permissions=["supervise"])
    def run_dispatch(self, request, queryset):
        from tickets.services.dispatch import dispatch_run

        try:
            assigned = dispatch_run()
        except OrderlyError as exc:
            self.message_user(request, _error_text(exc), messages.ERROR)
            return
        self.message_user(request, f"Dispatch assigned {assigned} ticket(s).", messages.SUCCESS)


@admin.register(TicketEvent)
class TicketEventAdmin(TicketTeamScopedMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "at", "ticket", "kind", "actor", "from_state", "to_state")
    list_select_related = ("ticket", "actor")
    list_filter = ("kind",)
    search_fields = ("=ticket__id", "actor__username")
    date_hierarchy = "at"
    ordering = ("-id",)



@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "created_at", "user", "ticket", "kind", "read", "short_message")
    list_select_related = ("user", "ticket")
    list_filter = ("kind", "read")
    search_fields = ("user__username", "=ticket__id", "message")
    date_hierarchy = "created_at"
    ordering = ("-id",)

    @admin.display(description="message")
    def short_message(self, obj: Notification) -> str:
        return obj.message if len(obj.message) <= 80 else obj.message[:79] + "…"


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("key", "user", "ticket", "created_at")
    list_select_related = ("user", "ticket")
    search_fields = ("key", "user__username", "=ticket__id")
    ordering = ("-id",)


@admin.register(Delivery)
class DeliveryAdmin(TicketTeamScopedMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Outgoing emails and webhooks with their attempts; failed ones can be
    sent again (through the same service as the API's retry)."""

    list_display = ("id", "created_at", "ticket", "channel", "event", "recipient", "status",
                    "attempts", "next_attempt_at", "sent_at")
    list_filter = ("status", "channel", "event")
    search_fields = ("recipient", "ticket__id", "ticket__title")
    list_select_related = ("ticket",)
    readonly_fields = ("ticket", "channel", "recipient", "event", "status", "attempts",
                       "last_error", "next_attempt_at", "created_at", "sent_at")
    exclude = ("payload",)  # may hold what was sent; attempts and errors are what matter
    actions = ("retry_failed",)


    def has_supervise_permission(self, request) -> bool:
        return can_supervise(self, request)

    @admin.action(description="Send selected failed deliveries again", permissions=["supervise"])
    def retry_failed(self, request, queryset):
        from tickets.services.deliveries import delivery_retry

        done = 0
        for delivery_id in queryset.order_by("id").values_list("id", flat=True):
            try:
                delivery_retry(delivery_id=delivery_id, by=request.user)
            except OrderlyError as exc:
                self.message_user(request, f"#{delivery_id}: {_error_text(exc)}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} delivery(ies) will be sent again.",
                              messages.SUCCESS)
