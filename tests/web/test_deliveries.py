"""The supervisor's deliveries page: their teams' deliveries only, retry of a
failed one, a fixed number of queries."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tickets.delivery_models import Delivery

pytestmark = pytest.mark.django_db


def _delivery(ticket, status="failed", **kwargs):
    return Delivery.objects.create(ticket=ticket, channel="webhook", recipient="https://x.example/h",
                                   event="resolved", status=status, attempts=4,
                                   last_error="HTTP 500", **kwargs)


def test_supervisor_sees_their_teams_deliveries_and_retries_a_failed_one(
        login, supervisor, outside_supervisor, ticket):
    failed = _delivery(ticket)
    sue = login(supervisor)
    page = sue.get(reverse("supervise:deliveries"))
    assert f'id="delivery-{failed.pk}"'.encode() in page.content and b"Retry" in page.content
    assert f'id="delivery-{failed.pk}"'.encode() not in login(outside_supervisor).get(
        reverse("supervise:deliveries")).content
    response = sue.post(reverse("supervise:delivery_retry", args=[failed.pk]), follow=True)
    assert b"queued to be sent again" in response.content
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.attempts == 0


def test_retry_of_a_sent_delivery_is_refused_with_a_message(login, supervisor, ticket):
    sent = _delivery(ticket, status="sent")
    response = login(supervisor).post(reverse("supervise:delivery_retry", args=[sent.pk]),
                                      follow=True)
    assert b"Only a failed delivery can be retried" in response.content


def test_retry_of_another_teams_delivery_is_404_and_agents_403(login, outside_supervisor,
                                                              agent_user, ticket):
    failed = _delivery(ticket)
    url = reverse("supervise:delivery_retry", args=[failed.pk])
    assert login(outside_supervisor).post(url).status_code == 404
    assert login(agent_user).post(url).status_code == 403
    failed.refresh_from_db()
    assert failed.status == "failed"


def test_deliveries_page_query_count(django_assert_num_queries, login, supervisor, make_tickets):
    tickets = make_tickets(3)
    for t in tickets[:1]:
        _delivery(t)
    client = login(supervisor)
    with django_assert_num_queries(6):
        assert client.get(reverse("supervise:deliveries"), {"status": "failed"}).status_code == 200
    for t in tickets:
        _delivery(t)
        _delivery(t, status="sent")
    with django_assert_num_queries(6):
        response = client.get(reverse("supervise:deliveries"))
    assert response.content.count(b'id="delivery-') == 7
