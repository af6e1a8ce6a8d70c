"""Sign-in, health, provisioning, agents/me, pull-next and notifications."""
from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from agents.models import Agent, Team, User
from tests.api.conftest import Api, assert_error, assert_invalid
from tests.api.test_tickets import INTERNAL_KEYS, iso
from tests.factories import DEFAULT_PASSWORD, TicketFactory, TicketTypeFactory
from tickets.models import Notification, TicketType

pytestmark = pytest.mark.django_db


# -- token and health -----------------------------------------------------------------------


def test_token_for_good_credentials(anon, requester):
    response = anon.post("/auth/token/", {"username": "alice", "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    assert set(response.json()) == {"token"}
    token = response.json()["token"]
    assert token == Token.objects.get(user=requester).key
    assert Api(token=token).get("/tickets/").status_code == 200


@pytest.mark.parametrize("body", [
    {"username": "alice", "password": "wrong"}, {"username": "nobody", "password": "x"},
    {"username": "alice"}, {}, {"username": 5, "password": ["x"]},
])
def test_token_for_bad_credentials_is_invalid(anon, requester, body):
    assert_invalid(anon.post("/auth/token/", body))


def test_token_endpoint_ignores_a_bad_token_header(as_, requester):
    api = as_(token="bad")
    response = api.post("/auth/token/", {"username": "alice", "password": DEFAULT_PASSWORD})
    assert response.status_code == 200


def test_health_needs_no_auth(anon):
    response = anon.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}
    assert Api(token="bad").get("/health/").status_code == 200


def test_health_is_503_when_the_broker_is_down(anon, monkeypatch):
    from tickets.api import views

    monkeypatch.setattr(views, "broker_ok", lambda: False)
    response = anon.get("/health/")
    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "down"}


# -- provisioning ---------------------------------------------------------------------------


def test_admin_creates_a_team(admin_api):
    response = admin_api.post("/teams/", {"name": "Billing"})
    assert response.status_code == 201
    assert response.json() == {"name": "Billing"}
    assert Team.objects.filter(name="Billing").exists()
    assert_invalid(admin_api.post("/teams/", {"name": "Billing"}), "name")
    assert_invalid(admin_api.post("/teams/", {}), "name")


def test_admin_creates_users_of_every_role(admin_api, team):
    for role in ("requester", "agent", "supervisor", "integration"):
        response = admin_api.post("/users/", {
            "username": f"new-{role}", "password": "a-long-pass-123", "email": f"{role}@x.io",
            "role": role, "teams": ["Refunds"]})
        assert response.status_code == 201, response.content
        body = response.json()
        assert set(body) == {"username", "role", "token"}
        assert body["username"] == f"new-{role}" and body["role"] == role
        assert Api(token=body["token"]).get("/tickets/").status_code == 200
    agent = Agent.objects.get(user__username="new-agent")
    assert agent.capacity == 5
    assert list(agent.user.teams.values_list("name", flat=True)) == ["Refunds"]


def test_agent_capacity_is_taken(admin_api, team):
    admin_api.post("/users/", {"username": "cap", "password": "a-long-pass-123",
                               "role": "agent", "teams": ["Refunds"], "capacity": 2})
    assert Agent.objects.get(user__username="cap").capacity == 2


def test_taken_username_is_invalid_on_username(admin_api, requester):
    fields = assert_invalid(admin_api.post("/users/", {
        "username": "alice", "password": "a-long-pass-123", "role": "requester"}), "username")
    assert list(fields) == ["username"]


def test_user_validation(admin_api):
    assert_invalid(admin_api.post("/users/", {"username": "x", "password": "a-long-pass-123",
                                              "role": "boss"}), "role")
    assert_invalid(admin_api.post("/users/", {"username": "x", "password": "a-long-pass-123",
                                              "teams": ["Nope"]}), "teams")


@pytest.mark.parametrize("who", ["requester_api", "agent_api", "supervisor_api",
                                 "integration_api"])
