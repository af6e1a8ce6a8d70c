"""The requester's (and supervisor's) portal inbox."""
from __future__ import annotations

from agents.models import User
from tickets.errors import NotFound
from tickets.models import Notification


def notification_mark_read(*, user: User, notification_id: int) -> None:
    """Mark one of the user's notifications read; another user's is NotFound."""
    if not Notification.objects.filter(pk=notification_id, user=user).update(read=True):
        raise NotFound("No such notification.")


def notification_mark_all_read(*, user: User) -> int:
    return Notification.objects.filter(user=user, read=False).update(read=True)
