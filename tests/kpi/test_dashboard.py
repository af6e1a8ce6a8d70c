"""The supervisor's KPI dashboard page (agents/kpi_views.py)."""
from __future__ import annotations

import csv
import io
import re

import pytest
from django.urls import reverse

from agents import kpi
from tests.kpi.conftest import EXPECTED

pytestmark = pytest.mark.urls("tests.kpi.urls")


def url(**params) -> str:
    from urllib.parse import urlencode

    return reverse("kpi-dashboard") + ("?" + urlencode(params) if params else "")


CUSTOM = {"period": "custom", "from": "2026-03-02", "to": "2026-03-02"}


def test_anonymous_is_sent_to_sign_in(client, db):
    response = client.get(url())
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("persona", ["requester", "agent_user", "integration"])
def test_other_roles_are_403(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(url()).status_code == 403


def test_supervisor_sees_table_and_charts(client, scripted_day, supervisor):
    client.force_login(supervisor)
    response = client.get(url(**CUSTOM, group_by="agent"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="kpi-table"' in html
    assert [row[0][1] for row in response.context["table"]] == ["agnes", "otto"]
    for chart in ("chart-volume", "chart-in-time", "chart-backlog", "chart-ratings",
                  "chart-per-group"):
        assert f'id="{chart}"' in html
    assert html.count("<svg") >= 5
    # Charts are self-contained: no script fetched from anywhere.
    assert not re.search(r"<script[^>]+src=\"https?:", html)


def test_presets_and_grouping(client, scripted_day, supervisor, clock):
    client.force_login(supervisor)
    for preset, days in (("today", 1), ("7", 7), ("30", 30)):
        response = client.get(url(period=preset, group_by="team"))
        assert response.status_code == 200
        assert len(response.context["period"].days) == days
        assert [row[0][1] for row in response.context["table"]] == ["Refunds"]
    today = client.get(url(period="today", group_by="team")).context["table"][0]
    assert dict(today)["resolved"] == str(EXPECTED["team"]["Refunds"]["resolved"])


def test_sorting_by_a_column(client, scripted_day, supervisor):
    client.force_login(supervisor)
    response = client.get(url(**CUSTOM, sort="resolved", dir="desc"))
    assert [row[0][1] for row in response.context["table"]] == ["otto", "agnes"]
    response = client.get(url(**CUSTOM, sort="resolved", dir="asc"))
    assert [row[0][1] for row in response.context["table"]] == ["agnes", "otto"]
    response = client.get(url(**CUSTOM, sort="bogus"))
    assert [row[0][1] for row in response.context["table"]] == ["agnes", "otto"]


def test_csv_export_from_the_page(client, scripted_day, supervisor):
    client.force_login(supervisor)
    response = client.get(url(**CUSTOM, group_by="type", format="csv"))
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == list(kpi.ROW_KEYS)
    assert [row[0] for row in table[1:]] == ["crm-refund", "refund"]


def test_bad_custom_period_is_400_with_the_message(client, supervisor):
    client.force_login(supervisor)
    response = client.get(url(period="custom", **{"from": "2026-03-05", "to": "2026-03-01"}))
    assert response.status_code == 400
    assert "Must not be after" in response.content.decode()


def test_page_query_count_is_bounded(client, scripted_day, supervisor,
                                     django_assert_max_num_queries):
    client.force_login(supervisor)
    with django_assert_max_num_queries(15):
        client.get(url(**CUSTOM))
