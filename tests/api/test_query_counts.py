"""List endpoints run a fixed number of queries, whatever the number of rows (STYLE.md 12)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AgentUserFactory, TeamFactory, TicketFactory, TicketTypeFactory
from tickets.models import Notification
from tickets.services import work

pytestmark = pytest.mark.django_db


def queries(api, path, params=None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(path, params)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


def add_tickets(n, ticket_type, requester, agent_user, integration):
    """``n`` tickets with everything a Ticket answer follows: assignees, locks,
    exclusions (hand-overs), integration-made ones."""
    from tickets.services.creation import ticket_create

    for i in range(n):
        worker = AgentUserFactory(teams=[ticket_type.team])
        if i % 3 == 0:
            ticket = TicketFactory(ticket_type=ticket_type, requester=requester,
                                   state="assigned", assignee=worker)
            work.ticket_lock_acquire(ticket_id=ticket.pk, by=worker, minutes=5)
        elif i % 3 == 1:
            ticket = TicketFactory(ticket_type=ticket_type, requester=requester,
                                   state="assigned", assignee=worker)
            work.ticket_handover(ticket_id=ticket.pk, by=worker, reason="r")
        else:
            ticket_create(by=integration, type_slug=ticket_type.slug, title="t",
                          requester_username=requester.username)


@pytest.mark.parametrize("who", ["requester", "agent_user", "supervisor", "integration"])
def test_ticket_list_queries_do_not_grow_with_rows(request, as_, who, ticket_type, requester,
                                                    agent_user, supervisor, integration,
                                                    settings, django_assert_max_num_queries):
    settings.ORDERLY_PAGE_SIZE = 100
    api = as_(request.getfixturevalue(who))
    add_tickets(3, ticket_type, requester, agent_user, integration)
    few = queries(api, "/tickets/")
    add_tickets(27, ticket_type, requester, agent_user, integration)
    many = queries(api, "/tickets/")
    assert few == many
    with django_assert_max_num_queries(5):
        response = api.get("/tickets/", {"ordering": "due_at"})
    assert len(response.json()["results"]) >= 10
    assert queries(api, "/tickets/", {"ordering": "-priority", "type": "refund"}) == many


def test_ticket_detail_queries_do_not_grow_with_events(as_, assigned_ticket, agent_user):
    api = as_(agent_user)
    few = queries(api, f"/tickets/{assigned_ticket.pk}/")
    for n in range(20):
        work.ticket_note(ticket_id=assigned_ticket.pk, by=agent_user, body=str(n))
        work.ticket_comment(ticket_id=assigned_ticket.pk, by=agent_user, body=str(n))
    assert queries(api, f"/tickets/{assigned_ticket.pk}/") == few


def test_notification_list_queries_do_not_grow_with_rows(as_, requester, ticket,
                                                         django_assert_max_num_queries):
    api = as_(requester)
    for n in range(3):
        Notification.objects.create(user=requester, ticket=ticket, kind="k", message=str(n))
    few = queries(api, "/notifications/")
    for n in range(30):
        Notification.objects.create(user=requester, ticket=ticket, kind="k", message=str(n))
    assert queries(api, "/notifications/") == few
    with django_assert_max_num_queries(2):
        api.get("/notifications/", {"unread": "true"})


def test_ticket_type_list_queries_do_not_grow_with_rows(as_, requester, team,
                                                        django_assert_max_num_queries):
    api = as_(requester)
    fields = [{"name": "a", "kind": "text"}, {"name": "b", "kind": "choice",
                                               "choices": ["x", "y"]}]
    for n in range(3):
        TicketTypeFactory(slug=f"few-{n}", team=team, fields=fields)
    few = queries(api, "/ticket-types/")
    for n in range(30):
        TicketTypeFactory(slug=f"many-{n}", team=TeamFactory(name=f"T{n}"), fields=fields)
    assert queries(api, "/ticket-types/") == few
    with django_assert_max_num_queries(3):
        assert len(api.get("/ticket-types/").json()) == 33
