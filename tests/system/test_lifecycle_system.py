"""The engine on the real system: gunicorn, a Celery worker and beat, on
PostgreSQL and Redis (see conftest.py), driven and watched over HTTP only.

A configured minute lasts one real second (ORDERLY_SECONDS_PER_MINUTE=1) and
beat sweeps every second, so the rules that happen "by themselves" can be
watched: dispatch without a pull, a lock that expires, a breach reclaimed to
another agent, and a resolved ticket closed when its feedback window is over.
Nothing in here sleeps to assert: every check polls the API with a deadline.

Cast (team "Desk"): rita the requester; agents ava and ben (capacity 2 each);
sue the supervisor, who watches every ticket's timeline. Who gets which ticket
follows from the dispatch rules alone (lowest load, then longest since the last
assignment): ava gets the first, ben (never assigned yet) the second, ava (0/2
against ben's 1/2) the third -- and after ava breaches it, ben, as ava is excluded.
Types: "standard" (5-minute limit, 1-hour = 60 s feedback window, on breach
"notify": the ticket stays with its agent, so the lock scenario is never
disturbed by a reclaim) and "express" (3-minute limit, on breach "reassign").
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from tests.system.helpers import ADMIN_PASSWORD, ADMIN_USERNAME, Api, events_of, parse_time, wait_for, watch

pytestmark = pytest.mark.system

PASSWORD = "Orderly-system-pass-93"
DISPATCH_TIMEOUT = 10  # a nudge after commit, or the next 1-second sweep
SWEEP_TIMEOUT = 10  # a beat sweep runs every second


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Provisioner:
    """Provisioning over the API from the admin's token (the one bootstrap user)."""

    def __init__(self, system) -> None:
        self.system = system
        token = system.api().post("/api/v1/auth/token/",
                                  {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})["token"]
        self.admin = system.api(token)

    def team(self, name: str) -> None:
        assert self.admin.post("/api/v1/teams/", {"name": name}, expect=201) == {"name": name}

    def user(self, username: str, role: str, teams: list[str], capacity: int | None = None) -> Api:
        body = {"username": username, "password": PASSWORD, "email": f"{username}@example.com",
                "role": role, "teams": teams}
        if capacity is not None:
            body["capacity"] = capacity
        created = self.admin.post("/api/v1/users/", body, expect=201)
        assert (created["username"], created["role"]) == (username, role) and created["token"]
        return self.system.api(created["token"])

    def ticket_type(self, **values) -> dict:
        created = self.admin.post("/api/v1/ticket-types/", values, expect=201)
        for key in ("slug", "team", "time_limit_minutes", "on_breach"):
            assert created[key] == values[key], (key, created)
        return created


def create_ticket(requester: Api, type_slug: str, title: str) -> dict:
    ticket = requester.post("/api/v1/tickets/", {"type": type_slug, "title": title,
                                                 "description": "system test"}, expect=201)
    # Created into the pool; the answer is read after the commit, by which time the
    # worker may already have assigned it.
    assert ticket["state"] in ("pooled", "assigned"), ticket
    assert ticket["due_at"] and ticket["sla_started_at"], ticket
    return ticket


def wait_dispatched(viewer: Api, ticket_id: int, agent: str) -> dict:
    """The worker assigns the ticket to ``agent`` with nobody pulling."""
    ticket = wait_for(
        watch(viewer, ticket_id, lambda t: t["state"] == "assigned"),
        DISPATCH_TIMEOUT, f"ticket {ticket_id} to be dispatched",
    )
    assert ticket["assignee"] == agent, ticket
    assigned = events_of(ticket, "assigned")
    assert [(e["actor"], e["details"].get("via")) for e in assigned] == [(None, "dispatch")], assigned
    return ticket


# -- the watchers that run side by side once everything is set going -------------------


def watch_lock_expiry(sup: Api, ticket_id: int, locked_until: datetime) -> str:
    """2. The lock ends by itself: locked_until null again and a lock_expired event."""
    ticket = wait_for(
        watch(sup, ticket_id, lambda t: t["locked_until"] is None and events_of(t, "lock_expired")),
        (locked_until - _now()).total_seconds() + SWEEP_TIMEOUT,
        f"the lock of ticket {ticket_id} to expire",
    )
    (expired,) = events_of(ticket, "lock_expired")
    assert parse_time(expired["at"]) >= locked_until, expired
    assert expired["actor"] is None and expired["details"]["locked_by"] == "ben", expired
    assert ticket["locked_by"] is None and ticket["state"] == "assigned"
    assert ticket["assignee"] == "ben", "an expired lock changes nothing else"
    return f"lock expired {parse_time(expired['at']) - locked_until} after locked_until"


