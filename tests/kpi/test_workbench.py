"""An agent's own KPIs on the workbench (/work/kpi/): agents only, own row only."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.kpi.conftest import EXPECTED

URL = reverse("work:kpi")
CUSTOM = {"period": "custom", "from": "2026-03-02", "to": "2026-03-02"}


def metrics(response) -> dict[str, str]:
    html = response.content.decode()
    return dict(re.findall(r'data-kpi="(\w+)">\s*<dt[^>]*>[^<]*</dt>\s*<dd[^>]*>([^<]*)</dd>',
                           html))


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


@pytest.mark.parametrize("persona", ["requester", "supervisor"])
def test_other_roles_get_403(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(URL).status_code == 403


def test_agent_sees_exactly_their_own_row(client, scripted_day, agent_user):
    client.force_login(agent_user)  # agnes
    response = client.get(URL, CUSTOM)
    assert response.status_code == 200
    mine = EXPECTED["agent"]["agnes"]
    shown = metrics(response)
    assert shown == {
        "assigned": "4", "resolved": "1", "in_time_rate": "100%", "breaches": "1",
        "handovers": "1", "reopen_rate": "0%", "mean_resolve_minutes": "32.0",
        "p90_resolve_minutes": "32.0", "mean_handle_minutes": "31.0", "mean_rating": "5.0",
        "satisfied_rate": "100%", "open": "0", "overdue": "0",
    }
    assert shown["assigned"] == str(mine["assigned"])
    assert "otto" not in response.content.decode().split('id="kpi-mine"')[1]


def test_other_agent_sees_theirs(client, scripted_day, other_agent_user):
    client.force_login(other_agent_user)  # otto
    shown = metrics(client.get(URL, {"period": "today"}))
    otto = EXPECTED["agent"]["otto"]
    assert (shown["assigned"], shown["resolved"], shown["open"], shown["overdue"]) == (
        str(otto["assigned"]), str(otto["resolved"]), "1", "1")


def test_agent_without_events_gets_zeros(client, clock, outside_agent_user):
    client.force_login(outside_agent_user)
    shown = metrics(client.get(URL))
    assert shown["assigned"] == "0" and shown["mean_rating"] == "—"


def test_bad_dates_are_400(client, clock, agent_user):
    client.force_login(agent_user)
    response = client.get(URL, {"period": "custom", "from": "2026-03-05", "to": "2026-03-01"})
    assert response.status_code == 400
    assert "Must not be after" in response.content.decode()


def test_workbench_nav_links_to_it(client, clock, agent_user):
    client.force_login(agent_user)
    assert f'href="{URL}"' in client.get(reverse("work:queue")).content.decode()


def test_query_count_is_bounded(client, scripted_day, agent_user, django_assert_max_num_queries):
    client.force_login(agent_user)
    with django_assert_max_num_queries(12):
        client.get(URL, CUSTOM)
