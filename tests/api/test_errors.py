"""The error format and codes of API.md "Errors", and no 500 for bad input."""
from __future__ import annotations

import json

import pytest

from tests.api.conftest import assert_error, assert_invalid

pytestmark = pytest.mark.django_db


# -- 400 parse_error / invalid ----------------------------------------------------------


@pytest.mark.parametrize("body", ["{", '{"title": }', "not json", '{"a": 1,}', "\x00\x01"])
def test_malformed_json_is_parse_error(requester_api, ticket_type, body):
    response = requester_api.raw("post", "/tickets/", body)
    assert_error(response, 400, "parse_error")


def test_body_that_is_not_json_at_all_is_parse_error(requester_api, ticket_type):
    response = requester_api.raw("post", "/tickets/", "type=refund&title=x",
                                 content_type="application/x-www-form-urlencoded")
    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize("body", [[], [1, 2], "a string", 42, None, True])
def test_json_that_is_not_an_object_is_invalid(requester_api, ticket_type, body):
    response = requester_api.raw("post", "/tickets/", json.dumps(body))
    assert_invalid(response)


def test_validation_error_lists_every_field_as_lists_of_strings(requester_api, ticket_type):
    response = requester_api.post("/tickets/", {"type": "refund", "title": "", "priority": 9,
                                                "description": 5})
    fields = assert_invalid(response, "title", "priority", "description")
    assert set(fields) == {"title", "priority", "description"}


def test_custom_field_errors_are_keyed_data_dot_name(requester_api, team):
    from tests.factories import TicketTypeFactory

    TicketTypeFactory(slug="booking", team=team, fields=[
        {"name": "reference", "kind": "text", "required": True},
        {"name": "amount", "kind": "number"},
    ])
    response = requester_api.post("/tickets/", {"type": "booking", "title": "Move it",
                                                "data": {"amount": "lots"}})
    fields = assert_invalid(response, "data.reference", "data.amount")
    assert fields["data.reference"] == ["This field is required."]


def test_unknown_type(requester_api, ticket_type):
    response = requester_api.post("/tickets/", {"type": "no-such-type", "title": "x"})
    assert_error(response, 400, "unknown_type")


# -- 401 ------------------------------------------------------------------------------------


def test_no_credentials_is_not_authenticated(anon, ticket):
    for path in ("/tickets/", f"/tickets/{ticket.pk}/", "/ticket-types/", "/notifications/",
                 "/agents/me/"):
        assert_error(anon.get(path), 401, "not_authenticated")
    assert_error(anon.post(f"/tickets/{ticket.pk}/cancel/"), 401, "not_authenticated")


def test_bad_token_is_authentication_failed(as_, ticket):
    api = as_(token="0" * 40)
    assert_error(api.get("/tickets/"), 401, "authentication_failed")
    assert_error(api.post("/tickets/", {"type": "refund", "title": "x"}), 401,
                 "authentication_failed")


def test_token_of_inactive_user_is_authentication_failed(as_, requester):
    api = as_(requester)
    requester.is_active = False
    requester.save()
    assert_error(api.get("/tickets/"), 401, "authentication_failed")


@pytest.mark.parametrize("header", ["Token", "Token a b", "Bearer abc"])
def test_malformed_authorization_header_never_500(anon, header):
    anon.client.credentials(HTTP_AUTHORIZATION=header)
    response = anon.get("/tickets/")
    assert response.status_code == 401
    assert response.json()["code"] in ("authentication_failed", "not_authenticated")


# -- 404 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/tickets/abc/", "/api/v2/tickets/",
                                  "/api/", "/api/v1/tickets/1/fly/", "/api/v1/tickets",
                                  "/api/v1/tickets/99999999999999999999999/"])
def test_unknown_api_paths_are_not_found_in_the_error_format(requester_api, path):
    assert_error(requester_api.get(path), 404, "not_found")
    assert_error(requester_api.post(path), 404, "not_found")


def test_unknown_ticket_is_not_found(requester_api):
    assert_error(requester_api.get("/tickets/987654/"), 404, "not_found")


# -- 405 and 413 ----------------------------------------------------------------------------


def test_wrong_method_answers_in_the_error_format(requester_api, ticket):
    response = requester_api.client.delete(f"/api/v1/tickets/{ticket.pk}/")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_body_over_one_mebibyte_is_too_large(requester_api, ticket_type):
    body = json.dumps({"type": "refund", "title": "x", "description": "a" * (1024 * 1024)})
    assert_error(requester_api.raw("post", "/tickets/", body), 413, "too_large")


def test_body_just_under_the_limit_is_read(requester_api, ticket_type):
    # Under 1 MiB the body is read and validated (description is too long: 400, not 413).
    body = json.dumps({"type": "refund", "title": "x", "description": "a" * 1_000_000})
    assert_invalid(requester_api.raw("post", "/tickets/", body), "description")


# -- no 500 for any bad input ------------------------------------------------------------

BAD_VALUES = [None, True, False, 0, -1, 10**30, -(10**30), 1.5, float("1e308"), "", " ",
              "abc", "5", "x" * 30_000, [], [1], ["a"], {}, {"a": 1}, [{}]]