def test_provisioning_is_admin_only(request, who, team, ticket_type):
    api = request.getfixturevalue(who)
    assert_error(api.post("/teams/", {"name": "X"}), 403, "permission_denied")
    assert_error(api.post("/users/", {"username": "x", "password": "a-long-pass-123",
                                      "role": "requester"}), 403, "permission_denied")
    assert_error(api.post("/ticket-types/", {"slug": "x", "name": "X", "team": "Refunds",
                                             "time_limit_minutes": 5}), 403, "permission_denied")
    assert_error(api.patch("/ticket-types/refund/", {"name": "Y"}), 403, "permission_denied")


def test_staff_without_superuser_is_not_admin(as_, team):
    staff = User.objects.create_user(username="staffer", password="x", is_staff=True)
    assert_error(as_(staff).post("/teams/", {"name": "X"}), 403, "permission_denied")


def test_provisioning_without_credentials_is_401(anon):
    assert_error(anon.post("/teams/", {"name": "X"}), 401, "not_authenticated")


TYPE_KEYS = {
    "slug", "name", "team", "default_priority", "time_limit_minutes", "max_lock_minutes",
    "handover_priority_step", "breach_priority_step", "reopen_priority_step", "on_breach",
    "feedback_window_hours", "callback", "callback_url", "webhook_url", "has_secret",
    "callback_attempts", "callback_backoff_seconds", "callback_timeout_seconds", "channels",
    "fields",
}
FIELD_KEYS = {"name", "label", "kind", "required", "choices", "max_length"}


def test_ticket_type_defaults(admin_api, team):
    response = admin_api.post("/ticket-types/", {"slug": "refund-2", "name": "Refund",
                                                 "team": "Refunds", "time_limit_minutes": 30})
    assert response.status_code == 201
    assert response.json() == {
        "slug": "refund-2", "name": "Refund", "team": "Refunds", "default_priority": 2,
        "time_limit_minutes": 30, "max_lock_minutes": None, "handover_priority_step": 1,
        "breach_priority_step": 1, "reopen_priority_step": 1, "on_breach": "reassign",
        "feedback_window_hours": 72, "callback": False, "callback_url": None,
        "webhook_url": None, "has_secret": False, "callback_attempts": 4,
        "callback_backoff_seconds": 5, "callback_timeout_seconds": 10, "channels": ["portal"],
        "fields": [],
    }


def test_ticket_type_with_everything(admin_api, team):
    response = admin_api.post("/ticket-types/", {
        "slug": "booking", "name": "Booking", "team": "Refunds", "time_limit_minutes": 90,
        "default_priority": 3, "max_lock_minutes": 20, "on_breach": "notify",
        "callback_url": "https://cb.example.com/hook", "webhook_url": "https://wh.example.com/",
        "secret": "s3cret", "channels": ["portal", "webhook"],
        "fields": [
            {"name": "reference", "label": "Reference", "kind": "text", "required": True},
            {"name": "cabin", "kind": "choice", "choices": ["economy", "business"]},
            {"name": "amount", "kind": "number"},
        ],
    })
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == TYPE_KEYS
    assert "secret" not in body and body["has_secret"] is True
    assert body["callback"] is True and body["callback_url"] == "https://cb.example.com/hook"
    assert body["on_breach"] == "notify" and body["max_lock_minutes"] == 20
    assert sorted(body["channels"]) == ["portal", "webhook"]
    assert [set(f) for f in body["fields"]] == [FIELD_KEYS] * 3
    ref, cabin, amount = body["fields"]
    assert ref == {"name": "reference", "label": "Reference", "kind": "text", "required": True,
                   "choices": [], "max_length": 1000}
    assert cabin["choices"] == ["economy", "business"] and cabin["max_length"] is None
    assert amount["choices"] == [] and amount["max_length"] is None
    assert TicketType.objects.get(slug="booking").secret == "s3cret"