def watch_notify_breach(sup: Api, ticket_id: int, due_at: datetime) -> str:
    """on_breach "notify": marked, priority raised, left with its agent."""
    ticket = wait_for(
        watch(sup, ticket_id, lambda t: t["breached_at"] and events_of(t, "breached")),
        (due_at - _now()).total_seconds() + SWEEP_TIMEOUT,
        f"ticket {ticket_id} to breach",
    )
    (breached,) = events_of(ticket, "breached")
    assert breached["details"]["policy"] == "notify" and not breached["details"]["reclaimed"]
    assert parse_time(ticket["breached_at"]) >= due_at
    assert ticket["state"] == "assigned" and ticket["assignee"] == "ben", ticket
    assert ticket["priority"] == breached["details"]["priority_to"] == 3
    return "notify breach kept the ticket with ben"


def watch_breach_reassign(sup: Api, requester: Api, ticket_id: int, first_due: datetime,
                          first_priority: int) -> str:
    """3. Breach with ava: reclaimed, ava excluded, re-dispatched to ben with a new round."""

    def reassigned_to_ben(ticket: dict) -> bool:
        events = ticket["events"]
        breach = next((i for i, e in enumerate(events)
                       if e["kind"] == "breached" and e["details"].get("agent") == "ava"), None)
        if breach is None:
            return False
        to_ben = next((i for i, e in enumerate(events) if i > breach
                       and e["kind"] == "assigned" and e["details"].get("agent") == "ben"), None)
        if to_ben is None:
            return False
        # The detail reads the ticket row, then its events: wait for a read in which the
        # row has caught up with ben's assignment (or a later change, once his own 3-second
        # round may have run out too).
        return ticket["assignee"] == "ben" or any(
            e["from_state"] != e["to_state"] for e in events[to_ben + 1:])

    ticket = wait_for(
        watch(sup, ticket_id, reassigned_to_ben),
        (first_due - _now()).total_seconds() + SWEEP_TIMEOUT + DISPATCH_TIMEOUT,
        f"ticket {ticket_id} to breach and be re-dispatched to ben",
    )
    breached = events_of(ticket, "breached")[0]
    details = breached["details"]
    breach_at = parse_time(breached["at"])
    assert details["agent"] == "ava" and details["policy"] == "reassign" and details["reclaimed"]
    assert breached["from_state"] == "assigned" and breached["to_state"] == "pooled", breached
    assert breach_at >= first_due, (breach_at, first_due)
    assert (details["priority_from"], details["priority_to"]) == (first_priority, first_priority + 1)
    assert ticket["breached_at"] is not None
    assert ticket["priority"] >= first_priority + 1, ticket
    assert "ava" in ticket["excluded_agents"], ticket
    to_ben = next(e for e in ticket["events"] if e["kind"] == "assigned"
                  and e["details"].get("agent") == "ben")
    assert to_ben["actor"] is None and to_ben["details"]["via"] == "dispatch", to_ben
    # A new round: the time limit restarts at the breach, so ben has real time.
    new_due = parse_time(details["due_at"])
    assert new_due == breach_at + timedelta(seconds=3), (new_due, breach_at)
    assert new_due > first_due and new_due > parse_time(to_ben["at"])
    if len(events_of(ticket, "breached")) == 1:  # ben's own round has not run out yet
        assert ticket["state"] == "assigned" and ticket["assignee"] == "ben", ticket
        assert parse_time(ticket["due_at"]) == new_due
        assert new_due > ticket["_seen_at"], "ben's round still had time when he was seen holding it"
    # Stop the round-after-round breaches: the requester withdraws it.
    cancelled = requester.post(f"/api/v1/tickets/{ticket_id}/cancel/", {"reason": "done watching"})
    assert cancelled["state"] == "cancelled"
    return f"reassigned to ben {parse_time(to_ben['at']) - breach_at} after the breach"


def watch_auto_close(sup: Api, ticket_id: int, resolved_at: datetime) -> str:
    """4. No answer from the requester within the 60-second window: auto-closed."""
    window = timedelta(seconds=60)
    ticket = wait_for(
        watch(sup, ticket_id, lambda t: t["state"] == "closed"),
        (resolved_at + window - _now()).total_seconds() + SWEEP_TIMEOUT,
        f"ticket {ticket_id} to be auto-closed",
    )
    (closed,) = events_of(ticket, "auto_closed")
    assert closed["actor"] is None and closed["from_state"] == "resolved"
    assert closed["to_state"] == "closed"
    assert not events_of(ticket, "accepted") and not events_of(ticket, "rejected")
    closed_at = parse_time(ticket["closed_at"])
    assert closed_at >= resolved_at + window, (closed_at, resolved_at)
    return f"auto-closed {closed_at - resolved_at} after resolve"


# -- the test ---------------------------------------------------------------------------


