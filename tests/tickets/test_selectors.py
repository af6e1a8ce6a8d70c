"""Reads: who sees which ticket and event (DESIGN.md 1.11, 3; STYLE.md 12)."""
from __future__ import annotations

import pytest

from tickets.errors import NotFound
from tickets.models import TicketEvent
from tickets.selectors import (
    notification_list,
    ticket_events_for_user,
    ticket_get_for_user,
    ticket_is_visible,
    ticket_list_qs,
)
from tickets.services.creation import ticket_create
from tickets.services.work import ticket_comment, ticket_note, ticket_resolve
from tests.factories import SupervisorFactory, TicketFactory, TicketTypeFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


@pytest.fixture
def world(ticket_type, other_team, requester, other_requester, integration):
    """Tickets: alice's in team, bob's in team, alice's in the other team, one by the integration."""
    other_type = TicketTypeFactory(team=other_team)
    by_crm, _ = ticket_create(by=integration, type_slug=ticket_type.slug, title="crm",
                              requester_username=other_requester.username)
    return {
        "alice_team": TicketFactory(ticket_type=ticket_type, requester=requester),
        "bob_team": TicketFactory(ticket_type=ticket_type, requester=other_requester),
        "alice_other": TicketFactory(ticket_type=other_type, requester=requester),
        "crm": by_crm,
    }


VISIBLE = {
    "requester": {"alice_team", "alice_other"},
    "other_requester": {"bob_team", "crm"},
    "agent_user": {"alice_team", "bob_team", "crm"},
    "outside_agent_user": {"alice_other"},
    "supervisor": {"alice_team", "bob_team", "crm"},
    "outside_supervisor": {"alice_other"},
    "integration": {"crm"},
}


@pytest.mark.parametrize("persona", sorted(VISIBLE))
def test_each_role_sees_exactly_its_tickets(request, persona, world):
    user = request.getfixturevalue(persona)
    names = {name for name, t in world.items() if t.pk in
             set(ticket_list_qs(user=user).values_list("pk", flat=True))}
    assert names == VISIBLE[persona]
    for name, ticket in world.items():
        assert ticket_is_visible(user=user, ticket=ticket) is (name in VISIBLE[persona])
        if name in VISIBLE[persona]:
            assert ticket_get_for_user(user=user, ticket_id=ticket.pk).pk == ticket.pk
        else:
            with pytest.raises(NotFound):
                ticket_get_for_user(user=user, ticket_id=ticket.pk)


def test_superuser_supervisor_sees_everything(world):
    boss = SupervisorFactory(is_superuser=True)
    assert ticket_list_qs(user=boss).count() == len(world)


@pytest.mark.parametrize("ticket_id", ["abc", None, 10**9])
def test_get_for_user_with_bad_id_is_not_found(requester, ticket_id):
    with pytest.raises(NotFound):
        ticket_get_for_user(user=requester, ticket_id=ticket_id)


# -- the timeline: notes never reach the requester --------------------------------------------------


@pytest.fixture
def discussed(assigned_ticket, requester, agent_user, supervisor):
    ticket_comment(ticket_id=assigned_ticket.pk, by=requester, body="Any news?")
    ticket_note(ticket_id=assigned_ticket.pk, by=agent_user, body="INTERNAL: VIP")
    ticket_comment(ticket_id=assigned_ticket.pk, by=agent_user, body="Soon.")
    ticket_note(ticket_id=assigned_ticket.pk, by=supervisor, body="INTERNAL: watch")
    ticket_resolve(ticket_id=assigned_ticket.pk, by=agent_user, result="Done")
    return assigned_ticket


def test_requester_never_sees_notes(discussed, requester):
    events = list(ticket_events_for_user(user=requester, ticket=discussed))
    assert TicketEvent.Kind.NOTE not in {e.kind for e in events}
    assert [e.details["body"] for e in events if e.kind == "comment"] == ["Any news?", "Soon."]
    assert all("INTERNAL" not in str(e.details) for e in events)


def test_integration_never_sees_notes(world, integration, agent_user):
    ticket = world["crm"]
    ticket_note(ticket_id=ticket.pk, by=agent_user, body="INTERNAL")
    kinds = {e.kind for e in ticket_events_for_user(user=integration, ticket=ticket)}
    assert "note" not in kinds and "created" in kinds


@pytest.mark.parametrize("persona", ["agent_user", "other_agent_user", "supervisor"])
def test_staff_see_notes_and_comments_in_order(request, persona, discussed):
    events = list(ticket_events_for_user(user=request.getfixturevalue(persona), ticket=discussed))
    assert [e.details["body"] for e in events if e.kind in ("comment", "note")] == [
        "Any news?", "INTERNAL: VIP", "Soon.", "INTERNAL: watch"
    ]
    assert [e.id for e in events] == sorted(e.id for e in events)


def test_notes_reach_no_inbox(discussed, requester):
    assert all("INTERNAL" not in n.message for n in notification_list(user=requester))


def test_notification_list_filters_unread(discussed, requester):
    everything = list(notification_list(user=requester))
    assert len(everything) == 2  # the agent's comment and the result
    first = everything[-1]
    first.read = True
    first.save()
    assert list(notification_list(user=requester, unread=True)) == everything[:1]
    assert list(notification_list(user=requester, unread=False)) == [first]


# -- query shape ----------------------------------------------------------------------------------------


def _touch(tickets):
    for t in tickets:
        (t.ticket_type.slug, t.team.name, t.requester.username,
         getattr(t.assignee, "username", None), getattr(t.locked_by, "username", None))
        if hasattr(t, "_prefetched_objects_cache"):
            list(t.excluded_agents.all())


@pytest.mark.parametrize("persona", ["requester", "agent_user", "supervisor"])
def test_ticket_list_query_count_does_not_grow_with_tickets(request, persona, ticket_type,
                                                            requester, agent_user,
                                                            django_assert_max_num_queries):
    user = request.getfixturevalue(persona)
    for _ in range(2):
        TicketFactory(ticket_type=ticket_type, requester=requester, state="assigned",
                      assignee=agent_user)
    list(ticket_list_qs(user=user))                       # warm the user's team cache
    with django_assert_max_num_queries(2):
        _touch(list(ticket_list_qs(user=user)))
    for _ in range(3):
        TicketFactory(ticket_type=ticket_type, requester=requester)
    with django_assert_max_num_queries(2):
        _touch(list(ticket_list_qs(user=user)))
