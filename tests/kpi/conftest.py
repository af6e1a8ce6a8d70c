"""A scripted day on the Refunds desk, played through the real services.

All on 2026-03-02 (UTC), the clock frozen and moved by hand; the KPIs are
read at 12:00. Type ``refund`` (60-minute limit, breach reclaims), type
``crm-refund`` (callback) -- both of team Refunds; agents agnes and otto.

    09:00 T1..T7 created (T4 of the callback type); T3, T5 -> agnes
    09:01 T1 -> agnes
    09:05 T4 resolved by the callback flow (no agent)
    09:10 T2 -> agnes
    09:20 agnes hands T2 over
    09:25 T2 -> otto
    09:30 T4 accepted, rating 4
    09:32 agnes resolves T1          (resolve 32, handle 31, in time)
    09:40 requester cancels T5 (assigned to agnes)
    09:46 otto resolves T2           (resolve 46, handle 21, in time)
    10:00 T1 accepted, rating 5; T2 rejected, rating 2 (reopened);
          T3 breaches with agnes (reclaimed, round 2 due 11:00)
    10:05 T2 -> otto, T3 -> otto
    10:15 otto resolves T2 again     (resolve 75, handle 10, in time)
    10:21 otto resolves T3           (resolve 81, handle 16, in time: new round)
    10:30 T2 accepted, no rating
    11:00 T7 -> otto (due 10:00: overdue); T6 waits in the pool (overdue)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

import pytest

from agents.models import User
from feedback.services import ticket_feedback
from tests.factories import TicketTypeFactory, ticket_assign_to
from tickets.models import Ticket
from tickets.services import callback
from tickets.services.creation import ticket_create
from tickets.services.sweeps import ticket_breach
from tickets.services.work import ticket_cancel, ticket_handover, ticket_resolve

DAY = "2026-03-02"


def at(hhmm: str, day: str = DAY) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00").replace(tzinfo=dt_timezone.utc)


def create(requester: User, slug: str = "refund", title: str = "Refund please") -> Ticket:
    ticket, _ = ticket_create(by=requester, type_slug=slug, title=title)
    return ticket


def callback_resolve(monkeypatch, ticket: Ticket, result: str = "Refunded by the CRM.") -> None:
    monkeypatch.setattr(callback, "_post", lambda t: ("resolved", result, ""))
    assert callback.callback_attempt(ticket_id=ticket.pk) == "resolved"


@dataclass
class Day:
    tickets: dict[str, Ticket]


@pytest.fixture
def callback_type(team):
    return TicketTypeFactory(slug="crm-refund", name="CRM refund", team=team, callback=True,
                             time_limit_minutes=60)


@pytest.fixture
def scripted_day(clock, monkeypatch, ticket_type, callback_type, requester, agent_user,
                 other_agent_user, supervisor):
    agnes, otto = agent_user, other_agent_user
    clock.move_to(at("09:00"))
    t = {f"T{n}": create(requester, "crm-refund" if n == 4 else "refund", f"T{n}")
         for n in range(1, 8)}
    ticket_assign_to(t["T3"], agnes)
    ticket_assign_to(t["T5"], agnes)
    clock.move_to(at("09:01"))
    ticket_assign_to(t["T1"], agnes)
    clock.move_to(at("09:05"))
    callback_resolve(monkeypatch, t["T4"])
    clock.move_to(at("09:10"))
    ticket_assign_to(t["T2"], agnes)
    clock.move_to(at("09:20"))
    ticket_handover(ticket_id=t["T2"].pk, by=agnes, reason="Needs the refunds specialist.")
    clock.move_to(at("09:25"))
    ticket_assign_to(t["T2"], otto)
    clock.move_to(at("09:30"))
    ticket_feedback(ticket_id=t["T4"].pk, by=requester, accepted=True, rating=4)
    clock.move_to(at("09:32"))
    ticket_resolve(ticket_id=t["T1"].pk, by=agnes, result="Refunded.")
    clock.move_to(at("09:40"))
    ticket_cancel(ticket_id=t["T5"].pk, by=requester, reason="Sorted it myself.")
    clock.move_to(at("09:46"))
    ticket_resolve(ticket_id=t["T2"].pk, by=otto, result="Refunded 20.")
    clock.move_to(at("10:00"))
    ticket_feedback(ticket_id=t["T1"].pk, by=requester, accepted=True, rating=5)
    ticket_feedback(ticket_id=t["T2"].pk, by=requester, accepted=False, rating=2,
                    comment="Only half of it.")
    assert ticket_breach(ticket_id=t["T3"].pk) is True
    clock.move_to(at("10:05"))
    ticket_assign_to(t["T2"], otto)
    ticket_assign_to(t["T3"], otto)
    clock.move_to(at("10:15"))
    ticket_resolve(ticket_id=t["T2"].pk, by=otto, result="Refunded the rest.")
    clock.move_to(at("10:21"))
    ticket_resolve(ticket_id=t["T3"].pk, by=otto, result="Refunded.")
    clock.move_to(at("10:30"))
    ticket_feedback(ticket_id=t["T2"].pk, by=requester, accepted=True)
    clock.move_to(at("11:00"))
    ticket_assign_to(t["T7"], otto)
    clock.move_to(at("12:00"))
    return Day(tickets={k: Ticket.objects.get(pk=v.pk) for k, v in t.items()})


# Hand-computed from the script above (minutes are real minutes: 60 s).
EXPECTED = {
    "agent": {
        "agnes": {
            "key": "agnes", "assigned": 4, "resolved": 1, "in_time_rate": 1.0, "breaches": 1,
            "handovers": 1, "reopen_rate": 0.0, "mean_resolve_minutes": 32.0,
            "p90_resolve_minutes": 32.0, "mean_handle_minutes": 31.0, "mean_rating": 5.0,
            "satisfied_rate": 1.0, "open": 0, "overdue": 0,
        },
        "otto": {
            "key": "otto", "assigned": 4, "resolved": 3, "in_time_rate": 1.0, "breaches": 0,
            "handovers": 0, "reopen_rate": 0.5, "mean_resolve_minutes": 67.3,
            "p90_resolve_minutes": 79.8, "mean_handle_minutes": 15.7, "mean_rating": 2.0,
            "satisfied_rate": 0.0, "open": 1, "overdue": 1,
        },
    },
    "team": {
        "Refunds": {
            "key": "Refunds", "assigned": 8, "resolved": 5, "in_time_rate": 1.0, "breaches": 1,
            "handovers": 1, "reopen_rate": 0.25, "mean_resolve_minutes": 47.8,
            "p90_resolve_minutes": 78.6, "mean_handle_minutes": 19.5, "mean_rating": 3.67,
            "satisfied_rate": 0.6667, "open": 2, "overdue": 2,
        },
    },
    "type": {
        "crm-refund": {
            "key": "crm-refund", "assigned": 0, "resolved": 1, "in_time_rate": 1.0,
            "breaches": 0, "handovers": 0, "reopen_rate": 0.0, "mean_resolve_minutes": 5.0,
            "p90_resolve_minutes": 5.0, "mean_handle_minutes": None, "mean_rating": 4.0,
            "satisfied_rate": 1.0, "open": 0, "overdue": 0,
        },
        "refund": {
            "key": "refund", "assigned": 8, "resolved": 4, "in_time_rate": 1.0, "breaches": 1,
            "handovers": 1, "reopen_rate": 0.3333, "mean_resolve_minutes": 58.5,
            "p90_resolve_minutes": 79.2, "mean_handle_minutes": 19.5, "mean_rating": 3.5,
            "satisfied_rate": 0.5, "open": 2, "overdue": 2,
        },
    },
}