def test_lifecycle_on_real_processes(system):
    started = time.monotonic()
    anonymous = system.api()
    assert anonymous.get("/api/v1/health/") == {"database": "ok", "broker": "ok"}

    # Provisioning, over HTTP. Password hashing makes each user slow, so users are made
    # side by side, and ben, sue and the express type once the 60-second scenario runs.
    setup = Provisioner(system)
    setup.team("Desk")
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        rita_f = pool.submit(setup.user, "rita", "requester", [])
        ava_f = pool.submit(setup.user, "ava", "agent", ["Desk"], capacity=2)
        standard = setup.ticket_type(slug="standard", name="Standard", team="Desk",
                                     time_limit_minutes=5, feedback_window_hours=1,
                                     on_breach="notify")
        assert standard["feedback_window_hours"] == 1
        rita, ava = rita_f.result(), ava_f.result()

        # 1. ava goes online; rita's tickets are dispatched to her by the worker, no pull.
        me = ava.patch("/api/v1/agents/me/", {"status": "online"})
        assert (me["status"], me["capacity"], me["active"]) == ("online", 2, 0)

        # 4 (set going first: it takes longest). A ticket resolved at once, never answered.
        closing = create_ticket(rita, "standard", "Resolved and never answered")
        wait_dispatched(ava, closing["id"], "ava")
        resolved = ava.post(f"/api/v1/tickets/{closing['id']}/resolve/", {"result": "Done."})
        assert resolved["state"] == "resolved" and resolved["in_time"] is True
        resolved_at = parse_time(resolved["resolved_at"])

        ben_f = pool.submit(setup.user, "ben", "agent", ["Desk"], capacity=2)
        sue_f = pool.submit(setup.user, "sue", "supervisor", ["Desk"])
        setup.ticket_type(slug="express", name="Express", team="Desk", time_limit_minutes=3,
                          on_breach="reassign")
        ben, sue = ben_f.result(), sue_f.result()
    finally:
        pool.shutdown(wait=True)

    # ben comes online too: from now on the dispatcher chooses between two agents.
    me = ben.patch("/api/v1/agents/me/", {"status": "online"})
    assert (me["status"], me["capacity"], me["active"]) == ("online", 2, 0)

    # 2. Both are free; ben has never been given a ticket (ava just had one), so the next
    #    one is his. He locks it for 2 minutes (2 s): well inside its 5-minute limit,
    #    while 6 minutes, longer than the time left, is refused.
    locked = create_ticket(rita, "standard", "Locked for a while")
    wait_dispatched(sue, locked["id"], "ben")
    refused = ben.post(f"/api/v1/tickets/{locked['id']}/lock/", {"minutes": 6}, expect=409)
    assert refused["code"] == "lock_exceeds_time_left" and refused["max_minutes"] < 6, refused
    after_lock = ben.post(f"/api/v1/tickets/{locked['id']}/lock/", {"minutes": 2})
    assert after_lock["locked_by"] == "ben" and after_lock["locked_until"], after_lock
    locked_until = parse_time(after_lock["locked_until"])
    (lock_event,) = events_of(sue.ticket(locked["id"]), "locked")
    assert locked_until - parse_time(lock_event["at"]) == timedelta(seconds=2), lock_event

    # 3. A short ticket goes to ava, the less loaded (0/2 against ben's 1/2).
    short = create_ticket(rita, "express", "Runs out with ava")
    short = wait_dispatched(sue, short["id"], "ava")
    print(f"  everything set going {time.monotonic() - started:.1f}s in; "
          f"auto-close due {resolved_at + timedelta(seconds=60)}")

    # Everything is going: watch the four outcomes side by side.
    watchers = {
        "lock expiry": (watch_lock_expiry, sue, locked["id"], locked_until),
        "notify breach": (watch_notify_breach, sue, locked["id"], parse_time(locked["due_at"])),
        "breach reassign": (watch_breach_reassign, sue, rita, short["id"],
                            parse_time(short["due_at"]), short["priority"]),
        "auto-close": (watch_auto_close, sue, closing["id"], resolved_at),
    }
    failures, outcomes = [], {}
    with ThreadPoolExecutor(max_workers=len(watchers)) as pool:
        futures = {name: pool.submit(fn, *args) for name, (fn, *args) in watchers.items()}
        for name, future in futures.items():
            try:
                outcomes[name] = future.result()
            except Exception as exc:  # noqa: BLE001 - report every scenario, not the first
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
    for name, outcome in outcomes.items():
        print(f"  {name}: {outcome}")
    system.check_alive()
    assert not failures, "\n".join(failures)

    # The agents' loads add up after all of it: ben still holds the (once locked) ticket.
    assert ava.get("/api/v1/agents/me/")["active"] == 0
    assert ben.get("/api/v1/agents/me/")["active"] == 1
    assert anonymous.get("/api/v1/health/") == {"database": "ok", "broker": "ok"}
    print(f"  system lifecycle checks took {time.monotonic() - started:.1f}s")
