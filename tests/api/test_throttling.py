"""Sign-in and ticket creation are rate limited: 429 ``throttled``, nothing stored."""
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_counters():
    cache.clear()
    yield
    cache.clear()


def test_sign_in_is_refused_past_the_rate(settings, requester):
    settings.ORDERLY_THROTTLE_SIGNIN = "3/minute"
    client = APIClient()
    body = {"username": requester.username, "password": "wrong"}
    codes = [client.post("/api/v1/auth/token/", body, format="json").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    answer = client.post("/api/v1/auth/token/", body, format="json").json()
    assert answer["code"] == "throttled"
    assert isinstance(answer["detail"], str)


def test_ticket_creation_is_refused_past_the_rate_and_stores_nothing(settings, requester,
                                                                     ticket_type):
    settings.ORDERLY_THROTTLE_CREATE = "2/minute"
    client = APIClient()
    client.force_authenticate(requester)
    body = {"type": ticket_type.slug, "title": "t", "data": _valid_data(ticket_type)}
    codes = [client.post("/api/v1/tickets/", body, format="json").status_code for _ in range(3)]
    assert codes == [201, 201, 429]
    assert Ticket.objects.count() == 2
    # Reading is not creation: lists stay available.
    assert client.get("/api/v1/tickets/").status_code == 200


def test_off_means_no_limit(settings, requester):
    settings.ORDERLY_THROTTLE_SIGNIN = "off"
    client = APIClient()
    body = {"username": requester.username, "password": "wrong"}
    codes = {client.post("/api/v1/auth/token/", body, format="json").status_code
             for _ in range(10)}
    assert codes == {400}


def _valid_data(ticket_type):
    data = {}
    for field in ticket_type.fields.all():
        if field.required:
            data[field.name] = {"number": 1, "date": "2026-01-01", "email": "a@b.io",
                                "choice": (field.choices or [""])[0]}.get(field.kind, "x")
    return data
