"""Reads: querysets that already carry what their callers follow (STYLE.md 12)."""
from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from agents.models import User
from tickets.errors import NotFound
from tickets.models import Notification, Ticket, TicketEvent, TicketType


def user_team_ids(user: User) -> list[int]:
    cached = getattr(user, "_orderly_team_ids", None)
    if cached is None:
        cached = list(user.teams.values_list("id", flat=True))
        user._orderly_team_ids = cached
    return cached


def ticket_visibility_q(user: User) -> Q:
    """Who sees which ticket (DESIGN.md 3)."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    if user.is_superuser and user.role == User.Role.SUPERVISOR:
        return Q()
    if user.role == User.Role.REQUESTER:
        return Q(requester_id=user.pk)
    if user.role in (User.Role.AGENT, User.Role.SUPERVISOR):
        return Q(team_id__in=user_team_ids(user))
    if user.role == User.Role.INTEGRATION:
        return Q(created_by_id=user.pk)
    return Q(pk__in=[])


def ticket_is_visible(*, user: User, ticket: Ticket) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser and user.role == User.Role.SUPERVISOR:
        return True
    if user.role == User.Role.REQUESTER:
        return ticket.requester_id == user.pk
    if user.role in (User.Role.AGENT, User.Role.SUPERVISOR):
        return ticket.team_id in user_team_ids(user)
    if user.role == User.Role.INTEGRATION:
        return ticket.created_by_id == user.pk
    return False


def ticket_list_qs(*, user: User) -> QuerySet[Ticket]:
    """The tickets a user may see, with everything the Ticket answer follows."""
    qs = (
        Ticket.objects.filter(ticket_visibility_q(user))
        .select_related("ticket_type", "team", "requester", "assignee", "locked_by")
    )
    # Only agents and supervisors are shown excluded_agents.
    if user.role in (User.Role.AGENT, User.Role.SUPERVISOR):
        qs = qs.prefetch_related(
            Prefetch("excluded_agents", queryset=User.objects.only("id", "username"))
        )
    return qs


def ticket_get_for_user(*, user: User, ticket_id: int) -> Ticket:
    """A visible ticket or NotFound (never 403: DESIGN.md 3)."""
    try:
        return ticket_list_qs(user=user).get(pk=int(ticket_id))
    except (Ticket.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such ticket.") from None


def ticket_events_for_user(*, user: User, ticket: Ticket) -> QuerySet[TicketEvent]:
    qs = ticket.events.select_related("actor").order_by("id")
    if user.is_requester or user.is_integration:
        qs = qs.exclude(kind=TicketEvent.Kind.NOTE)
    return qs


def ticket_type_list() -> QuerySet[TicketType]:
    return TicketType.objects.select_related("team").prefetch_related("fields").order_by("slug")


def notification_list(*, user: User, unread: bool | None = None) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user).order_by("-id")
    if unread is True:
        qs = qs.filter(read=False)
    elif unread is False:
        qs = qs.filter(read=True)
    return qs
