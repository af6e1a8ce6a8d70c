"""Fixtures for the outside world: a local HTTP endpoint the test starts, and a
JSON API client per persona.

``endpoint`` is a real HTTP server (``http.server`` in a thread on 127.0.0.1,
a random port) that plays the other system: the test queues the answers it
gives (``endpoint.answer(200, {...})``, ``endpoint.always(500)``), and it
records every request it receives -- method, path, headers, raw body -- so
the test can check the body and verify the signature as the receiving side
would.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from agents.models import User

SECRET = "s3cret-shared-with-the-endpoint"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def signature_valid(self, secret: str = SECRET) -> bool:
        """What the receiving side does: HMAC-SHA256 of the raw body."""
        sent = self.headers.get("X-Orderly-Signature", "")
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(sent, expected)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Endpoint:
    """The other system. Answers are taken from a queue; once it is empty the
    ``default`` answer repeats."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.replies: deque[Reply] = deque()
        self.default = Reply(200, b'{"ok": true}', {"Content-Type": "application/json"})
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with endpoint.lock:
                    endpoint.received.append(Received(
                        self.command, self.path, {k: v for k, v in self.headers.items()}, body))
                    reply = endpoint.replies.popleft() if endpoint.replies else endpoint.default
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_POST = _handle
            do_GET = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/orderly") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, status: int = 200, body: Any = None, *, raw: bytes | None = None,
               headers: dict[str, str] | None = None, delay: float = 0.0) -> None:
        """Queue one answer (``body`` as JSON, or ``raw`` bytes as they are)."""
        self.replies.append(self._reply(status, body, raw, headers, delay))

    def always(self, status: int = 200, body: Any = None, *, raw: bytes | None = None,
               headers: dict[str, str] | None = None, delay: float = 0.0) -> None:
        """Give this answer to every request from now on."""
        self.replies.clear()
        self.default = self._reply(status, body, raw, headers, delay)

    @staticmethod
    def _reply(status, body, raw, headers, delay) -> Reply:
        if raw is None:
            raw = b"" if body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        return Reply(status, raw, hdrs, delay)

    def posts(self, path: str | None = None) -> list[Received]:
        return [r for r in self.received
                if r.method == "POST" and (path is None or r.path == path)]


@pytest.fixture
def endpoint():
    server = Endpoint()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


# -- the API as each persona ------------------------------------------------------

V1 = "/api/v1"


class Api:
    """A JSON client signed in with ``Authorization: Token``."""

    def __init__(self, user: User | None = None) -> None:
        self.user = user
        self.client = APIClient()
        if user is not None:
            key = Token.objects.get_or_create(user=user)[0].key
            self.client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    @staticmethod
    def url(path: str) -> str:
        return path if path.startswith("/api/") else V1 + path

    def get(self, path: str, params: dict[str, Any] | None = None):
        return self.client.get(self.url(path), params or {})

    def post(self, path: str, data: Any = None, **extra: Any):
        return self.client.post(self.url(path), {} if data is None else data, format="json",
                                **extra)

    def patch(self, path: str, data: Any = None):
        return self.client.patch(self.url(path), {} if data is None else data, format="json")

    def raw(self, method: str, path: str, body: bytes | str,
            content_type: str = "application/json", **extra: Any):
        return getattr(self.client, method.lower())(self.url(path), body,
                                                    content_type=content_type, **extra)


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (status, code, response.status_code,
                                            response.content[:500])
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    if "fields" in body:
        assert isinstance(body["fields"], dict) and body["fields"]
        for name, messages in body["fields"].items():
            assert isinstance(messages, list) and messages, (name, messages)
            assert all(isinstance(m, str) and m for m in messages), (name, messages)
    return body
