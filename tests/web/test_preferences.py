"""Each user picks the time zone their pages show; storage stays UTC."""
from datetime import datetime, timezone as dt_timezone

import pytest
from django.utils import timezone

from agents.models import User

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/accounts/preferences/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_user_sets_a_zone_and_pages_use_it(client, requester):
    client.force_login(requester)
    assert client.get("/accounts/preferences/").status_code == 200
    response = client.post("/accounts/preferences/", {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    requester.refresh_from_db()
    assert requester.time_zone == "Asia/Tokyo"
    page = client.get("/portal/")
    assert "Times are shown in Asia/Tokyo" in page.content.decode()
    assert timezone.get_current_timezone_name() != "Asia/Tokyo"  # reset after the request


def test_an_unknown_zone_is_refused_and_nothing_changes(client, requester):
    client.force_login(requester)
    response = client.post("/accounts/preferences/", {"time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    requester.refresh_from_db()
    assert requester.time_zone == ""


def test_empty_means_the_desk_zone(client, requester, settings):
    requester.time_zone = "Asia/Tokyo"
    requester.save(update_fields=["time_zone"])
    client.force_login(requester)
    client.post("/accounts/preferences/", {"time_zone": ""})
    requester.refresh_from_db()
    assert requester.time_zone == ""
    assert f"Times are shown in {settings.TIME_ZONE}" in client.get("/portal/").content.decode()


def test_createsuperuser_makes_a_supervisor():
    user = User.objects.create_superuser("boss", "b@x.io", "pw-12345-long")
    assert user.role == User.Role.SUPERVISOR
    assert User.objects.create_superuser("req", "r@x.io", "pw", role="requester").role == "requester"


def test_storage_stays_utc(requester):
    moment = datetime(2026, 1, 1, 12, tzinfo=dt_timezone.utc)
    requester.last_login = moment
    requester.save(update_fields=["last_login"])
    assert User.objects.get(pk=requester.pk).last_login == moment
