"""``/api/schema/``: served without auth, valid OpenAPI 3, and true to the views."""
from __future__ import annotations


import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(anon):
    response = anon.client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_needs_no_auth_even_with_a_bad_token(as_):
    assert as_(token="bad").client.get("/api/schema/").status_code == 200


def test_schema_is_openapi_3(schema, anon):
    assert str(schema["openapi"]).startswith("3.")
    assert schema["info"]["title"] and schema["paths"]
    response = anon.client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200 and response.json()["openapi"] == schema["openapi"]


def test_schema_validates_against_the_openapi_spec(schema):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(schema)


def test_every_endpoint_is_documented(schema):
    paths = schema["paths"]
    for path, methods in {
        "/api/v1/auth/token/": {"post"}, "/api/v1/health/": {"get"},
        "/api/v1/teams/": {"post"}, "/api/v1/users/": {"post"},
        "/api/v1/ticket-types/": {"get", "post"},
        "/api/v1/ticket-types/{slug}/": {"patch"},
        "/api/v1/tickets/": {"get", "post"}, "/api/v1/tickets/{id}/": {"get"},
        "/api/v1/agents/me/": {"get", "patch"}, "/api/v1/agents/me/next/": {"post"},
        "/api/v1/notifications/": {"get"}, "/api/v1/notifications/read-all/": {"post"},
        "/api/v1/notifications/{id}/read/": {"post"},
        **{f"/api/v1/tickets/{{id}}/{a}/": {"post"} for a in (
            "lock", "unlock", "handover", "resolve", "feedback", "cancel", "assign", "notes",
            "comments")},
    }.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))


def test_operation_ids_are_unique(schema):
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()
           if isinstance(op, dict) and "operationId" in op]
    assert len(ids) == len(set(ids))


def responses(schema, path, method):
    return set(schema["paths"][path][method]["responses"])


def test_documented_statuses_match_the_views(schema):
    t = "/api/v1/tickets/{id}"
    assert {"201", "200", "400", "401", "403", "413"} <= responses(schema, "/api/v1/tickets/",
                                                                   "post")
    assert "201" not in responses(schema, f"{t}/lock/", "post")
    for action in ("lock", "unlock", "handover", "resolve", "feedback", "cancel", "assign"):
        assert {"200", "400", "401", "403", "404", "409"} <= responses(schema, f"{t}/{action}/",
                                                                       "post")
    for action in ("notes", "comments"):
        statuses = responses(schema, f"{t}/{action}/", "post")
        assert "201" in statuses and "200" not in statuses
    assert {"200", "204", "409"} <= responses(schema, "/api/v1/agents/me/next/", "post")
    for path in ("/api/v1/notifications/{id}/read/", "/api/v1/notifications/read-all/"):
        statuses = responses(schema, path, "post")
        assert "204" in statuses and "200" not in statuses
    assert {"200", "503"} <= responses(schema, "/api/v1/health/", "get")
    assert "201" in responses(schema, "/api/v1/teams/", "post")
    assert "201" in responses(schema, "/api/v1/users/", "post")
    assert "201" in responses(schema, "/api/v1/ticket-types/", "post")


def _component(schema, ref_holder):
    ref = ref_holder["content"]["application/json"]["schema"]
    if "$ref" not in ref:
        return ref
    return schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]


def test_documented_shapes_match_the_answers(schema):
    from tests.api.test_people import NOTIFICATION_KEYS, TYPE_KEYS
    from tests.api.test_tickets import EVENT_KEYS, INTERNAL_KEYS

    detail = _component(schema, schema["paths"]["/api/v1/tickets/{id}/"]["get"]["responses"]
                        ["200"])
    assert set(detail["properties"]) == INTERNAL_KEYS | {"events"}
    page = _component(schema, schema["paths"]["/api/v1/tickets/"]["get"]["responses"]["200"])
    assert set(page["properties"]) == {"results", "next"}
    event = _component(schema, schema["paths"]["/api/v1/tickets/{id}/notes/"]["post"]
                       ["responses"]["201"])
    assert set(event["properties"]) == EVENT_KEYS
    types = schema["paths"]["/api/v1/ticket-types/"]["get"]["responses"]["200"]
    array = types["content"]["application/json"]["schema"]
    assert array["type"] == "array"
    item = schema["components"]["schemas"][array["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(item["properties"]) == TYPE_KEYS
    inbox = _component(schema, schema["paths"]["/api/v1/notifications/"]["get"]["responses"]
                       ["200"])
    note = schema["components"]["schemas"][
        inbox["properties"]["results"]["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(note["properties"]) == NOTIFICATION_KEYS
    error = schema["components"]["schemas"]["Error"]
    assert {"code", "detail", "fields"} <= set(error["properties"])


def test_write_only_secret_is_never_in_an_answer(schema):
    for name, component in schema["components"]["schemas"].items():
        if name.startswith("TicketType") and "Request" not in name:
            assert "secret" not in component.get("properties", {}), name


def test_schema_generation_has_no_warnings(tmp_path, capsys):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out), "--fail-on-warn")
    captured = capsys.readouterr()
    assert "Warning" not in captured.out + captured.err
    assert yaml.safe_load(out.read_text())["openapi"].startswith("3.")
