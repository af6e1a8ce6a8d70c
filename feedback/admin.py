"""Django admin for requesters' verdicts: read-only (they are given in the
portal or through the API, by ``feedback.services.ticket_feedback``)."""
from __future__ import annotations

from django.contrib import admin

from feedback.models import Feedback
from tickets.admin import TicketTeamScopedMixin


@admin.register(Feedback)
class FeedbackAdmin(TicketTeamScopedMixin, admin.ModelAdmin):
    list_display = ("id", "ticket", "requester", "resolution", "accepted", "rating", "created_at")
    list_select_related = ("ticket", "requester")
    list_filter = ("accepted", "rating")
    search_fields = ("=ticket__id", "requester__username", "comment")
    date_hierarchy = "created_at"
    ordering = ("-id",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
