"""Domain errors. Each carries the API's machine code and HTTP status, so the
API, the portals and the admin translate them the same way."""
from __future__ import annotations

from typing import Any


class OrderlyError(Exception):
    status = 400
    code = "invalid"
    default_detail = "The request is not valid."

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.default_detail
        self.extra = extra
        super().__init__(self.detail)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, **self.extra}


class ValidationFailed(OrderlyError):
    """Bad input: ``fields`` maps a field name to a list of messages."""

    status = 400
    code = "invalid"
    default_detail = "Some fields are not valid."

    def __init__(self, fields: dict[str, list[str]], detail: str | None = None) -> None:
        super().__init__(detail, fields=fields)
        self.fields = fields


class UnknownType(OrderlyError):
    status = 400
    code = "unknown_type"
    default_detail = "There is no ticket type with this slug."


class PermissionDenied(OrderlyError):
    status = 403
    code = "permission_denied"
    default_detail = "Your role may not do this."


class NotFound(OrderlyError):
    status = 404
    code = "not_found"
    default_detail = "Not found."


class Conflict(OrderlyError):
    status = 409
    code = "invalid_transition"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    default_detail = "This is not allowed in the ticket's current state."

    def __init__(self, state: str | None = None, action: str | None = None,
                 detail: str | None = None) -> None:
        if detail is None and state is not None and action is not None:
            detail = f"Cannot {action} a ticket that is {state}."
        super().__init__(detail)


class NotAssignee(Conflict):
    code = "not_assignee"
    default_detail = "Only the agent the ticket is assigned to may do this."


class LockExceedsTimeLeft(Conflict):
    code = "lock_exceeds_time_left"

    def __init__(self, max_minutes: int, detail: str | None = None) -> None:
        super().__init__(
            detail
            or (
                "The lock is longer than the time left until the ticket is due; "
                f"the longest lock allowed now is {max_minutes} minute(s)."
            ),
            max_minutes=max_minutes,
        )
        self.max_minutes = max_minutes


class LockedByOther(Conflict):
    code = "locked_by_other"
    default_detail = "The ticket is locked by its assignee; use force to override the lock."


class AgentNotOnline(Conflict):
    code = "agent_not_online"
    default_detail = "Set your status to online before taking tickets."
