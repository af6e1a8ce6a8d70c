"""The bad-input matrix: every endpoint of tickets/api/urls.py, fed malformed
JSON, wrong types, unknown slugs, missing required custom fields, oversize
strings and bodies, every transition from every wrong state, and other users'
tickets. Each answer must be the documented 4xx (API.md "Errors") and the
database must be exactly as it was: a snapshot of every row of every table of
the project's apps (counts plus a hash of all values) is taken before and
after each request.

Each test walks a list of cases against one world and reports every mismatch
at once (the world is built once per test: building it per case would make
the matrix slow).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps

from agents.models import User
from tests.factories import TicketFactory, TicketTypeFactory
from tests.outside.conftest import Api
from tickets.models import Notification, Ticket
from tickets.services.work import ticket_cancel, ticket_lock_acquire

MiB = 1024 * 1024
APPS = {"tickets", "agents", "feedback", "authtoken", "auth"}


def snapshot() -> dict[str, tuple[int, str]]:
    """Every table of the project's apps: (row count, hash of every value)."""
    out = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.app_label not in APPS:
            continue
        rows = list(model._default_manager.order_by("pk").values_list())
        digest = hashlib.sha256(repr(rows).encode()).hexdigest()
        out[model._meta.label] = (len(rows), digest)
    return out


@dataclass
class Case:
    name: str
    who: str | None  # a key of world.users; None = anonymous
    method: str
    path: str
    body: Any = None  # JSON-able; or bytes sent as they are
    status: int = 400
    code: str = "invalid"
    field: str | None = None  # a key expected in "fields"
    content_type: str = "application/json"


class World:
    """The cast, the types and one ticket in every state (team "Refunds")."""

    def __init__(self, request) -> None:
        get = request.getfixturevalue
        self.users: dict[str, User] = {
            name: get(name) for name in (
                "requester", "other_requester", "agent_user", "other_agent_user",
                "outside_agent_user", "supervisor", "outside_supervisor", "integration")
        }
        self.users["admin"] = User.objects.create_superuser(
            username="root", password="Root-pass-7731", email="root@example.com",
            role=User.Role.SUPERVISOR)
        team, other_team = get("team"), get("other_team")
        requester, agent = self.users["requester"], self.users["agent_user"]
        self.claim_type = TicketTypeFactory(
            slug="claim", team=team, time_limit_minutes=60, fields=[
                {"name": "reference", "kind": "text", "required": True, "max_length": 20},
                {"name": "amount", "kind": "number"},
                {"name": "when", "kind": "date"},
                {"name": "reason_code", "kind": "choice", "choices": ["late", "broken"]},
                {"name": "contact", "kind": "email"},
            ])
        plain = get("ticket_type")
        callback_type = TicketTypeFactory(slug="auto", team=team,
                                          callback_url="http://127.0.0.1:9/never-called")
        outside_type = TicketTypeFactory(slug="outside", team=other_team)

        def make(**kwargs):
            kwargs.setdefault("ticket_type", plain)
            kwargs.setdefault("requester", requester)
            return TicketFactory(**kwargs)

        self.t: dict[str, Ticket] = {
            "callback": make(ticket_type=callback_type),
            "pooled": make(),
            "assigned": make(state="assigned", assignee=agent),
            "locked": make(state="assigned", assignee=agent),
            "resolved": make(state="resolved", assignee=agent),
            "closed": make(state="closed", assignee=agent),
            "cancelled": make(state="cancelled"),
            "cancelled_assigned": make(state="assigned", assignee=agent),
            "reopened": make(state="resolved", assignee=agent),
        }
        ticket_lock_acquire(ticket_id=self.t["locked"].pk, by=agent, minutes=10)
        ticket_cancel(ticket_id=self.t["cancelled_assigned"].pk, by=self.users["supervisor"])
        from feedback.services import ticket_feedback

        ticket_feedback(ticket_id=self.t["reopened"].pk, by=requester, accepted=False,
                        comment="Not fixed.")
        self.outside = TicketFactory(ticket_type=outside_type,
                                     requester=self.users["other_requester"], state="assigned",
                                     assignee=self.users["outside_agent_user"])
        self.t = {k: Ticket.objects.get(pk=v.pk) for k, v in self.t.items()}
        assert {k: v.state for k, v in self.t.items()} == {
            "callback": "callback", "pooled": "pooled", "assigned": "assigned",
            "locked": "assigned", "resolved": "resolved", "closed": "closed",
            "cancelled": "cancelled", "cancelled_assigned": "cancelled", "reopened": "pooled",
        }
        self.other_notification = Notification.objects.filter(
            user=self.users["other_requester"]).first() or Notification.objects.create(
            user=self.users["other_requester"], ticket=self.outside, kind="x", message="x")
        from tickets.delivery_models import Delivery

        self.delivery = Delivery.objects.create(
            ticket=self.t["pooled"], channel="webhook", recipient="http://127.0.0.1:9/",
            event="created", status="failed", attempts=5, last_error="HTTP 500")
        # Tokens exist before the first snapshot (signing in creates none afterwards).
        self.api = {name: Api(user) for name, user in self.users.items()}
        self.api[None] = Api()

    def run(self, cases: list[Case]) -> None:
        problems = []
        for case in cases:
            before = snapshot()
            try:
                response = self.send(case)
            except Exception as exc:  # noqa: BLE001 - a crash is a finding, like a 500
                problems.append(f"{case.name}: raised {type(exc).__name__}: {exc}")
                continue
            after = snapshot()
            changed = sorted(k for k in before if before[k] != after.get(k))
            if changed:
                problems.append(f"{case.name}: database changed in {changed}")
            problem = self.check(case, response)
            if problem:
                problems.append(f"{case.name}: {problem}")
        assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems)

    def send(self, case: Case):
        api = self.api[case.who]
        if isinstance(case.body, bytes):
            return api.raw(case.method, case.path, case.body, content_type=case.content_type)
        if case.method == "GET":
            return api.get(case.path, case.body)
        body = json.dumps({} if case.body is None else case.body)
        return api.raw(case.method, case.path, body, content_type=case.content_type)

    @staticmethod
    def check(case: Case, response) -> str | None:
        if response.status_code != case.status:
            return (f"answered {response.status_code}, expected {case.status} {case.code}: "
                    f"{response.content[:300]!r}")
        try:
            body = response.json()
        except ValueError:
            return f"not JSON: {response.content[:200]!r}"
        if body.get("code") != case.code:
            return f"code {body.get('code')!r}, expected {case.code!r}: {body}"
        if not isinstance(body.get("detail"), str) or not body["detail"]:
            return f"no detail: {body}"
        fields = body.get("fields")
        if fields is not None:
            if not isinstance(fields, dict) or not all(
                    isinstance(v, list) and v and all(isinstance(m, str) for m in v)
                    for v in fields.values()):
                return f"bad fields shape: {fields}"
        if case.field is not None and not any(
                k == case.field or k.startswith(case.field + ".") for k in (fields or {})):
            return f"fields {fields} do not name {case.field!r}"
        return None

    def tid(self, state: str) -> int:
        return self.t[state].pk