def test_ticket_type_validation(admin_api, ticket_type):
    assert_invalid(admin_api.post("/ticket-types/", {}), "slug", "name", "team",
                   "time_limit_minutes")
    assert_invalid(admin_api.post("/ticket-types/", {
        "slug": "refund", "name": "Dup", "team": "Refunds", "time_limit_minutes": 5}), "slug")
    assert_invalid(admin_api.post("/ticket-types/", {
        "slug": "Bad Slug", "name": "X", "team": "Refunds", "time_limit_minutes": 5}), "slug")
    assert_invalid(admin_api.post("/ticket-types/", {
        "slug": "x", "name": "X", "team": "Nope", "time_limit_minutes": 5}), "team")
    assert_invalid(admin_api.post("/ticket-types/", {
        "slug": "x", "name": "X", "team": "Refunds", "time_limit_minutes": 0}),
        "time_limit_minutes")
    assert_invalid(admin_api.post("/ticket-types/", {
        "slug": "x", "name": "X", "team": "Refunds", "time_limit_minutes": 5,
        "channels": ["fax"]}))
    fields = assert_invalid(admin_api.post("/ticket-types/", {
        "slug": "x", "name": "X", "team": "Refunds", "time_limit_minutes": 5,
        "fields": [{"name": "a", "kind": "choice"}]}))
    assert any(k.startswith("fields.0") for k in fields)


@pytest.mark.parametrize("field,value", [
    ("time_limit_minutes", "30"), ("time_limit_minutes", 30.0), ("default_priority", True),
    ("name", 5), ("callback_url", 5), ("max_lock_minutes", "10"), ("on_breach", "explode"),
    ("fields", [{"name": "a", "kind": "text", "required": "yes"}]),
    ("fields", [{"name": 1, "kind": "text"}]), ("fields", {"name": "a"}), ("channels", "portal"),
])
def test_ticket_type_values_must_have_their_json_type(admin_api, ticket_type, field, value):
    body = {"slug": "strict", "name": "Strict", "team": "Refunds", "time_limit_minutes": 5,
            field: value}
    fields = assert_invalid(admin_api.post("/ticket-types/", body))
    assert any(k == field or k.startswith(f"{field}.") for k in fields), fields
    assert not TicketType.objects.filter(slug="strict").exists()
    assert_invalid(admin_api.patch("/ticket-types/refund/", {field: value}))


def test_patch_changes_one_field(admin_api, ticket_type):
    before = admin_api.get("/ticket-types/").json()[0]
    response = admin_api.patch("/ticket-types/refund/", {"default_priority": 4})
    assert response.status_code == 200
    after = response.json()
    assert after == {**before, "default_priority": 4}
    after = admin_api.patch("/ticket-types/refund/", {"secret": "k"}).json()
    assert after["has_secret"] is True and "secret" not in after
    after = admin_api.patch("/ticket-types/refund/", {"callback_url": "https://x.example/"}).json()
    assert after["callback"] is True
    after = admin_api.patch("/ticket-types/refund/", {"callback_url": None}).json()
    assert after["callback"] is False and after["callback_url"] is None


def test_patch_unknown_type_is_404(admin_api):
    assert_error(admin_api.patch("/ticket-types/nope/", {"name": "X"}), 404, "not_found")


def test_ticket_types_list_is_a_bare_array(requester_api, ticket_type, team):
    TicketTypeFactory(slug="alpha", team=team, fields=[{"name": "ref", "kind": "text"}])
    body = requester_api.get("/ticket-types/").json()
    assert isinstance(body, list)
    assert [t["slug"] for t in body] == ["alpha", "refund"]
    assert all(set(t) == TYPE_KEYS for t in body)
    assert body[0]["fields"][0]["name"] == "ref"


# -- agents/me and pull-next ----------------------------------------------------------------


def test_agents_me(agent_api):
    response = agent_api.get("/agents/me/")
    assert response.status_code == 200
    assert response.json() == {"username": "agnes", "status": "online", "capacity": 5,
                               "active": 0, "teams": ["Refunds"]}


def test_agents_me_status(agent_api):
    for status in ("away", "offline", "online"):
        body = agent_api.patch("/agents/me/", {"status": status}).json()
        assert body["status"] == status
        assert agent_api.get("/agents/me/").json()["status"] == status
    assert_invalid(agent_api.patch("/agents/me/", {"status": "busy"}), "status")
    assert_invalid(agent_api.patch("/agents/me/", {}), "status")


