"""GET /api/v1/kpi/ (API.md "KPIs"), through a test-local URLconf until the
project's API URLs include it."""
from __future__ import annotations

import csv
import io

import pytest
from rest_framework.test import APIClient

from agents import kpi
from tests.kpi.conftest import EXPECTED

pytestmark = pytest.mark.urls("tests.kpi.urls")
URL = "/api/v1/kpi/"
DAY = {"from": "2026-03-02", "to": "2026-03-02"}


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.mark.parametrize("group_by", kpi.GROUPINGS)
def test_supervisor_gets_the_rows(scripted_day, supervisor, group_by):
    response = client_for(supervisor).get(URL, {**DAY, "group_by": group_by})
    assert response.status_code == 200
    assert response.json() == {"rows": list(EXPECTED[group_by].values())}


def test_anonymous_is_401(db):
    response = client_for().get(URL, DAY)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("persona", ["requester", "agent_user", "integration"])
def test_other_roles_are_403(request, persona):
    user = request.getfixturevalue(persona)
    response = client_for(user).get(URL, DAY)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_token_authentication_works(scripted_day, supervisor):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=supervisor)
    response = APIClient().get(URL, DAY, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_supervisor_sees_only_their_teams(scripted_day, outside_supervisor, outside_agent_user):
    for group_by, keys in [("agent", ["olga"]), ("team", ["Bookings"]), ("type", [])]:
        response = client_for(outside_supervisor).get(URL, {**DAY, "group_by": group_by})
        assert response.status_code == 200
        assert [row["key"] for row in response.json()["rows"]] == keys
    rows = client_for(outside_supervisor).get(URL, DAY).json()["rows"]
    assert rows[0]["assigned"] == 0 and rows[0]["open"] == 0


@pytest.mark.parametrize("query, field", [
    ({"group_by": "queue"}, "group_by"),
    ({"from": "2026-02-30"}, "from"),
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-3-2"}, "to"),
    ({"from": "2026-03-03", "to": "2026-03-02"}, "from"),
    ({"from": "2024-01-01", "to": "2026-03-02"}, "from"),
    ({"format": "xml"}, "format"),
])
def test_bad_query_is_400_with_fields(supervisor, query, field):
    response = client_for(supervisor).get(URL, query)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["fields"]


def test_several_bad_parameters_are_reported_together(supervisor):
    body = client_for(supervisor).get(URL, {"group_by": "x", "from": "x"}).json()
    assert set(body["fields"]) == {"group_by", "from"}


def test_defaults_are_agent_rows_of_the_last_30_days(scripted_day, supervisor):
    response = client_for(supervisor).get(URL)
    assert response.status_code == 200
    assert response.json()["rows"] == list(EXPECTED["agent"].values())


@pytest.mark.parametrize("group_by", kpi.GROUPINGS)
def test_csv_equals_json(scripted_day, supervisor, group_by):
    client = client_for(supervisor)
    as_json = client.get(URL, {**DAY, "group_by": group_by}).json()["rows"]
    response = client.get(URL, {**DAY, "group_by": group_by, "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == list(kpi.ROW_KEYS)
    assert table[1:] == [["" if row[k] is None else str(row[k]) for k in kpi.ROW_KEYS]
                         for row in as_json]


def test_csv_for_others_is_still_403(requester):
    response = client_for(requester).get(URL, {"format": "csv"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_query_count_is_independent_of_the_number_of_tickets(
        clock, supervisor, ticket_type, team, requester, agent_user, other_agent_user,
        django_assert_max_num_queries):
    from tests.kpi.test_selectors import _resolved_tickets, at

    clock.move_to(at("09:00"))
    client = client_for(supervisor)
    _resolved_tickets(5, requester, [agent_user, other_agent_user])
    with django_assert_max_num_queries(6):
        assert client.get(URL, DAY).status_code == 200
    _resolved_tickets(45, requester, [agent_user, other_agent_user])
    with django_assert_max_num_queries(6):
        rows = client.get(URL, DAY).json()["rows"]
    assert sum(row["resolved"] for row in rows) == 50


def test_in_the_openapi_schema(db):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(urlconf="tests.kpi.urls").get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/kpi/"]["get"]
    assert operation["operationId"] == "kpi_list"
    assert {p["name"] for p in operation["parameters"]} >= {"group_by", "from", "to", "format"}
    row = schema["components"]["schemas"]["KpiRow"]
    assert list(row["properties"]) == list(kpi.ROW_KEYS)
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
