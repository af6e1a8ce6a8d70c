"""The answer to a create is rendered from what the service wrote (no re-read):
it must equal, key for key and in the same order, what a read of the ticket
gives, on either database; and the per-process type cache must follow changes."""
from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import TicketTypeFactory
from tickets.models import TicketType, TicketTypeField
from tickets.services.types import ticket_type_update

pytestmark = pytest.mark.django_db


def _same_as_read(api, created: dict) -> None:
    read = api.get(f"/tickets/{created['id']}/").json()
    read.pop("events", None)
    assert list(created.items()) == list(read.items())
    assert list(created["data"].items()) == list(read["data"].items())


def test_created_answer_equals_a_read(requester_api, team):
    TicketTypeFactory(slug="mixed", team=team, fields=[
        {"name": "zeta_long_name", "kind": "text"},
        {"name": "b", "kind": "number"},
        {"name": "amount", "kind": "number"},
        {"name": "big", "kind": "number"},
        {"name": "when", "kind": "date"},
        {"name": "mail", "kind": "email"},
    ])
    response = requester_api.post("/tickets/", {
        "type": "mixed", "title": "Ünïcode ✓ title", "description": "line\r\nbreak",
        "data": {"zeta_long_name": "z", "b": 1.5, "amount": "12", "big": 1e16,
                 "when": "2026-03-02", "mail": "a@example.com"},
    })
    assert response.status_code == 201, response.content
    _same_as_read(requester_api, response.json())


def test_created_callback_answer_equals_a_read(integration_api, requester, team):
    TicketTypeFactory(slug="cb", team=team, callback=True)
    response = integration_api.post("/tickets/", {"type": "cb", "title": "x",
                                                  "requester": requester.username})
    assert response.status_code == 201, response.content
    assert response.json()["state"] == "callback"
    _same_as_read(integration_api, response.json())


def test_type_changes_reach_the_next_create(requester_api, team):
    TicketTypeFactory(slug="changing", team=team, default_priority=2)
    assert requester_api.post("/tickets/", {"type": "changing", "title": "x"}).json()["priority"] == 2
    # Another process's change: no signal here, only the row's updated_at moves.
    TicketType.objects.filter(slug="changing").update(
        default_priority=5, updated_at=timezone.now() + timezone.timedelta(seconds=1))
    assert requester_api.post("/tickets/", {"type": "changing", "title": "x"}).json()["priority"] == 5
    ticket_type_update(slug="changing", values={"fields": [
        {"name": "ref", "kind": TicketTypeField.Kind.TEXT, "required": True}]})
    response = requester_api.post("/tickets/", {"type": "changing", "title": "x"})
    assert response.status_code == 400 and "data.ref" in response.json()["fields"]