@pytest.fixture
def world(request, db, clock, sent_tasks) -> World:
    return World(request)


# -- every endpoint, every kind of bad body ---------------------------------------------

# (who may call it, method, path, a valid body) for every endpoint that reads one.
def writers(w: World) -> list[tuple[str, str, str, dict]]:
    t = w.tid
    return [
        (None, "POST", "/auth/token/", {"username": "alice", "password": "x"}),
        ("admin", "POST", "/teams/", {"name": "New team"}),
        ("admin", "POST", "/users/", {"username": "newbie", "password": "Long-enough-pass-1",
                                      "role": "requester"}),
        ("admin", "POST", "/ticket-types/", {"slug": "new", "name": "New", "team": "Refunds",
                                             "time_limit_minutes": 5}),
        ("admin", "PATCH", "/ticket-types/refund/", {"name": "Renamed"}),
        ("requester", "POST", "/tickets/", {"type": "refund", "title": "Help"}),
        ("agent_user", "POST", f"/tickets/{t('assigned')}/lock/", {"minutes": 5}),
        ("agent_user", "POST", f"/tickets/{t('locked')}/unlock/", {}),
        ("agent_user", "POST", f"/tickets/{t('assigned')}/handover/", {"reason": "Busy"}),
        ("agent_user", "POST", f"/tickets/{t('assigned')}/resolve/", {"result": "Done"}),
        ("requester", "POST", f"/tickets/{t('resolved')}/feedback/", {"accepted": True}),
        ("requester", "POST", f"/tickets/{t('pooled')}/cancel/", {"reason": "No longer"}),
        ("supervisor", "POST", f"/tickets/{t('pooled')}/assign/", {"agent": "otto"}),
        ("agent_user", "POST", f"/tickets/{t('pooled')}/notes/", {"body": "note"}),
        ("agent_user", "POST", f"/tickets/{t('pooled')}/comments/", {"body": "hi"}),
        ("agent_user", "PATCH", "/agents/me/", {"status": "away"}),
        ("supervisor", "POST", f"/deliveries/{w.delivery.pk}/retry/", {}),
    ]