@pytest.mark.parametrize("who", ["requester_api", "supervisor_api", "integration_api"])
def test_agents_me_is_for_agents(request, who):
    api = request.getfixturevalue(who)
    assert_error(api.get("/agents/me/"), 403, "permission_denied")
    assert_error(api.patch("/agents/me/", {"status": "online"}), 403, "permission_denied")
    assert_error(api.post("/agents/me/next/"), 403, "permission_denied")


def test_pull_next(agent_api, ticket, ticket_type, requester):
    urgent = TicketFactory(ticket_type=ticket_type, requester=requester, priority=5)
    response = agent_api.post("/agents/me/next/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == INTERNAL_KEYS
    assert body["id"] == urgent.pk and body["assignee"] == "agnes"
    assert body["state"] == "assigned" and iso(body["assigned_at"])
    assert agent_api.post("/agents/me/next/").json()["id"] == ticket.pk
    assert agent_api.get("/agents/me/").json()["active"] == 2
    response = agent_api.post("/agents/me/next/")
    assert response.status_code == 204 and response.content == b""


def test_pull_next_with_nothing_eligible_is_204(agent_api):
    response = agent_api.post("/agents/me/next/")
    assert response.status_code == 204


def test_pull_next_when_not_online(agent_api, ticket):
    agent_api.patch("/agents/me/", {"status": "away"})
    assert_error(agent_api.post("/agents/me/next/"), 409, "agent_not_online")


# -- notifications --------------------------------------------------------------------------

NOTIFICATION_KEYS = {"id", "ticket", "kind", "message", "created_at", "read"}


@pytest.fixture
def inbox(requester, ticket_type):
    t1 = TicketFactory(ticket_type=ticket_type, requester=requester, state="resolved")
    t2 = TicketFactory(ticket_type=ticket_type, requester=requester, state="cancelled")
    return list(Notification.objects.filter(user=requester).order_by("id")), (t1, t2)


def test_notifications_newest_first(requester_api, inbox):
    rows, _ = inbox
    response = requester_api.get("/notifications/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next"} and body["next"] is None
    assert [n["id"] for n in body["results"]] == [n.pk for n in reversed(rows)]
    for item in body["results"]:
        assert set(item) == NOTIFICATION_KEYS
        assert item["read"] is False and isinstance(item["message"], str)
        iso(item["created_at"])
    assert {n["kind"] for n in body["results"]} == {"resolved", "cancelled"}


def test_notification_read_and_unread_filter(requester_api, other_requester_api, inbox):
    rows, _ = inbox
    first = rows[0]
    response = requester_api.post(f"/notifications/{first.pk}/read/")
    assert response.status_code == 204 and response.content == b""
    unread = requester_api.get("/notifications/", {"unread": "true"}).json()["results"]
    assert first.pk not in [n["id"] for n in unread] and len(unread) == len(rows) - 1
    read = requester_api.get("/notifications/", {"unread": "false"}).json()["results"]
    assert [n["id"] for n in read] == [first.pk]
    # Somebody else's notification does not exist for you.
    assert_error(other_requester_api.post(f"/notifications/{rows[1].pk}/read/"), 404,
                 "not_found")
    assert_error(requester_api.post("/notifications/999999/read/"), 404, "not_found")


def test_read_all(requester_api, inbox):
    response = requester_api.post("/notifications/read-all/")
    assert response.status_code == 204
    assert requester_api.get("/notifications/", {"unread": "true"}).json()["results"] == []


def test_notifications_pages(requester_api, requester, small_pages):
    rows = [Notification.objects.create(user=requester, kind="k", message=str(n))
            for n in range(5)]
    seen, response = [], requester_api.get("/notifications/")
    while True:
        body = response.json()
        assert len(body["results"]) <= 2
        seen += [n["id"] for n in body["results"]]
        if body["next"] is None:
            break
        response = requester_api.client.get(body["next"])
    assert seen == [n.pk for n in reversed(rows)]


def test_unreadable_unread_filter_is_invalid(requester_api):
    assert_invalid(requester_api.get("/notifications/", {"unread": "maybe"}), "unread")
