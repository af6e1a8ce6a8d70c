"""HTTP client and polling for the system tests (no Django imports: the test
is a client of the running processes)."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import requests

T = TypeVar("T")
POLL_SECONDS = 0.2
# The one bootstrap user (made with manage.py shell); everything else goes through the API.
ADMIN_USERNAME = "sysadmin"
ADMIN_PASSWORD = "Sys-admin-pass-4821"
HTTP_TIMEOUT = 10


class WaitTimeout(AssertionError):
    pass


def wait_for(predicate: Callable[[], T], timeout: float, what: str,
             poll: float = POLL_SECONDS) -> T:
    """Call ``predicate`` every ``poll`` seconds until it returns something
    truthy (returned), or fail after ``timeout`` seconds saying what was awaited
    and what the predicate last saw (``predicate.last``, when it sets one)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            last = getattr(predicate, "last", None)
            raise WaitTimeout(f"Timed out after {timeout:.0f}s waiting for {what}."
                              + (f"\nLast seen: {last!r}" if last is not None else ""))
        time.sleep(poll)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ApiError(AssertionError):
    pass


class Api:
    """One user's view of the API: ``Authorization: Token <key>`` on every call.

    ``get``/``post``/``patch`` return the decoded JSON and fail on any status
    other than ``expect``. A fresh connection per call: safe from threads.
    """

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"} if self.token else {}

    def request(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        response = requests.request(method, self.base_url + path, json=body,
                                    headers=self._headers(), timeout=HTTP_TIMEOUT)
        if response.status_code != expect:
            raise ApiError(f"{method} {path} {body!r} answered {response.status_code}, "
                           f"expected {expect}: {response.text[:2000]}")
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, expect: int = 200) -> Any:
        return self.request("GET", path, expect=expect)

    def post(self, path: str, body: Any = None, expect: int = 200) -> Any:
        return self.request("POST", path, {} if body is None else body, expect=expect)

    def patch(self, path: str, body: Any, expect: int = 200) -> Any:
        return self.request("PATCH", path, body, expect=expect)

    def reachable(self, path: str) -> bool:
        try:
            requests.get(self.base_url + path, timeout=2)
        except requests.ConnectionError:
            return False
        return True

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """The ticket's detail, with its events."""
        return self.get(f"/api/v1/tickets/{ticket_id}/")


def events_of(ticket: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [event for event in ticket.get("events", []) if event["kind"] == kind]


def watch(api: Api, ticket_id: int, test: Callable[[dict[str, Any]], bool]):
    """A ``wait_for`` predicate: re-GET the ticket, return it once ``test`` holds.

    The ticket returned carries ``_seen_at``: the client's clock just before the GET.
    """

    def predicate():
        seen_at = datetime.now(timezone.utc)
        ticket = api.ticket(ticket_id)
        ticket["_seen_at"] = seen_at
        predicate.last = {k: ticket.get(k) for k in (
            "state", "assignee", "priority", "due_at", "locked_until", "breached_at",
            "closed_at")} | {"events": [e["kind"] for e in ticket.get("events", [])]}
        return ticket if test(ticket) else None

    predicate.last = None
    return predicate
