"""Django admin for people: teams, users (role, teams) and agents.

Availability and load are the agents' own business and the service layer's
(``agent_set_status``, dispatch): the admin shows them read-only and lets a
supervisor change only the configuration, such as an agent's capacity.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count
from rest_framework.authtoken.models import Token

from agents.models import Agent, Team, User
from tickets.errors import OrderlyError


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "member_count", "created_at")
    search_fields = ("name",)
    ordering = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("members", distinct=True))

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj: Team) -> int:
        return obj._members


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "role", "team_names", "is_staff", "is_active")
    list_filter = ("role", "teams", "is_staff", "is_superuser", "is_active")
    search_fields = ("username", "first_name", "last_name", "email")
    filter_horizontal = ("teams", "groups", "user_permissions")
    fieldsets = DjangoUserAdmin.fieldsets + (
        ("Orderly", {"fields": ("role", "teams", "time_zone")}),
    )
    add_fieldsets = DjangoUserAdmin.add_fieldsets + (
        ("Orderly", {"classes": ("wide",), "fields": ("email", "role", "teams")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("teams")

    @admin.display(description="teams")
    def team_names(self, obj: User) -> str:
        return ", ".join(team.name for team in obj.teams.all())

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        user = form.instance
        # What user_provision gives every user: an API token, and an agent
        # row (availability, capacity, load) for agents.
        Token.objects.get_or_create(user=user)
        if user.role == User.Role.AGENT:
            _agent, created = Agent.objects.get_or_create(user=user)
            if created:
                self.message_user(
                    request, f"{user.username} is an agent now (offline, capacity 5).",
                    messages.INFO,
                )


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ("user", "status", "active_count", "capacity", "load", "last_assigned_at",
                    "status_changed_at")
    list_select_related = ("user",)
    list_filter = ("status", "user__teams")
    search_fields = ("user__username", "user__first_name", "user__last_name")
    readonly_fields = ("status", "status_changed_at", "active_count", "last_assigned_at",
                       "created_at", "updated_at")
    autocomplete_fields = ("user",)
    ordering = ("user__username",)
    actions = ("run_dispatch",)

    def get_readonly_fields(self, request, obj=None):
        # The user of an existing agent row never changes.
        return self.readonly_fields + (("user",) if obj is not None else ())

    @admin.display(description="load")
    def load(self, obj: Agent) -> str:
        return f"{obj.active_count}/{obj.capacity}"

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Write only what the form changed: active_count and status belong to
        # the service layer, and a full save would write back stale values.
        changed = [name for name in form.changed_data if name not in self.readonly_fields]
        if "capacity" in changed:
            from agents.services import agent_set_capacity

            agent_set_capacity(agent_id=obj.pk, capacity=obj.capacity)
            changed.remove("capacity")
        if changed:
            obj.save(update_fields=[*changed, "updated_at"])

    @admin.action(description="Run dispatch now", permissions=["change"])
    def run_dispatch(self, request, queryset):
        from tickets.services.dispatch import dispatch_run

        try:
            assigned = dispatch_run()
        except OrderlyError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return
        self.message_user(request, f"Dispatch assigned {assigned} ticket(s).", messages.SUCCESS)