def _posts(ticket_pk: int):
    """path -> (the roles that get past the role check, the body's fields)."""
    t = f"/tickets/{ticket_pk}"
    return {
        "/tickets/": (("requester", "integration"),
                      ["type", "title", "description", "data", "priority", "requester"]),
        f"{t}/lock/": (("agent",), ["minutes"]),
        f"{t}/handover/": (("agent",), ["reason"]),
        f"{t}/resolve/": (("agent",), ["result"]),
        f"{t}/feedback/": (("requester",), ["accepted", "rating", "comment"]),
        f"{t}/cancel/": (("requester", "supervisor"), ["reason"]),
        f"{t}/assign/": (("supervisor",), ["agent", "force"]),
        f"{t}/notes/": (("agent",), ["body"]),
        f"{t}/comments/": (("requester",), ["body"]),
        "/auth/token/": (("requester",), ["username", "password"]),
        "/teams/": (("admin",), ["name"]),
        "/users/": (("admin",), ["username", "password", "email", "role", "teams", "capacity"]),
        "/ticket-types/": (("admin",), [
            "slug", "name", "team", "time_limit_minutes", "default_priority", "max_lock_minutes",
            "handover_priority_step", "on_breach", "feedback_window_hours", "callback_url",
            "webhook_url", "secret", "callback_attempts", "callback_backoff_seconds",
            "callback_timeout_seconds", "channels", "fields"]),
    }


def _check(response):
    assert response.status_code < 500, (response.status_code, response.content[:300])
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("code"), str) and isinstance(body.get("detail"), str), body
        if "fields" in body:
            for messages in body["fields"].values():
                assert isinstance(messages, list)
                assert all(isinstance(m, str) for m in messages)


VALID = {
    "type": "refund", "title": "t", "minutes": 5, "reason": "r", "result": "r",
    "accepted": False, "comment": "c", "agent": "agnes", "body": "b", "name": "N",
    "slug": "fuzz", "team": "Refunds", "time_limit_minutes": 60,
}


@pytest.mark.parametrize("value", BAD_VALUES, ids=lambda v: repr(v)[:20])
def test_wrong_json_types_everywhere_never_500(
    value, ticket_type, assigned_ticket, requester, agent_user, supervisor, integration,
    admin_user, as_,
):
    apis = {"requester": as_(requester), "agent": as_(agent_user),
            "supervisor": as_(supervisor), "integration": as_(integration),
            "admin": as_(admin_user)}
    serial = 0
    for path, (roles, names) in _posts(assigned_ticket.pk).items():
        for name in names:
            body = {k: VALID[k] for k in names if k in VALID}
            body[name] = value
            for role in roles:
                if path in ("/ticket-types/", "/teams/", "/users/") and name not in (
                        "slug", "name", "username"):
                    # A fresh name each time, so that a taken one hides nothing.
                    serial += 1
                    body.update({"slug": f"fuzz-{serial}", "name": f"Fuzz {serial}",
                                 "username": f"fuzz{serial}", "password": "a-long-pass-123"})
                _check(apis[role].post(path, body))
    _check(apis["agent"].patch("/agents/me/", {"status": value}))
    admin = apis["admin"]
    _check(admin.patch("/ticket-types/refund/", {"default_priority": value}))
    _check(admin.patch("/ticket-types/refund/", {"time_limit_minutes": value}))
    _check(admin.patch("/ticket-types/refund/", {"fields": value}))
    _check(admin.patch("/ticket-types/refund/", {"fields": [{"name": "a", "kind": "text",
                                                             "max_length": value}]}))
    _check(admin.patch("/ticket-types/refund/", {"fields": [{"name": value, "kind": value,
                                                             "choices": value}]}))


@pytest.mark.parametrize("params", [
    {"priority": "abc"}, {"priority": "9"}, {"priority": "1e3"}, {"state": "open"},
    {"breached": "maybe"}, {"ordering": "title"}, {"cursor": "!!!"}, {"cursor": "W10"},
    {"cursor": "WzAsIDk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ"},  # [0, 999...]: an overflowing id
    {"cursor": "WyJ4IiwgMV0", "ordering": "due_at"},  # ["x", 1]
    {"cursor": "WyJ4IiwgMV0", "ordering": "-priority"},
    {"unread": "perhaps"},
])
def test_unreadable_query_parameters_are_invalid_not_500(agent_api, requester_api, ticket,
                                                         params):
    for api in (agent_api, requester_api):
        for path in ("/tickets/", "/notifications/"):
            response = api.get(path, params)
            _check(response)
    if "unread" not in params:
        assert_invalid(agent_api.get("/tickets/", params))


def test_huge_lock_is_refused_with_max_minutes_not_500(agent_api, assigned_ticket, clock):
    response = agent_api.post(f"/tickets/{assigned_ticket.pk}/lock/", {"minutes": 10**30})
    body = assert_error(response, 409, "lock_exceeds_time_left")
    assert body["max_minutes"] == 60


def test_huge_ids_in_paths_are_not_found(agent_api, requester_api):
    huge = 10**25
    assert_error(agent_api.post(f"/tickets/{huge}/lock/", {"minutes": 1}), 404, "not_found")
    assert_error(requester_api.post(f"/notifications/{huge}/read/"), 404, "not_found")
    assert_error(requester_api.get(f"/tickets/{2**63}/"), 404, "not_found")


def test_idempotency_key_too_long_is_invalid(requester_api, ticket_type):
    response = requester_api.post("/tickets/", {"type": "refund", "title": "x"},
                                  HTTP_IDEMPOTENCY_KEY="k" * 300)
    assert_invalid(response, "Idempotency-Key")
