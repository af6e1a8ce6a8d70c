"""Fixtures of the web-page tests, on top of tests/conftest.py's personas."""
from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import TicketFactory, TicketTypeFactory


@pytest.fixture(autouse=True)
def _no_broker(sent_tasks):
    """Pages call services that nudge Celery after commit: record, never send."""
    return sent_tasks


@pytest.fixture
def form_type(team):
    """A type with one field of every kind."""
    return TicketTypeFactory(
        slug="refund-form", name="Refund request", team=team, time_limit_minutes=90,
        fields=[
            {"name": "order_ref", "label": "Order reference", "kind": "text", "required": True,
             "max_length": 20},
            {"name": "amount", "label": "Amount", "kind": "number", "required": True},
            {"name": "bought_on", "label": "Bought on", "kind": "date"},
            {"name": "reason", "label": "Reason", "kind": "choice", "required": True,
             "choices": ["damaged", "late", "other"]},
            {"name": "contact", "label": "Contact email", "kind": "email"},
        ],
    )


@pytest.fixture
def login():
    """A client signed in as the given user (None: anonymous)."""

    def make(user) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def personas(requester, other_requester, agent_user, outside_agent_user, supervisor,
             outside_supervisor):
    return {
        "anonymous": None,
        "requester": requester,
        "other_requester": other_requester,
        "agent": agent_user,
        "outside_agent": outside_agent_user,
        "supervisor": supervisor,
        "outside_supervisor": outside_supervisor,
    }


@pytest.fixture
def make_tickets(ticket_type, requester):
    def make(n: int, **kwargs):
        kwargs.setdefault("ticket_type", ticket_type)
        kwargs.setdefault("requester", requester)
        return [TicketFactory(**kwargs) for _ in range(n)]

    return make
