"""Tickets: create, read, list, filters, visibility and cursor pagination (API.md "Tickets")."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.api.conftest import assert_error, assert_invalid
from tests.factories import (
    TicketFactory,
    TicketTypeFactory,
)
from tickets.models import Ticket
from tickets.services import work

pytestmark = pytest.mark.django_db

TICKET_KEYS = {
    "id", "type", "title", "description", "data", "state", "priority", "requester", "assignee",
    "team", "created_at", "sla_started_at", "due_at", "assigned_at", "locked_until", "locked_by",
    "resolved_at", "closed_at", "breached_at", "in_time", "result", "handover_count",
    "reopen_count", "rating",
}
INTERNAL_KEYS = TICKET_KEYS | {"excluded_agents"}
EVENT_KEYS = {"kind", "at", "actor", "from_state", "to_state", "details"}


def iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None, f"{value} has no UTC offset"
    return parsed


# -- create ---------------------------------------------------------------------------------


def test_requester_creates_a_ticket(requester_api, ticket_type, clock):
    response = requester_api.post("/tickets/", {"type": "refund", "title": "Refund me",
                                                "description": "Order 42", "priority": 4})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == TICKET_KEYS
    assert body["type"] == "refund" and body["team"] == "Refunds"
    assert body["requester"] == "alice" and body["assignee"] is None
    assert body["state"] == "pooled" and body["priority"] == 4
    assert body["title"] == "Refund me" and body["description"] == "Order 42"
    assert body["data"] == {} and body["in_time"] is None and body["result"] is None
    assert body["locked_until"] is None and body["locked_by"] is None
    assert iso(body["created_at"]) == clock.now() == iso(body["sla_started_at"])
    assert (iso(body["due_at"]) - clock.now()).total_seconds() == 3600
    assert body["handover_count"] == 0 and body["reopen_count"] == 0 and body["rating"] is None
    assert Ticket.objects.get(pk=body["id"]).requester.username == "alice"


def test_priority_defaults_to_the_types(requester_api, team):
    TicketTypeFactory(slug="urgent-thing", team=team, default_priority=4)
    body = requester_api.post("/tickets/", {"type": "urgent-thing", "title": "x"}).json()
    assert body["priority"] == 4


def test_custom_fields_are_stored(requester_api, team):
    TicketTypeFactory(slug="booking", team=team, fields=[
        {"name": "reference", "kind": "text", "required": True},
        {"name": "amount", "kind": "number"},
    ])
    response = requester_api.post("/tickets/", {"type": "booking", "title": "x",
                                                "data": {"reference": "AB1", "amount": 12.5}})
    assert response.status_code == 201
    assert response.json()["data"] == {"reference": "AB1", "amount": 12.5}


def test_idempotency_key_replays_the_first_ticket(requester_api, other_requester_api,
                                                  ticket_type):
    body = {"type": "refund", "title": "Once"}
    first = requester_api.post("/tickets/", body, HTTP_IDEMPOTENCY_KEY="k-1")
    again = requester_api.post("/tickets/", {**body, "title": "Twice?"},
                               HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert Ticket.objects.count() == 1
    # Another user's same key is another ticket; no key is always a new one.
    other = other_requester_api.post("/tickets/", body, HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 201
    assert requester_api.post("/tickets/", body).status_code == 201
    assert Ticket.objects.count() == 3


@pytest.mark.parametrize("title", ["", "   ", "x" * 201, None])
def test_title_limits(requester_api, ticket_type, title):
    body = {"type": "refund"}
    if title is not None:
        body["title"] = title
    assert_invalid(requester_api.post("/tickets/", body), "title")
    assert Ticket.objects.count() == 0


def test_text_limits_accept_the_boundaries(requester_api, ticket_type):
    response = requester_api.post("/tickets/", {"type": "refund", "title": "x" * 200,
                                                "description": "d" * 20_000})
    assert response.status_code == 201
    assert_invalid(requester_api.post("/tickets/", {"type": "refund", "title": "x",
                                                    "description": "d" * 20_001}), "description")


@pytest.mark.parametrize("priority", [0, 6, "3", 2.5, True, None, [3]])
def test_priority_must_be_1_to_5(requester_api, ticket_type, priority):
    response = requester_api.post("/tickets/", {"type": "refund", "title": "x",
                                                "priority": priority})
    if priority is None:  # explicit null: the type's default
        assert response.status_code == 201
    else:
        assert_invalid(response, "priority")


def test_missing_type_is_invalid(requester_api, ticket_type):
    assert_invalid(requester_api.post("/tickets/", {"title": "x"}), "type")


def test_integration_creates_on_behalf_of_a_requester(integration_api, requester, ticket_type):
    response = integration_api.post("/tickets/", {"type": "refund", "title": "From CRM",
                                                  "requester": "alice"})
    assert response.status_code == 201
    body = response.json()
    assert body["requester"] == "alice"
    assert "excluded_agents" not in body
    # The integration sees what it created; the requester sees it too.
    assert integration_api.get(f"/tickets/{body['id']}/").status_code == 200


def test_integration_must_name_an_existing_requester(integration_api, ticket_type, agent_user):
    assert_invalid(integration_api.post("/tickets/", {"type": "refund", "title": "x"}),
                   "requester")
    assert_invalid(integration_api.post("/tickets/", {"type": "refund", "title": "x",
                                                      "requester": "nobody"}), "requester")
    assert_invalid(integration_api.post("/tickets/", {"type": "refund", "title": "x",
                                                      "requester": "agnes"}), "requester")


def test_others_may_not_name_a_requester(requester_api, other_requester, ticket_type):
    assert_invalid(requester_api.post("/tickets/", {"type": "refund", "title": "x",
                                                    "requester": "bob"}), "requester")
    assert_invalid(requester_api.post("/tickets/", {"type": "refund", "title": "x",
                                                    "requester": "alice"}), "requester")


@pytest.mark.parametrize("who", ["agent_api", "supervisor_api"])
def test_staff_roles_may_not_create(request, ticket_type, who):
    api = request.getfixturevalue(who)
    assert_error(api.post("/tickets/", {"type": "refund", "title": "x"}), 403,
                 "permission_denied")


# -- read -----------------------------------------------------------------------------------


def test_detail_has_events_oldest_first(requester_api, agent_api, assigned_ticket):
    work.ticket_note(ticket_id=assigned_ticket.pk, by=assigned_ticket.assignee, body="psst")
    body = agent_api.get(f"/tickets/{assigned_ticket.pk}/").json()
    assert set(body) == INTERNAL_KEYS | {"events"}
    kinds = [e["kind"] for e in body["events"]]
    assert kinds[:3] == ["created", "pooled", "assigned"] and kinds[-1] == "note"
    for event in body["events"]:
        assert set(event) == EVENT_KEYS
        iso(event["at"])
        assert isinstance(event["details"], dict)
    assert [e["at"] for e in body["events"]] == sorted(e["at"] for e in body["events"])
    assert body["events"][0]["actor"] == "alice"
    assert body["events"][0]["from_state"] == "" and body["events"][0]["to_state"] == "pooled"


def test_requester_never_gets_notes_or_exclusions(requester_api, agent_api, assigned_ticket):
    pk = assigned_ticket.pk
    agent_api.post(f"/tickets/{pk}/notes/", {"body": "internal"})
    agent_api.post(f"/tickets/{pk}/handover/", {"reason": "Not mine"})
    body = requester_api.get(f"/tickets/{pk}/").json()
    assert set(body) == TICKET_KEYS | {"events"}
    assert "note" not in [e["kind"] for e in body["events"]]
    assert "internal" not in str(body)
    listed = requester_api.get("/tickets/").json()["results"]
    assert all(set(t) == TICKET_KEYS for t in listed)
    # Agents do get both.
    internal = agent_api.get(f"/tickets/{pk}/").json()
    assert internal["excluded_agents"] == ["agnes"]
    assert "note" in [e["kind"] for e in internal["events"]]


def test_locked_until_is_null_once_the_lock_ran_out(agent_api, assigned_ticket, clock):
    pk = assigned_ticket.pk
    locked = agent_api.post(f"/tickets/{pk}/lock/", {"minutes": 10}).json()
    assert iso(locked["locked_until"]) == clock.now() + timedelta(minutes=10)
    assert locked["locked_by"] == "agnes"
    clock.shift(minutes=11)
    body = agent_api.get(f"/tickets/{pk}/").json()
    assert body["locked_until"] is None and body["locked_by"] is None


def test_callback_ticket_has_no_time_limit_yet(requester_api, team):
    TicketTypeFactory(slug="auto", team=team, callback=True)
    body = requester_api.post("/tickets/", {"type": "auto", "title": "x"}).json()
    assert body["state"] == "callback"
    assert body["sla_started_at"] is None and body["due_at"] is None and body["assignee"] is None


# -- visibility -----------------------------------------------------------------------------


@pytest.fixture
def outside_ticket(other_team, other_requester):
    """A ticket of the other team, by the other requester."""
    kind = TicketTypeFactory(slug="booking", team=other_team)
    return TicketFactory(ticket_type=kind, requester=other_requester)


@pytest.fixture
def integration_ticket(ticket_type, requester, integration):
    from tickets.services.creation import ticket_create

    ticket, _ = ticket_create(by=integration, type_slug="refund", title="Via CRM",
                              requester_username="alice")
    return ticket


VISIBILITY = {
    # who: (sees ticket, sees outside_ticket, sees integration_ticket)
    "requester_api": (True, False, True),
    "other_requester_api": (False, True, False),
    "agent_api": (True, False, True),
    "outside_agent_api": (False, True, False),
    "supervisor_api": (True, False, True),
    "outside_supervisor_api": (False, True, False),
    "integration_api": (False, False, True),
}


@pytest.mark.parametrize("who", list(VISIBILITY))
def test_visibility_matrix(request, who, ticket, outside_ticket, integration_ticket):
    api = request.getfixturevalue(who)
    expected = VISIBILITY[who]
    listed = {t["id"] for t in api.get("/tickets/").json()["results"]}
    for target, visible in zip((ticket, outside_ticket, integration_ticket), expected):
        response = api.get(f"/tickets/{target.pk}/")
        if visible:
            assert response.status_code == 200
            assert target.pk in listed
        else:
            assert_error(response, 404, "not_found")
            assert target.pk not in listed
    assert len(listed) == sum(expected)


# -- filters and ordering -----------------------------------------------------------------


@pytest.fixture
def mixed(ticket_type, requester, agent_user, other_agent_user, team, clock):
    """Tickets of every kind in one team (as the supervisor sees them)."""
    other_type = TicketTypeFactory(slug="complaint", team=team, time_limit_minutes=30)
    t = {
        "pooled": TicketFactory(ticket_type=ticket_type, requester=requester, priority=1),
        "urgent": TicketFactory(ticket_type=other_type, requester=requester, priority=5),
        "mine": TicketFactory(ticket_type=ticket_type, requester=requester, state="assigned",
                              assignee=agent_user, priority=3),
        "otto": TicketFactory(ticket_type=ticket_type, requester=requester, state="assigned",
                              assignee=other_agent_user, priority=3),
        "resolved": TicketFactory(ticket_type=ticket_type, requester=requester,
                                  state="resolved", assignee=agent_user),
    }
    # A breach: the pooled complaint passes its due time.
    from tickets.services.sweeps import breach_sweep

    clock.shift(minutes=31)
    breach_sweep()
    return {k: Ticket.objects.get(pk=v.pk) for k, v in t.items()}


def ids(api, **params) -> list[int]:
    response = api.get("/tickets/", params)
    assert response.status_code == 200, response.content
    return [t["id"] for t in response.json()["results"]]


def test_filters(supervisor_api, mixed):
    m = {k: v.pk for k, v in mixed.items()}
    assert ids(supervisor_api) == sorted(m.values(), reverse=True)
    assert set(ids(supervisor_api, state="pooled")) == {
        v.pk for v in mixed.values() if v.state == "pooled"}
    assert set(ids(supervisor_api, state="resolved")) == {m["resolved"]}
    assert set(ids(supervisor_api, type="complaint")) == {m["urgent"]}
    assert set(ids(supervisor_api, assignee="otto")) == {m["otto"]}
    assert set(ids(supervisor_api, priority="1")) == {
        v.pk for v in mixed.values() if v.priority == 1}
    breached = {v.pk for v in mixed.values() if v.breached_at}
    assert breached and breached != set(m.values())
    assert set(ids(supervisor_api, breached="true")) == breached
    assert set(ids(supervisor_api, breached="false")) == set(m.values()) - breached
    assert ids(supervisor_api, type="no-such") == []
    assert set(ids(supervisor_api, state="assigned", type="refund")) == {m["mine"], m["otto"]}


@pytest.mark.parametrize("params,field", [
    ({"priority": "abc"}, "priority"), ({"priority": "0"}, "priority"),
    ({"state": "open"}, "state"), ({"breached": "yes please"}, "breached"),
    ({"ordering": "title"}, "ordering"), ({"cursor": "nonsense"}, "cursor"),
])
def test_unreadable_filter_is_invalid(supervisor_api, ticket, params, field):
    assert_invalid(supervisor_api.get("/tickets/", params), field)


def test_ordering(supervisor_api, mixed):
    tickets = list(mixed.values())
    by_priority = sorted(tickets, key=lambda t: (-t.priority, -t.pk))
    assert ids(supervisor_api, ordering="-priority") == [t.pk for t in by_priority]
    by_due = sorted(tickets, key=lambda t: (t.due_at, t.pk))
    assert ids(supervisor_api, ordering="due_at") == [t.pk for t in by_due]


# -- cursor pagination --------------------------------------------------------------------


def walk(api, **params) -> list[int]:
    """Every page through ``next``; each page no larger than the page size."""
    seen: list[int] = []
    response = api.get("/tickets/", params)
    pages = 0
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"results", "next"}
        assert len(body["results"]) <= 2
        seen += [t["id"] for t in body["results"]]
        pages += 1
        assert pages < 50
        if body["next"] is None:
            return seen
        assert body["next"].startswith("http")
        response = api.client.get(body["next"])


@pytest.fixture
def many(ticket_type, requester, team, clock):
    """Tickets with equal and distinct priorities and due times, some with no due_at."""
    callback_type = TicketTypeFactory(slug="auto", team=team, callback=True)
    short = TicketTypeFactory(slug="short", team=team, time_limit_minutes=10)
    made = []
    for n in range(9):
        kind = (ticket_type, short, callback_type)[n % 3]
        made.append(TicketFactory(ticket_type=kind, requester=requester,
                                  priority=(n % 4) + 1))
        if n % 2:
            clock.shift(minutes=1)
    return [Ticket.objects.get(pk=t.pk) for t in made]


@pytest.mark.parametrize("ordering", [None, "due_at", "-priority"])
def test_cursor_walk_returns_every_ticket_once_in_order(supervisor_api, requester_api, many,
                                                        small_pages, ordering):
    params = {"ordering": ordering} if ordering else {}
    if ordering == "due_at":
        far = datetime.max.replace(tzinfo=many[0].created_at.tzinfo)
        expected = sorted(many, key=lambda t: (t.due_at or far, t.pk))
    elif ordering == "-priority":
        expected = sorted(many, key=lambda t: (-t.priority, -t.pk))
    else:
        expected = sorted(many, key=lambda t: -t.pk)
    assert any(t.due_at is None for t in many) and any(t.due_at for t in many)
    for api in (supervisor_api, requester_api):
        assert walk(api, **params) == [t.pk for t in expected]


def test_cursor_walk_keeps_filters(supervisor_api, many, small_pages):
    expected = sorted((t.pk for t in many if t.state == "pooled"), reverse=True)
    assert walk(supervisor_api, state="pooled") == expected


def test_empty_list(requester_api):
    assert requester_api.get("/tickets/").json() == {"results": [], "next": None}
