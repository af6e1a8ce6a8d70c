"""API fixtures: a client per persona, signed in with ``Authorization: Token``.

The personas come from ``tests/conftest.py``. ``as_(user)`` gives an
``APIClient`` for any user; the named fixtures cover the usual cast.
"""
from __future__ import annotations

from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from agents.models import User

V1 = "/api/v1"


class Api:
    """A thin JSON client: ``api.post("/tickets/", {...})`` answers a Response."""

    def __init__(self, user: User | None = None, token: str | None = None) -> None:
        self.user = user
        self.client = APIClient()
        if user is not None and token is None:
            token = Token.objects.get_or_create(user=user)[0].key
        if token is not None:
            self.client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    @staticmethod
    def url(path: str) -> str:
        return path if path.startswith("/api/") else V1 + path

    def get(self, path: str, params: dict[str, Any] | None = None, **extra: Any):
        return self.client.get(self.url(path), params or {}, **extra)

    def post(self, path: str, data: Any = None, **extra: Any):
        if data is None:
            data = {}
        return self.client.post(self.url(path), data, format="json", **extra)

    def patch(self, path: str, data: Any = None, **extra: Any):
        return self.client.patch(self.url(path), data if data is not None else {}, format="json",
                                 **extra)

    def raw(self, method: str, path: str, body: bytes | str,
            content_type: str = "application/json", **extra: Any):
        """Send ``body`` as is (malformed JSON, huge bodies)."""
        call = getattr(self.client, method.lower())
        return call(self.url(path), body, content_type=content_type, **extra)


@pytest.fixture(autouse=True)
def _frozen_clock(clock):
    """Every API test runs on the frozen clock (``clock`` moves it)."""
    return clock


@pytest.fixture
def as_(db):
    def make(user: User | None = None, token: str | None = None) -> Api:
        return Api(user, token)

    return make


@pytest.fixture
def anon(db) -> Api:
    return Api()


@pytest.fixture
def requester_api(requester) -> Api:
    return Api(requester)


@pytest.fixture
def other_requester_api(other_requester) -> Api:
    return Api(other_requester)


@pytest.fixture
def agent_api(agent_user) -> Api:
    return Api(agent_user)


@pytest.fixture
def other_agent_api(other_agent_user) -> Api:
    return Api(other_agent_user)


@pytest.fixture
def outside_agent_api(outside_agent_user) -> Api:
    return Api(outside_agent_user)


@pytest.fixture
def supervisor_api(supervisor) -> Api:
    return Api(supervisor)


@pytest.fixture
def outside_supervisor_api(outside_supervisor) -> Api:
    return Api(outside_supervisor)


@pytest.fixture
def integration_api(integration) -> Api:
    return Api(integration)


@pytest.fixture
def admin_user(db) -> User:
    """A Django staff superuser: the only one who may provision."""
    return User.objects.create_user(username="root", password="x-admin-pass-0",
                                    is_staff=True, is_superuser=True)


@pytest.fixture
def admin_api(admin_user) -> Api:
    return Api(admin_user)


@pytest.fixture
def small_pages(settings):
    settings.ORDERLY_PAGE_SIZE = 2
    return 2


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    """The API's error format: ``{"code", "detail", ...}``; returns the body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    if "fields" in body:
        assert_fields_shape(body["fields"])
    return body


def assert_fields_shape(fields: Any) -> None:
    assert isinstance(fields, dict) and fields
    for name, messages in fields.items():
        assert isinstance(name, str)
        assert isinstance(messages, list) and messages, (name, messages)
        assert all(isinstance(m, str) and m for m in messages), (name, messages)


def assert_invalid(response, *field_names: str) -> dict[str, list[str]]:
    """400 ``invalid`` naming (at least) these fields; returns ``fields``."""
    body = assert_error(response, 400, "invalid")
    assert "fields" in body, body
    for name in field_names:
        assert name in body["fields"], (name, body["fields"])
    return body["fields"]
