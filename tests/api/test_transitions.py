"""Transitions (API.md "Transitions"): effects, answers and the order of the checks."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.conftest import assert_error, assert_invalid
from tests.api.test_tickets import EVENT_KEYS, INTERNAL_KEYS, TICKET_KEYS, iso
from tests.factories import TicketFactory, TicketTypeFactory
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def url(ticket, action: str) -> str:
    return f"/tickets/{ticket.pk}/{action}/"


# -- lock -----------------------------------------------------------------------------------


def test_lock_and_relock(agent_api, assigned_ticket, clock):
    response = agent_api.post(url(assigned_ticket, "lock"), {"minutes": 20})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == INTERNAL_KEYS
    assert iso(body["locked_until"]) == clock.now() + timedelta(minutes=20)
    assert body["locked_by"] == "agnes"
    # The assignee may lock again: the new lock replaces the old one.
    clock.shift(minutes=5)
    body = agent_api.post(url(assigned_ticket, "lock"), {"minutes": 5}).json()
    assert iso(body["locked_until"]) == clock.now() + timedelta(minutes=5)


def test_lock_of_exactly_the_time_left_is_taken(agent_api, assigned_ticket, clock):
    clock.shift(minutes=15)  # 45 minutes left of 60
    assert agent_api.post(url(assigned_ticket, "lock"), {"minutes": 45}).status_code == 200


def test_lock_longer_than_the_time_left_is_refused_with_max_minutes(agent_api, assigned_ticket,
                                                                    clock):
    clock.shift(minutes=15, seconds=30)  # 44.5 minutes left
    body = assert_error(agent_api.post(url(assigned_ticket, "lock"), {"minutes": 45}), 409,
                        "lock_exceeds_time_left")
    assert body["max_minutes"] == 44
    assert Ticket.objects.get(pk=assigned_ticket.pk).locked_until is None
    clock.shift(minutes=60)
    body = assert_error(agent_api.post(url(assigned_ticket, "lock"), {"minutes": 1}), 409,
                        "lock_exceeds_time_left")
    assert body["max_minutes"] == 0


def test_lock_above_the_types_cap_is_refused(agent_api, agent_user, requester, team):
    capped = TicketTypeFactory(slug="capped", team=team, max_lock_minutes=10)
    ticket = TicketFactory(ticket_type=capped, requester=requester, state="assigned",
                           assignee=agent_user)
    body = assert_error(agent_api.post(url(ticket, "lock"), {"minutes": 11}), 409,
                        "lock_exceeds_time_left")
    assert body["max_minutes"] == 10
    assert agent_api.post(url(ticket, "lock"), {"minutes": 10}).status_code == 200


@pytest.mark.parametrize("minutes", [0, -3, "10", 2.5, None, True, [10]])
def test_lock_minutes_must_be_a_whole_number_from_1(agent_api, assigned_ticket, minutes):
    assert_invalid(agent_api.post(url(assigned_ticket, "lock"), {"minutes": minutes}), "minutes")


# -- unlock ---------------------------------------------------------------------------------


def test_unlock_by_assignee_and_by_supervisor(agent_api, supervisor_api, assigned_ticket):
    agent_api.post(url(assigned_ticket, "lock"), {"minutes": 10})
    body = agent_api.post(url(assigned_ticket, "unlock")).json()
    assert body["locked_until"] is None and body["locked_by"] is None
    agent_api.post(url(assigned_ticket, "lock"), {"minutes": 10})
    response = supervisor_api.post(url(assigned_ticket, "unlock"), {})
    assert response.status_code == 200 and response.json()["locked_until"] is None


def test_unlock_without_a_lock_is_invalid_transition(agent_api, supervisor_api, assigned_ticket,
                                                     clock):
    assert_error(agent_api.post(url(assigned_ticket, "unlock")), 409, "invalid_transition")
    agent_api.post(url(assigned_ticket, "lock"), {"minutes": 5})
    clock.shift(minutes=6)  # the lock ran out by itself
    assert_error(supervisor_api.post(url(assigned_ticket, "unlock")), 409, "invalid_transition")


# -- hand-over, resolve, feedback -----------------------------------------------------------


def test_handover(agent_api, assigned_ticket):
    body = agent_api.post(url(assigned_ticket, "handover"), {"reason": "Not my field"}).json()
    assert body["state"] == "pooled" and body["assignee"] is None
    assert body["priority"] == 3 and body["handover_count"] == 1
    assert body["excluded_agents"] == ["agnes"]


@pytest.mark.parametrize("reason", [None, "", "  ", "r" * 1001])
def test_handover_needs_a_reason(agent_api, assigned_ticket, reason):
    body = {} if reason is None else {"reason": reason}
    assert_invalid(agent_api.post(url(assigned_ticket, "handover"), body), "reason")


def test_resolve_then_accept(agent_api, requester_api, assigned_ticket):
    body = agent_api.post(url(assigned_ticket, "resolve"), {"result": "Refunded"}).json()
    assert body["state"] == "resolved" and body["result"] == "Refunded"
    assert body["in_time"] is True and iso(body["resolved_at"])
    assert body["excluded_agents"] == []
    events = agent_api.get(f"/tickets/{assigned_ticket.pk}/").json()["events"]
    assert [e for e in events if e["kind"] == "resolved"][0]["details"]["in_time"] is True
    body = requester_api.post(url(assigned_ticket, "feedback"),
                              {"accepted": True, "rating": 5}).json()
    assert set(body) == TICKET_KEYS
    assert body["state"] == "closed" and body["rating"] == 5 and iso(body["closed_at"])


def test_reject_reopens_with_priority_up(requester_api, agent_user, requester, ticket_type,
                                         clock):
    ticket = TicketFactory(ticket_type=ticket_type, requester=requester, state="resolved",
                           assignee=agent_user)
    clock.shift(minutes=5)
    body = requester_api.post(url(ticket, "feedback"),
                              {"accepted": False, "comment": "Still broken"}).json()
    assert body["state"] == "pooled" and body["priority"] == 3 and body["reopen_count"] == 1
    assert body["in_time"] is None and body["result"] is None
    assert iso(body["due_at"]) == clock.now() + timedelta(minutes=60)
    # Once per resolution.
    assert_error(requester_api.post(url(ticket, "feedback"), {"accepted": True}), 409,
                 "invalid_transition")


def test_feedback_validation(requester_api, agent_user, requester, ticket_type):
    ticket = TicketFactory(ticket_type=ticket_type, requester=requester, state="resolved",
                           assignee=agent_user)
    assert_invalid(requester_api.post(url(ticket, "feedback"), {"accepted": False}), "comment")
    assert_invalid(requester_api.post(url(ticket, "feedback"), {}), "accepted")
    assert_invalid(requester_api.post(url(ticket, "feedback"), {"accepted": "yes"}), "accepted")
    for rating in (0, 6, "5", 4.5):
        assert_invalid(requester_api.post(url(ticket, "feedback"),
                                          {"accepted": True, "rating": rating}), "rating")
    assert_invalid(requester_api.post(url(ticket, "feedback"),
                                      {"accepted": True, "comment": "c" * 5001}), "comment")
    assert Ticket.objects.get(pk=ticket.pk).state == "resolved"


def test_feedback_needs_a_resolved_ticket(requester_api, ticket):
    assert_error(requester_api.post(url(ticket, "feedback"), {"accepted": True}), 409,
                 "invalid_transition")


# -- cancel ---------------------------------------------------------------------------------


def test_requester_cancels_with_or_without_reason(requester_api, ticket, ticket_type, requester):
    body = requester_api.post(url(ticket, "cancel"), {}).json()
    assert body["state"] == "cancelled"
    second = TicketFactory(ticket_type=ticket_type, requester=requester)
    response = requester_api.post(url(second, "cancel"), {"reason": "Changed my mind"})
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    # No second cancel.
    assert_error(requester_api.post(url(second, "cancel")), 409, "invalid_transition")


def test_supervisor_cancels_an_assigned_ticket(supervisor_api, assigned_ticket):
    body = supervisor_api.post(url(assigned_ticket, "cancel"), {"reason": "Duplicate"}).json()
    assert body["state"] == "cancelled"


def test_cancel_reason_limit(requester_api, ticket):
    assert_invalid(requester_api.post(url(ticket, "cancel"), {"reason": "r" * 1001}), "reason")
    assert requester_api.post(url(ticket, "cancel"), {"reason": "r" * 1000}).status_code == 200


def test_cancel_needs_an_open_ticket(requester_api, agent_user, requester, ticket_type, team):
    resolved = TicketFactory(ticket_type=ticket_type, requester=requester, state="resolved",
                             assignee=agent_user)
    assert_error(requester_api.post(url(resolved, "cancel")), 409, "invalid_transition")
    callback = TicketFactory(ticket_type=TicketTypeFactory(slug="auto", team=team, callback=True),
                             requester=requester)
    assert requester_api.post(url(callback, "cancel")).json()["state"] == "cancelled"


# -- assign ---------------------------------------------------------------------------------


def test_supervisor_assigns_and_reassigns(supervisor_api, ticket, other_agent_user, agent_user):
    body = supervisor_api.post(url(ticket, "assign"), {"agent": "agnes"}).json()
    assert body["state"] == "assigned" and body["assignee"] == "agnes"
    body = supervisor_api.post(url(ticket, "assign"), {"agent": "otto", "force": False}).json()
    assert body["assignee"] == "otto"


def test_assign_over_a_lock_needs_force(supervisor_api, agent_api, assigned_ticket,
                                        other_agent_user):
    agent_api.post(url(assigned_ticket, "lock"), {"minutes": 10})
    assert_error(supervisor_api.post(url(assigned_ticket, "assign"), {"agent": "otto"}), 409,
                 "locked_by_other")
    body = supervisor_api.post(url(assigned_ticket, "assign"),
                               {"agent": "otto", "force": True}).json()
    assert body["assignee"] == "otto" and body["locked_until"] is None


def test_assign_validation(supervisor_api, ticket, outside_agent_user, requester):
    assert_invalid(supervisor_api.post(url(ticket, "assign"), {"agent": "nobody"}), "agent")
    assert_invalid(supervisor_api.post(url(ticket, "assign"), {"agent": "olga"}), "agent")
    assert_invalid(supervisor_api.post(url(ticket, "assign"), {"agent": "alice"}), "agent")
    assert_invalid(supervisor_api.post(url(ticket, "assign"), {}), "agent")
    assert_invalid(supervisor_api.post(url(ticket, "assign"), {"agent": "olga", "force": "no"}),
                   "force")


# -- notes and comments ---------------------------------------------------------------------


def test_note_answers_201_event(agent_api, supervisor_api, other_agent_api, assigned_ticket):
    for api in (agent_api, other_agent_api, supervisor_api):
        response = api.post(url(assigned_ticket, "notes"), {"body": "Internal"})
        assert response.status_code == 201
        event = response.json()
        assert set(event) == EVENT_KEYS
        assert event["kind"] == "note" and event["details"]["body"] == "Internal"


def test_comment_answers_201_event_and_notifies_the_other_side(requester_api, agent_api,
                                                                assigned_ticket):
    response = agent_api.post(url(assigned_ticket, "comments"), {"body": "Any receipt?"})
    assert response.status_code == 201
    event = response.json()
    assert set(event) == EVENT_KEYS and event["kind"] == "comment" and event["actor"] == "agnes"
    inbox = requester_api.get("/notifications/").json()["results"]
    assert inbox[0]["kind"] == "comment" and inbox[0]["ticket"] == assigned_ticket.pk
    response = requester_api.post(url(assigned_ticket, "comments"), {"body": "Attached."})
    assert response.status_code == 201
    detail = requester_api.get(f"/tickets/{assigned_ticket.pk}/").json()
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.count("comment") == 2


@pytest.mark.parametrize("body", [None, "", " ", "b" * 10_001, 5, ["x"]])
def test_comment_and_note_body_limits(requester_api, agent_api, assigned_ticket, body):
    payload = {} if body is None else {"body": body}
    assert_invalid(requester_api.post(url(assigned_ticket, "comments"), payload), "body")
    assert_invalid(agent_api.post(url(assigned_ticket, "notes"), payload), "body")


def test_comments_need_an_open_ticket(requester_api, agent_user, requester, ticket_type):
    resolved = TicketFactory(ticket_type=ticket_type, requester=requester, state="resolved",
                             assignee=agent_user)
    assert_error(requester_api.post(url(resolved, "comments"), {"body": "hi"}), 409,
                 "invalid_transition")


# -- the order of the checks: role, visibility, assignee, state -----------------------------

AGENT_ONLY = [("lock", {"minutes": 5}), ("handover", {"reason": "r"}),
              ("resolve", {"result": "r"})]
ASSIGNEE_ACTIONS = AGENT_ONLY + [("unlock", {})]


@pytest.mark.parametrize("action,body", AGENT_ONLY + [
    ("unlock", {}), ("assign", {"agent": "agnes"}), ("notes", {"body": "b"})])
def test_requester_on_own_ticket_gets_403_for_staff_actions(requester_api, assigned_ticket,
                                                            action, body):
    assert_error(requester_api.post(url(assigned_ticket, action), body), 403, "permission_denied")
    # Even with a body that would not pass.
    assert_error(requester_api.post(url(assigned_ticket, action), {"minutes": "x"}), 403,
                 "permission_denied")


@pytest.mark.parametrize("who,action,body", [
    ("supervisor_api", "lock", {"minutes": 5}), ("supervisor_api", "handover", {"reason": "r"}),
    ("supervisor_api", "resolve", {"result": "r"}), ("agent_api", "assign", {"agent": "otto"}),
    ("agent_api", "cancel", {}), ("agent_api", "feedback", {"accepted": True}),
    ("supervisor_api", "feedback", {"accepted": True}), ("integration_api", "cancel", {}),
    ("integration_api", "comments", {"body": "b"}), ("integration_api", "notes", {"body": "b"}),
    ("outside_agent_api", "cancel", {}),
])
def test_role_that_may_never_act_gets_403(request, assigned_ticket, other_agent_user, who,
                                          action, body):
    api = request.getfixturevalue(who)
    assert_error(api.post(url(assigned_ticket, action), body), 403, "permission_denied")


@pytest.mark.parametrize("action,body", ASSIGNEE_ACTIONS + [
    ("notes", {"body": "b"}), ("comments", {"body": "b"})])
def test_outside_team_agent_gets_404(outside_agent_api, assigned_ticket, action, body):
    assert_error(outside_agent_api.post(url(assigned_ticket, action), body), 404, "not_found")
    assert_error(outside_agent_api.post(url(assigned_ticket, action), {"minutes": 0}), 404,
                 "not_found")


@pytest.mark.parametrize("action,body", [
    ("cancel", {}), ("comments", {"body": "b"}), ("feedback", {"accepted": True})])
def test_other_requester_gets_404(other_requester_api, assigned_ticket, action, body):
    assert_error(other_requester_api.post(url(assigned_ticket, action), body), 404, "not_found")


@pytest.mark.parametrize("who,action,body", [
    ("outside_supervisor_api", "assign", {"agent": "agnes"}),
    ("outside_supervisor_api", "unlock", {}), ("outside_supervisor_api", "cancel", {}),
    ("outside_supervisor_api", "notes", {"body": "b"}),
])
def test_outside_supervisor_gets_404(request, ticket, agent_user, who, action, body):
    api = request.getfixturevalue(who)
    assert_error(api.post(url(ticket, action), body), 404, "not_found")


@pytest.mark.parametrize("state", ["pooled", "assigned", "resolved", "closed", "cancelled"])
@pytest.mark.parametrize("action,body", ASSIGNEE_ACTIONS)
def test_not_assignee_whatever_the_state(other_agent_api, agent_user, requester, ticket_type,
                                         state, action, body):
    assignee = agent_user if state in ("assigned", "resolved", "closed") else None
    ticket = TicketFactory(ticket_type=ticket_type, requester=requester, state=state,
                           assignee=assignee)
    assert_error(other_agent_api.post(url(ticket, action), body), 409, "not_assignee")
    # A body that would not pass changes nothing in the answer.
    assert_error(other_agent_api.post(url(ticket, action), {"minutes": "x"}), 409,
                 "not_assignee")


@pytest.mark.parametrize("state", ["resolved", "closed"])
@pytest.mark.parametrize("action,body", AGENT_ONLY)
def test_assignee_in_the_wrong_state_gets_invalid_transition(agent_api, agent_user, requester,
                                                             ticket_type, state, action, body):
    ticket = TicketFactory(ticket_type=ticket_type, requester=requester, state=state,
                           assignee=agent_user)
    assert_error(agent_api.post(url(ticket, action), body), 409, "invalid_transition")
    assert_error(agent_api.post(url(ticket, action), {}), 409, "invalid_transition")


def test_supervisor_assign_on_a_closed_ticket_is_invalid_transition(supervisor_api, agent_user,
                                                                    requester, ticket_type):
    ticket = TicketFactory(ticket_type=ticket_type, requester=requester, state="closed",
                           assignee=agent_user)
    assert_error(supervisor_api.post(url(ticket, "assign"), {"agent": "agnes"}), 409,
                 "invalid_transition")
    assert_error(supervisor_api.post(url(ticket, "assign"), {"force": "x"}), 409,
                 "invalid_transition")


def test_unknown_ticket_is_404_for_every_action(agent_api, requester_api, supervisor_api):
    for action, body in ASSIGNEE_ACTIONS + [("notes", {"body": "b"})]:
        assert_error(agent_api.post(f"/tickets/424242/{action}/", body), 404, "not_found")
    for action in ("cancel", "feedback", "comments"):
        assert_error(requester_api.post(f"/tickets/424242/{action}/", {}), 404, "not_found")
    assert_error(supervisor_api.post("/tickets/424242/assign/", {"agent": "x"}), 404,
                 "not_found")
