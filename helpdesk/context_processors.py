"""Values every page's header needs: the unread count and the agent's status."""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject


def _unread_count(user) -> int:
    from tickets.selectors import notification_list

    return notification_list(user=user, unread=True).count()


def _agent(user):
    from agents.models import Agent

    return Agent.objects.filter(user=user).first()


def orderly(request: HttpRequest) -> dict[str, Any]:
    """Lazy, so a page that never shows the header runs no query for it."""
    user = getattr(request, "user", None)
    context: dict[str, Any] = {"now": timezone.now()}
    if user is None or not user.is_authenticated:
        return context
    context["unread_count"] = SimpleLazyObject(lambda: _unread_count(user))
    if user.role == "agent":
        context["my_agent"] = SimpleLazyObject(lambda: _agent(user))
    return context