def test_malformed_json_everywhere_is_a_parse_error(world):
    cases = []
    for who, method, path, _ in writers(world):
        for label, raw in [("truncated", b'{"a": '), ("garbage", b"\x00\xff{{"),
                           ("trailing", b'{"a": 1} x'), ("nan", b'{"minutes": NaN}'),
                           ("single_quotes", b"{'a': 1}")]:
            cases.append(Case(f"{method} {path} {label}", who, method, path, raw, 400,
                              "parse_error"))
        # A form post is not JSON either (the API reads every body as JSON).
        cases.append(Case(f"{method} {path} form", who, method, path, b"a=1&b=2", 400,
                          "parse_error", content_type="application/x-www-form-urlencoded"))
    world.run(cases)


def test_a_body_that_is_not_an_object_is_invalid(world):
    cases = []
    for who, method, path, _ in writers(world):
        for label, body in [("list", b"[1, 2]"), ("string", b'"text"'), ("number", b"42"),
                            ("null", b"null"), ("true", b"true")]:
            cases.append(Case(f"{method} {path} {label}", who, method, path, body, 400,
                              "invalid"))
    world.run(cases)


def test_bodies_over_one_mebibyte_are_too_large(world):
    cases = []
    for who, method, path, valid in writers(world):
        padded = dict(valid, padding="x" * MiB)
        cases.append(Case(f"{method} {path} 1MiB+", who, method, path,
                          json.dumps(padded).encode(), 413, "too_large"))
    # Even before authentication is looked at, and on GET-only paths.
    cases.append(Case("anonymous huge ticket", None, "POST", "/tickets/",
                      b'{"title": "' + b"x" * MiB + b'"}', 413, "too_large"))
    cases.append(Case("huge body on the delivery retry", "supervisor", "POST",
                      "/deliveries/1/retry/", b"[" + b"1," * (MiB // 2) + b"1]", 413,
                      "too_large"))
    world.run(cases)


# -- wrong types, unknown slugs, custom fields, oversize strings ---------------------------


def test_ticket_creation_refuses_bad_fields(world):
    ok = {"type": "claim", "title": "Refund", "data": {"reference": "R-1"}}

    def c(name, patch, field, code="invalid", who="requester", drop=()):
        body = {k: v for k, v in {**ok, **patch}.items() if k not in drop}
        return Case(name, who, "POST", "/tickets/", body, 400, code, field)

    cases = [
        c("no type", {}, "type", drop=("type",)),
        c("type is a number", {"type": 7}, "type"),
        c("type is a list", {"type": ["claim"]}, "type"),
        c("unknown type", {"type": "no-such-type"}, "type", code="unknown_type"),
        c("type with odd characters", {"type": "../claim"}, "type", code="unknown_type"),
        c("no title", {}, "title", drop=("title",)),
        c("blank title", {"title": "   "}, "title"),
        c("title is a number", {"title": 12}, "title"),
        c("title is an object", {"title": {"a": 1}}, "title"),
        c("title 201 characters", {"title": "x" * 201}, "title"),
        c("description 20001 characters", {"description": "x" * 20001}, "description"),
        c("description is a list", {"description": ["a"]}, "description"),
        c("priority 0", {"priority": 0}, "priority"),
        c("priority 6", {"priority": 6}, "priority"),
        c("priority as text", {"priority": "high"}, "priority"),
        c("priority as bool", {"priority": True}, "priority"),
        c("priority as float", {"priority": 2.5}, "priority"),
        c("data is a list", {"data": ["R-1"]}, "data"),
        c("data is text", {"data": "R-1"}, "data"),
        c("missing required custom field", {"data": {}}, "data.reference"),
        c("required custom field blank", {"data": {"reference": "  "}}, "data.reference"),
        c("required custom field null", {"data": {"reference": None}}, "data.reference"),
        c("custom text too long", {"data": {"reference": "x" * 21}}, "data.reference"),
        c("custom text is a number", {"data": {"reference": 5}}, "data.reference"),
        c("unknown custom field", {"data": {"reference": "R", "colour": "red"}}, "data.colour"),
        c("number as words", {"data": {"reference": "R", "amount": "ten"}}, "data.amount"),
        c("number as bool", {"data": {"reference": "R", "amount": True}}, "data.amount"),
        c("number infinite", {"data": {"reference": "R", "amount": "inf"}}, "data.amount"),
        c("number as list", {"data": {"reference": "R", "amount": [1]}}, "data.amount"),
        c("date impossible", {"data": {"reference": "R", "when": "2026-13-40"}}, "data.when"),
        c("date as number", {"data": {"reference": "R", "when": 20260101}}, "data.when"),
        c("choice not offered", {"data": {"reference": "R", "reason_code": "bored"}},
          "data.reason_code"),
        c("choice wrong case", {"data": {"reference": "R", "reason_code": "LATE"}},
          "data.reason_code"),
        c("email without at", {"data": {"reference": "R", "contact": "nobody"}}, "data.contact"),
        c("email as number", {"data": {"reference": "R", "contact": 3}}, "data.contact"),
        c("requester named by a requester", {"requester": "bob"}, "requester"),
        c("integration without requester", {}, "requester", who="integration"),
        c("integration names an unknown requester", {"requester": "nobody"}, "requester",
          who="integration"),
        c("integration names an agent as requester", {"requester": "agnes"}, "requester",
          who="integration"),
        c("integration names a requester as a number", {"requester": 5}, "requester",
          who="integration"),
    ]
    cases.append(Case("idempotency key too long", "requester", "POST", "/tickets/", ok, 400,
                      "invalid", "Idempotency-Key"))
    original_send = world.send

    def send(case):
        if case.name == "idempotency key too long":
            return world.api["requester"].post("/tickets/", ok, HTTP_IDEMPOTENCY_KEY="k" * 256)
        return original_send(case)

    world.send = send
    world.run(cases)


def test_transition_bodies_of_the_wrong_type_or_size_are_invalid(world):
    t = world.tid
    lock, handover, resolve = (f"/tickets/{t('assigned')}/{a}/" for a in
                               ("lock", "handover", "resolve"))
    feedback = f"/tickets/{t('resolved')}/feedback/"
    cancel = f"/tickets/{t('pooled')}/cancel/"
    assign = f"/tickets/{t('pooled')}/assign/"
    notes = f"/tickets/{t('pooled')}/notes/"
    comments = f"/tickets/{t('pooled')}/comments/"
    cases = []
    for value in [None, "5", "abc", 0, -3, 1.5, True, [5], {"n": 5}]:
        cases.append(Case(f"lock minutes={value!r}", "agent_user", "POST", lock,
                          {"minutes": value} if value is not None else {}, field="minutes"))
    for path, key, limit, who in [(handover, "reason", 1000, "agent_user"),
                                  (resolve, "result", 20000, "agent_user"),
                                  (notes, "body", 10000, "agent_user"),
                                  (comments, "body", 10000, "requester"),
                                  (comments, "body", 10000, "supervisor")]:
        for label, value in [("missing", None), ("empty", ""), ("blank", "  \n "),
                             ("number", 5), ("list", ["a"]), ("too long", "x" * (limit + 1))]:
            cases.append(Case(f"{path} {who} {key} {label}", who, "POST", path,
                              {key: value} if value is not None else {}, field=key))
    for label, value in [("number", 5), ("too long", "x" * 1001), ("list", ["a"])]:
        cases.append(Case(f"cancel reason {label}", "requester", "POST", cancel,
                          {"reason": value}, field="reason"))
    for label, body, field in [
        ("accepted missing", {}, "accepted"),
        ("accepted as text", {"accepted": "yes"}, "accepted"),
        ("accepted as number", {"accepted": 1}, "accepted"),
        ("rating 0", {"accepted": True, "rating": 0}, "rating"),
        ("rating 6", {"accepted": True, "rating": 6}, "rating"),
        ("rating as text", {"accepted": True, "rating": "5"}, "rating"),
        ("rating as float", {"accepted": True, "rating": 4.5}, "rating"),
        ("reject without comment", {"accepted": False}, "comment"),
        ("reject with blank comment", {"accepted": False, "comment": " "}, "comment"),
        ("comment too long", {"accepted": True, "comment": "x" * 5001}, "comment"),
        ("comment as number", {"accepted": True, "comment": 5}, "comment"),
    ]:
        cases.append(Case(f"feedback {label}", "requester", "POST", feedback, body, field=field))
    for label, body, field in [
        ("agent missing", {}, "agent"),
        ("agent as number", {"agent": 5}, "agent"),
        ("unknown agent", {"agent": "nobody"}, "agent"),
        ("agent of another team", {"agent": "olga"}, "agent"),
        ("a requester as agent", {"agent": "alice"}, "agent"),
        ("force as text", {"agent": "otto", "force": "yes"}, "force"),
        ("force as number", {"agent": "otto", "force": 1}, "force"),
    ]:
        cases.append(Case(f"assign {label}", "supervisor", "POST", assign, body, field=field))
    world.run(cases)


def test_provisioning_and_configuration_refuse_bad_fields(world):
    def user(body, field):
        base = {"username": "newbie", "password": "Long-enough-pass-1", "role": "agent",
                "teams": ["Refunds"]}
        return Case(f"users {field} {body}", "admin", "POST", "/users/", {**base, **body},
                    field=field)

    def ttype(body, field, method="POST", path="/ticket-types/"):
        base = {} if method == "PATCH" else {"slug": "new", "name": "New", "team": "Refunds",
                                             "time_limit_minutes": 5}
        return Case(f"{method} ticket-types {field} {body}", "admin", method, path,
                    {**base, **body}, field=field)

    cases = [
        Case("token without password", None, "POST", "/auth/token/", {"username": "alice"},
             field="password"),
        Case("token with a numeric username", None, "POST", "/auth/token/",
             {"username": 5, "password": "x"}, field="username"),
        Case("token with wrong credentials", None, "POST", "/auth/token/",
             {"username": "alice", "password": "wrong"}),
        Case("team name missing", "admin", "POST", "/teams/", {}, field="name"),
        Case("team name a number", "admin", "POST", "/teams/", {"name": 5}, field="name"),
        Case("team name too long", "admin", "POST", "/teams/", {"name": "x" * 101}, field="name"),
        Case("team name taken", "admin", "POST", "/teams/", {"name": "Refunds"}, field="name"),
        user({"username": "alice"}, "username"),
        user({"username": 5}, "username"),
        user({"username": "x" * 151}, "username"),
        user({"password": "123"}, "password"),
        user({"password": "password"}, "password"),
        user({"password": 12345678901}, "password"),
        user({"role": "god"}, "role"),
        user({"teams": "Refunds"}, "teams"),
        user({"teams": ["Nowhere"]}, "teams"),
        user({"teams": [5]}, "teams"),
        user({"capacity": "x"}, "capacity"),
        user({"capacity": -1}, "capacity"),
        user({"capacity": True}, "capacity"),
        user({"email": "not-an-address"}, "email"),
        user({"email": 5}, "email"),
        ttype({"slug": "refund"}, "slug"),
        ttype({"slug": "Bad Slug!"}, "slug"),
        ttype({"slug": [5]}, "slug"),
        ttype({"team": "Nowhere"}, "team"),
        ttype({"time_limit_minutes": 0}, "time_limit_minutes"),
        ttype({"time_limit_minutes": "ten"}, "time_limit_minutes"),
        ttype({"default_priority": 9}, "default_priority"),
        ttype({"on_breach": "explode"}, "on_breach"),
        ttype({"channels": ["fax"]}, "channels.0"),
        ttype({"channels": "email"}, "channels"),
        ttype({"callback_url": "not a url"}, "callback_url"),
        ttype({"callback_attempts": 0}, "callback_attempts"),
        ttype({"callback_timeout_seconds": 1000}, "callback_timeout_seconds"),
        ttype({"fields": [{"name": "Bad Name", "kind": "text"}]}, "fields.0.name"),
        ttype({"fields": [{"name": "c", "kind": "choice"}]}, "fields.0.choices"),
        ttype({"fields": [{"name": "k", "kind": "colour"}]}, "fields.0.kind"),
        ttype({"fields": "none"}, "fields"),
        ttype({"time_limit_minutes": -1}, "time_limit_minutes", "PATCH", "/ticket-types/refund/"),
        ttype({"team": "Nowhere"}, "team", "PATCH", "/ticket-types/refund/"),
        Case("patch an unknown slug", "admin", "PATCH", "/ticket-types/no-such/", {"name": "x"},
             404, "not_found"),
        Case("get an unknown slug", "requester", "GET", "/ticket-types/no-such/", None, 404,
             "not_found"),
        Case("agent status unknown", "agent_user", "PATCH", "/agents/me/", {"status": "asleep"},
             field="status"),
        Case("agent status a number", "agent_user", "PATCH", "/agents/me/", {"status": 1},
             field="status"),
        Case("agent status missing", "agent_user", "PATCH", "/agents/me/", {}, field="status"),
    ]
    world.run(cases)


def test_unreadable_filters_are_invalid(world):
    cases = []
    for path, params, field in [
        ("/tickets/", {"priority": "abc"}, "priority"),
        ("/tickets/", {"priority": "9"}, "priority"),
        ("/tickets/", {"state": "lost"}, "state"),
        ("/tickets/", {"breached": "maybe"}, "breached"),
        ("/tickets/", {"ordering": "title"}, "ordering"),
        ("/tickets/", {"cursor": "not-a-cursor"}, "cursor"),
        ("/tickets/", {"cursor": "WzAsICJ4Il0"}, "cursor"),  # [0, "x"]
        ("/tickets/", {"ordering": "due_at", "cursor": "WyJ4IiwgMV0"}, "cursor"),
        ("/notifications/", {"unread": "maybe"}, "unread"),
        ("/notifications/", {"cursor": "%%%"}, "cursor"),
        ("/deliveries/", {"status": "lost"}, "status"),
        ("/deliveries/", {"ticket": "abc"}, "ticket"),
        ("/kpi/", {"group_by": "planet"}, "group_by"),
        ("/kpi/", {"from": "2026-13-40"}, "from"),
        ("/kpi/", {"from": "2026-02-01", "to": "2026-01-01"}, "from"),
    ]:
        who = "supervisor"
        cases.append(Case(f"GET {path} {params}", who, "GET", path, params, 400, "invalid", field))
    world.run(cases)


def test_null_characters_are_bad_input_not_a_database_error(world):
    """PostgreSQL text cannot hold U+0000: such input must be a 400, never a 500."""
    t = world.tid
    nul = "a\x00b"
    cases = [
        Case("token username", None, "POST", "/auth/token/", {"username": nul, "password": "x"}),
        Case("team name", "admin", "POST", "/teams/", {"name": nul}),
        Case("user name", "admin", "POST", "/users/", {"username": nul, "password": "Long-pass-1x",
                                                       "role": "requester"}),
        Case("type slug", "requester", "POST", "/tickets/", {"type": nul, "title": "x"}),
        Case("ticket title", "requester", "POST", "/tickets/", {"type": "refund", "title": nul}),
        Case("key of data", "requester", "POST", "/tickets/",
             {"type": "refund", "title": "x", "data": {nul: "x"}}),
        Case("assign agent", "supervisor", "POST", f"/tickets/{t('pooled')}/assign/",
             {"agent": nul}),
        Case("comment body", "requester", "POST", f"/tickets/{t('pooled')}/comments/",
             {"body": nul}),
        Case("filter type", "supervisor", "GET", "/tickets/", {"type": nul}, field="type"),
        Case("filter assignee", "supervisor", "GET", "/tickets/", {"assignee": nul},
             field="assignee"),
    ]
    world.run(cases)


# -- every transition from every wrong state ------------------------------------------------

# action: (who, valid body, the states it is allowed from, checks the assignee)
ACTIONS = {
    "lock": ("agent_user", {"minutes": 5}, {"assigned", "locked"}, True),
    "unlock": ("agent_user", {}, {"locked"}, True),
    "handover": ("agent_user", {"reason": "Busy"}, {"assigned", "locked"}, True),
    "resolve": ("agent_user", {"result": "Done"}, {"assigned", "locked"}, True),
    "feedback": ("requester", {"accepted": True, "rating": 5}, {"resolved"}, False),
    "cancel": ("requester", {"reason": "Changed my mind"},
               {"callback", "pooled", "assigned", "locked", "reopened"}, False),
    "assign": ("supervisor", {"agent": "otto"}, {"pooled", "assigned", "locked", "reopened"},
               False),
    "comments": ("requester", {"body": "Any news?"},
                 {"callback", "pooled", "assigned", "locked", "reopened"}, False),
}
EXTRA_ACTORS = {  # the same actions by the other roles that may call them
    "unlock": ("supervisor", {}, {"locked"}, False),
    "cancel": ("supervisor", {}, {"callback", "pooled", "assigned", "locked", "reopened"}, False),
    "comments": ("agent_user", {"body": "Update"},
                 {"callback", "pooled", "assigned", "locked", "reopened"}, False),
}


def test_every_transition_from_every_wrong_state_is_a_conflict(world):
    cases = []
    agent = world.users["agent_user"]
    plans = [(a, spec) for a, spec in ACTIONS.items()] + list(EXTRA_ACTORS.items())
    for action, (who, body, allowed, assignee_action) in plans:
        for state, ticket in world.t.items():
            if state in allowed:
                continue
            code = "invalid_transition"
            if assignee_action and ticket.assignee_id != agent.pk:
                code = "not_assignee"
            cases.append(Case(f"{who} {action} on {state}", who, "POST",
                              f"/tickets/{ticket.pk}/{action}/", body, 409, code))
    # Another agent of the team is never the assignee, whatever the state.
    for action in ("lock", "unlock", "handover", "resolve"):
        _, body, _, _ = ACTIONS[action]
        for state, ticket in world.t.items():
            cases.append(Case(f"other agent {action} on {state}", "other_agent_user", "POST",
                              f"/tickets/{ticket.pk}/{action}/", body, 409, "not_assignee"))
    world.run(cases)


def test_the_allowed_transitions_of_the_matrix_do_succeed(world):
    """The matrix's valid bodies are valid: from an allowed state each one works
    (so the refusals above are about the state, not the body)."""
    agent, requester = world.users["agent_user"], world.users["requester"]
    plain = world.t["pooled"].ticket_type
    for action, (who, body, _, _) in list(ACTIONS.items()) + list(EXTRA_ACTORS.items()):
        state = {"feedback": "resolved", "unlock": "assigned", "assign": None,
                 "cancel": None, "comments": None}.get(action, "assigned")
        ticket = TicketFactory(ticket_type=plain, requester=requester, state=state,
                               assignee=agent if state else None)
        if action == "unlock":
            ticket_lock_acquire(ticket_id=ticket.pk, by=agent, minutes=5)
        response = world.api[who].post(f"/tickets/{ticket.pk}/{action}/", body)
        assert response.status_code in (200, 201), (action, who, response.content[:300])


# -- other users' tickets, and roles that may not act -----------------------------------------


def test_other_users_tickets_are_not_found(world):
    outside = world.outside.pk
    cases = []
    for who, actions in [
        ("requester", ["feedback", "cancel", "comments"]),
        ("agent_user", ["lock", "unlock", "handover", "resolve", "notes", "comments"]),
        ("supervisor", ["unlock", "cancel", "assign", "notes", "comments"]),
    ]:
        cases.append(Case(f"{who} reads another's ticket", who, "GET", f"/tickets/{outside}/",
                          None, 404, "not_found"))
        for action in actions:
            body = ACTIONS.get(action, (None, {"body": "x"}))[1]
            cases.append(Case(f"{who} {action} another's ticket", who, "POST",
                              f"/tickets/{outside}/{action}/", body, 404, "not_found"))
            # A bad body on a ticket one may not see is still a 404: nothing leaks.
            cases.append(Case(f"{who} {action} another's ticket with a bad body", who, "POST",
                              f"/tickets/{outside}/{action}/", {"minutes": "x", "body": 5,
                                                                  "reason": 5, "result": 5,
                                                                  "accepted": "x", "agent": 5},
                              404, "not_found"))
    for who in ("integration", "other_requester"):
        cases.append(Case(f"{who} reads alice's ticket", who, "GET",
                          f"/tickets/{world.tid('pooled')}/", None, 404, "not_found"))
    for who, action in (("requester", "cancel"), ("agent_user", "notes"),
                        ("supervisor", "assign")):
        for path in ("/tickets/999999/", f"/tickets/999999/{action}/",
                     "/tickets/99999999999999999/", "/tickets/123456789012345678901234567890/"):
            cases.append(Case(f"{who} {path}", who, "GET" if path.count("/") == 3 else "POST",
                              path, {}, 404, "not_found"))
    cases.append(Case("read another's notification", "requester", "POST",
                      f"/notifications/{world.other_notification.pk}/read/", {}, 404,
                      "not_found"))
    world.run(cases)


def test_roles_that_may_not_act_are_forbidden(world):
    t = world.tid
    cases = []
    for who, action, state in [
        ("requester", "lock", "assigned"), ("requester", "handover", "assigned"),
        ("requester", "resolve", "assigned"), ("requester", "assign", "pooled"),
        ("requester", "notes", "pooled"), ("requester", "unlock", "locked"),
        ("agent_user", "feedback", "resolved"), ("agent_user", "cancel", "pooled"),
        ("agent_user", "assign", "pooled"),
        ("supervisor", "lock", "assigned"), ("supervisor", "resolve", "assigned"),
        ("supervisor", "handover", "assigned"), ("supervisor", "feedback", "resolved"),
        ("integration", "lock", "assigned"), ("integration", "cancel", "pooled"),
        ("integration", "comments", "pooled"), ("integration", "notes", "pooled"),
    ]:
        body = ACTIONS.get(action, (None, {"body": "x"}))[1]
        cases.append(Case(f"{who} {action}", who, "POST", f"/tickets/{t(state)}/{action}/", body,
                          403, "permission_denied"))
        # The role is checked before the body.
        cases.append(Case(f"{who} {action} with a bad body", who, "POST",
                          f"/tickets/{t(state)}/{action}/", {"minutes": "x", "body": 5,
                                                              "reason": 5, "result": 5,
                                                              "accepted": "x", "agent": 5},
                          403, "permission_denied"))
    for who, method, path, body in [
        ("agent_user", "POST", "/tickets/", {"type": "refund", "title": "x"}),
        ("supervisor", "POST", "/tickets/", {"type": "refund", "title": "x"}),
        ("supervisor", "POST", "/teams/", {"name": "Ops"}),
        ("supervisor", "POST", "/users/", {"username": "u", "password": "Long-pass-91x",
                                           "role": "agent"}),
        ("agent_user", "POST", "/ticket-types/", {"slug": "s", "name": "S", "team": "Refunds",
                                                  "time_limit_minutes": 5}),
        ("requester", "PATCH", "/ticket-types/refund/", {"name": "Mine now"}),
        ("requester", "GET", "/agents/me/", None),
        ("requester", "PATCH", "/agents/me/", {"status": "online"}),
        ("supervisor", "POST", "/agents/me/next/", {}),
        ("requester", "POST", "/agents/me/next/", {}),
        ("agent_user", "GET", "/deliveries/", None),
        ("requester", "POST", "/deliveries/1/retry/", {}),
        ("agent_user", "GET", "/kpi/", None),
        ("requester", "GET", "/kpi/", None),
    ]:
        cases.append(Case(f"{who} {method} {path}", who, method, path, body, 403,
                          "permission_denied"))
    world.run(cases)


def test_anonymous_and_bad_tokens_are_refused(world):
    cases = []
    paths = [("GET", "/tickets/"), ("POST", "/tickets/"), ("GET", "/ticket-types/"),
             ("GET", f"/tickets/{world.tid('pooled')}/"),
             ("POST", f"/tickets/{world.tid('pooled')}/cancel/"), ("GET", "/agents/me/"),
             ("POST", "/agents/me/next/"), ("GET", "/notifications/"),
             ("POST", "/notifications/read-all/"), ("GET", "/deliveries/"),
             ("POST", "/deliveries/1/retry/"), ("POST", "/teams/"), ("GET", "/kpi/")]
    for method, path in paths:
        cases.append(Case(f"anonymous {method} {path}", None, method, path, None, 401,
                          "not_authenticated"))
    world.run(cases)
    world.api["bad"] = Api()
    world.api["bad"].client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    world.run([Case(f"bad token {m} {p}", "bad", m, p, None, 401, "authentication_failed")
               for m, p in paths])


def test_pull_next_while_not_online_is_a_conflict(world):
    from agents.models import Agent

    Agent.objects.filter(user=world.users["agent_user"]).update(status=Agent.Status.AWAY)
    world.run([Case("pull while away", "agent_user", "POST", "/agents/me/next/", {}, 409,
                    "agent_not_online")])


def test_the_matrix_covers_every_endpoint():
    """A new endpoint in tickets/api/urls.py must be added to the matrix."""
    from tickets.api import urls

    routes = {str(p.pattern) for p in urls.v1}
    covered = {
        "auth/token/", "health/", "teams/", "users/", "ticket-types/", "ticket-types/<slug:slug>/",
        "tickets/", "tickets/<id:pk>/", "tickets/<id:pk>/lock/", "tickets/<id:pk>/unlock/",
        "tickets/<id:pk>/handover/", "tickets/<id:pk>/resolve/", "tickets/<id:pk>/feedback/",
        "tickets/<id:pk>/cancel/", "tickets/<id:pk>/assign/", "tickets/<id:pk>/notes/",
        "tickets/<id:pk>/comments/", "agents/me/", "agents/me/next/", "notifications/",
        "notifications/read-all/", "notifications/<id:pk>/read/", "deliveries/",
        "deliveries/<id:pk>/retry/", "kpi/",
    }
    assert routes == covered, routes ^ covered
