"""List pages run a fixed number of queries, however many rows they show
(STYLE.md 12): the count with a few rows equals the count with many."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tickets.models import Notification

pytestmark = pytest.mark.django_db

# Per request: session, user, the header's unread count (+ the agent row for
# agents); the rest is the page's own: teams/types for filters, the page count
# and the page itself.


def _assert_flat(django_assert_num_queries, client, url, expected, grow, **get_kwargs):
    with django_assert_num_queries(expected):
        response = client.get(url, **get_kwargs)
    assert response.status_code == 200
    grow()
    with django_assert_num_queries(expected):
        response = client.get(url, **get_kwargs)
    assert response.status_code == 200
    return response


def test_portal_list(django_assert_num_queries, login, requester, make_tickets):
    make_tickets(2)
    make_tickets(1, state="assigned")
    client = login(requester)
    response = _assert_flat(django_assert_num_queries, client, reverse("portal:list"), 5,
                            lambda: (make_tickets(4), make_tickets(2, state="resolved")))
    assert response.content.count(b'href="/portal/tickets/') == 9


def test_portal_list_filtered(django_assert_num_queries, login, requester, make_tickets):
    make_tickets(2)
    _assert_flat(django_assert_num_queries, login(requester), reverse("portal:list"), 5,
                 lambda: make_tickets(3), data={"state": "open"})


def test_agent_queue_and_its_partial(django_assert_num_queries, login, agent_user,
                                     make_tickets):
    make_tickets(1, state="assigned", assignee=agent_user)
    client = login(agent_user)
    # Full page: + the session save (the "seen" time: savepoint, update,
    # release) and the agent row for the header; the partial has neither.
    _assert_flat(django_assert_num_queries, client, reverse("work:queue"), 10,
                 lambda: make_tickets(2, state="assigned", assignee=agent_user))
    _assert_flat(django_assert_num_queries, client, reverse("work:queue"), 6,
                 lambda: make_tickets(1, state="assigned", assignee=agent_user),
                 headers={"HX-Request": "true"})


def test_agent_pool(django_assert_num_queries, login, agent_user, make_tickets):
    make_tickets(1)
    _assert_flat(django_assert_num_queries, login(agent_user), reverse("work:pool"), 10,
                 lambda: make_tickets(5))


def test_supervisor_pool_filtered_and_sorted(django_assert_num_queries, login, supervisor,
                                             make_tickets, ticket_type):
    make_tickets(1, state="assigned")
    params = {"state": "open", "ticket_type": str(ticket_type.pk), "sort": "age"}
    response = _assert_flat(django_assert_num_queries, login(supervisor),
                            reverse("supervise:pool"), 8,
                            lambda: (make_tickets(3), make_tickets(2, state="assigned")),
                            data=params)
    assert response.content.count(b'id="pool-row-') == 6


def test_team_board(django_assert_num_queries, login, supervisor, team, make_tickets,
                    agent_user, other_agent_user):
    from tests.factories import AgentUserFactory

    make_tickets(1, state="assigned", assignee=agent_user)

    def grow():
        for _ in range(3):
            AgentUserFactory(teams=[team])
        make_tickets(2, state="assigned", assignee=other_agent_user)

    response = _assert_flat(django_assert_num_queries, login(supervisor),
                            reverse("supervise:board"), 8, grow)
    assert response.content.count(b'id="board-agent-') == 5


def test_notifications(django_assert_num_queries, login, requester, ticket):
    def grow():
        for i in range(5):
            Notification.objects.create(user=requester, ticket=ticket, kind="x", message=str(i))

    grow()
    _assert_flat(django_assert_num_queries, login(requester), reverse("notifications"), 5, grow)


def test_ticket_page(django_assert_num_queries, login, agent_user, assigned_ticket):
    from tickets.services.work import ticket_comment, ticket_note

    client = login(agent_user)
    url = reverse("work:ticket", args=[assigned_ticket.pk])

    def grow():
        for i in range(4):
            ticket_comment(ticket_id=assigned_ticket.pk, by=agent_user, body=f"c{i}")
            ticket_note(ticket_id=assigned_ticket.pk, by=agent_user, body=f"n{i}")

    _assert_flat(django_assert_num_queries, client, url, 9, grow)
