"""Nothing from outside can lose a ticket: the real processes (gunicorn, a Celery
worker, beat) on PostgreSQL and a Redis of the test's own, through a burst of
tickets -- some of a callback type whose endpoint is slow -- while the worker
is killed with SIGKILL and restarted, Redis is killed and restarted, and beat is
stopped and started again. Afterwards every ticket has reached the state the
rules say, exactly once: no duplicate events, no duplicate deliveries, none lost.

The test starts its own ``redis-server`` on a free port (never the machine's
shared Redis) so that it can kill it. The ``system`` fixture (conftest.py)
reads the broker URL from ORDERLY_SYSTEM_REDIS_URL, which the test points at
that server before the processes start.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.system.conftest import _bin, _start
from tests.system.helpers import ADMIN_PASSWORD, ADMIN_USERNAME, Api, ApiError, wait_for

pytestmark = pytest.mark.system

PASSWORD = "Orderly-resilience-pass-57"
SLOW_SECONDS = 1.5  # the callback endpoint thinks this long
CALLBACK_ATTEMPTS = 3
PLAIN, RESOLVE, AGENT, FAIL = "plain", "resolve", "agent", "fail"
# The burst: (kind, how many); callback tickets say in their title what the endpoint answers.
BURST = [(PLAIN, 14), (RESOLVE, 4), (AGENT, 4), (FAIL, 4)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server this test starts, kills (-9) and restarts on one port."""

    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/9"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("The resilience test needs redis-server on PATH.")
        log = (self.tmp / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.tmp)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        import redis

        def up() -> bool:
            try:
                return redis.Redis(port=self.port, socket_timeout=1).ping()
            except redis.RedisError:
                return False

        wait_for(up, 15, f"redis-server on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


class SlowEndpoint:
    """The callback-able type's other system: slow, and it answers by the title."""

    def __init__(self) -> None:
        self.posts: dict[int, int] = {}
        self.hooks: list[tuple[int, str]] = []
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ticket = body["ticket"]
                status, answer = 200, {"ok": True}
                if self.path == "/hook":
                    with endpoint.lock:
                        endpoint.hooks.append((ticket["id"], body["event"]))
                else:
                    with endpoint.lock:
                        endpoint.posts[ticket["id"]] = endpoint.posts.get(ticket["id"], 0) + 1
                    time.sleep(SLOW_SECONDS)
                    kind = ticket["title"].split(" ")[0]
                    if kind == RESOLVE:
                        answer = {"outcome": "resolved", "result": "Done by the other system."}
                    elif kind == AGENT:
                        answer = {"outcome": "needs_agent", "note": "A human, please."}
                    else:
                        status, answer = 500, {"error": "down"}
                raw = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def endpoint():
    server = SlowEndpoint()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def resilient_system(own_redis, endpoint, monkeypatch, request):
    monkeypatch.setenv("ORDERLY_SYSTEM_REDIS_URL", own_redis.url)
    return request.getfixturevalue("system")


def _proc(system, name):
    return next(p for p in system.procs if p.name == name)


def _wait_for_log(system, proc, needle: str, timeout: float) -> None:
    def seen() -> bool:
        system.check_alive()
        return needle in proc.log.read_text(errors="replace")

    wait_for(seen, timeout, f"{proc.name} to log {needle!r}")


def _stop(system, name: str) -> None:
    """A polite stop (SIGTERM), as a deploy would do it."""
    proc = _proc(system, name)
    try:
        os.killpg(proc.popen.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.popen.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(timeout=5)
    system.procs.remove(proc)


def _kill_hard(system, name) -> None:
    """SIGKILL the whole process group (a worker and its prefork children)."""
    proc = _proc(system, name)
    try:
        os.killpg(proc.popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.popen.wait(timeout=10)
    system.procs.remove(proc)


def _worker_args() -> list[str]:
    return [_bin("celery"), "-A", "helpdesk", "worker", "--loglevel=INFO", "--concurrency=2",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", "celery"]


def _provision(system, endpoint) -> dict[str, Api]:
    anonymous = system.api()
    token = anonymous.post("/api/v1/auth/token/",
                           {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})["token"]
    admin = system.api(token)
    admin.post("/api/v1/teams/", {"name": "Desk"}, expect=201)
    clients = {}
    for username, role in [("rita", "requester"), ("ava", "agent"), ("ben", "agent"),
                           ("sue", "supervisor")]:
        body = {"username": username, "password": PASSWORD, "email": f"{username}@example.com",
                "role": role, "teams": [] if role == "requester" else ["Desk"]}
        if role == "agent":
            body["capacity"] = 30
        clients[username] = system.api(admin.post("/api/v1/users/", body, expect=201)["token"])
    # Limits long enough (10 configured minutes = 10 s... x60) that nothing breaches here.
    admin.post("/api/v1/ticket-types/", {
        "slug": "plain", "name": "Plain", "team": "Desk", "time_limit_minutes": 600,
        "channels": ["portal", "webhook"], "webhook_url": endpoint.url("/hook"),
        "secret": "hook-secret",
    }, expect=201)
    admin.post("/api/v1/ticket-types/", {
        "slug": "auto", "name": "Auto", "team": "Desk", "time_limit_minutes": 600,
        "callback_url": endpoint.url("/callback"), "secret": "cb-secret",
        "callback_attempts": CALLBACK_ATTEMPTS, "callback_backoff_seconds": 1,
        "callback_timeout_seconds": 5,
    }, expect=201)
    for agent in ("ava", "ben"):
        assert clients[agent].patch("/api/v1/agents/me/", {"status": "online"})["status"] \
            == "online"
    return clients


def _create(requester: Api, kind: str, n: int) -> tuple[str, int | None]:
    slug = "plain" if kind == PLAIN else "auto"
    for _ in range(20):  # a request the web could not finish is retried with its key
        try:
            ticket = requester.request("POST", "/api/v1/tickets/", {
                "type": slug, "title": f"{kind} {n}", "description": "burst"}, expect=201)
            return kind, ticket["id"]
        except ApiError as exc:
            if '"code":' in str(exc):
                raise
        except Exception:  # noqa: BLE001 - connection trouble while things restart
            pass
        time.sleep(0.5)
    return kind, None


def _all(api: Api, path: str) -> list[dict]:
    rows, url = [], path
    while url:
        page = api.get(url)
        rows += page["results"]
        url = page["next"] and page["next"].split("://", 1)[1].split("/", 1)[1]
        url = url and "/" + url
    return rows


EXPECTED = {  # kind -> (final state, the events that must appear exactly once)
    PLAIN: ("assigned", ["created", "pooled", "assigned"]),
    RESOLVE: ("resolved", ["created", "callback_started", "callback_resolved"]),
    AGENT: ("assigned", ["created", "callback_started", "callback_needs_agent", "pooled",
                         "assigned"]),
    FAIL: ("assigned", ["created", "callback_started", "callback_failed", "pooled",
                        "assigned"]),
}


def test_kills_and_restarts_lose_no_ticket_and_duplicate_nothing(resilient_system, own_redis,
                                                                   endpoint):
    system = resilient_system
    clients = _provision(system, endpoint)
    rita, sue = clients["rita"], clients["sue"]
    jobs = [(kind, n) for kind, count in BURST for n in range(count)]
    jobs = jobs[::2] + jobs[1::2]  # interleave the kinds
    half = len(jobs) // 2
    created: list[tuple[str, int | None]] = []

    with ThreadPoolExecutor(max_workers=6) as pool:
        created += pool.map(lambda job: _create(rita, *job), jobs[:half])
        # The worker dies mid-burst, with tasks in flight (a callback is slow).
        time.sleep(SLOW_SECONDS / 2)
        _kill_hard(system, "worker")
        later = pool.map(lambda job: _create(rita, *job), jobs[half:])
        # The broker dies too, while requests come in; beat is stopped.
        own_redis.kill()
        _stop(system, "beat")
        created += list(later)
        time.sleep(2)
    # Everything comes back: Redis (empty: every queued nudge is lost), a new worker, beat.
    own_redis.start()
    worker = _start(system, "worker2", _worker_args())
    _wait_for_log(system, worker, " ready.", 60)
    beat = _start(system, "beat2", [_bin("celery"), "-A", "helpdesk", "beat", "--loglevel=INFO"])
    _wait_for_log(system, beat, "beat: Starting...", 60)

    assert all(tid is not None for _, tid in created), created
    kinds = {tid: kind for kind, tid in created}
    assert len(kinds) == len(jobs), "one ticket per request, none twice"

    def settled():
        system.check_alive()
        tickets = {t["id"]: t for t in _all(sue, "/api/v1/tickets/")}
        settled.last = {tid: (kinds.get(tid), t["state"]) for tid, t in tickets.items()
                        if t["state"] != EXPECTED[kinds.get(tid, PLAIN)][0]}
        return tickets if not settled.last else None

    settled.last = None
    # The worst case: a failing callback waits for its lease (2 x 5 s + 5 s) after the
    # kill, then 3 slow attempts with 1 + 2 s backoff.
    tickets = wait_for(settled, 90, "every ticket to reach its state")
    assert set(tickets) == set(kinds), "no ticket lost, none extra"

    problems = []
    for tid, kind in kinds.items():
        detail = sue.ticket(tid)
        events = [e["kind"] for e in detail["events"]]
        for once in EXPECTED[kind][1]:
            if events.count(once) != 1:
                problems.append(f"#{tid} ({kind}): {once} x{events.count(once)} in {events}")
        others = {"callback_resolved", "callback_needs_agent", "callback_failed"} - set(
            EXPECTED[kind][1])
        if others & set(events):
            problems.append(f"#{tid} ({kind}): unexpected outcome in {events}")
        if kind != PLAIN and not 1 <= endpoint.posts.get(tid, 0) <= CALLBACK_ATTEMPTS:
            problems.append(f"#{tid} ({kind}): {endpoint.posts.get(tid)} callback posts")
        if kind == FAIL:
            failed = next(e for e in detail["events"] if e["kind"] == "callback_failed")
            if failed["details"]["attempt"] != CALLBACK_ATTEMPTS:
                problems.append(f"#{tid}: callback_failed after {failed['details']}")
    assert not problems, "\n".join(problems)

    # Webhooks: one delivery per event of the plain tickets, each sent, none twice.
    def delivered():
        rows = [d for d in _all(sue, "/api/v1/deliveries/") if d["channel"] == "webhook"]
        delivered.last = [d for d in rows if d["status"] != "sent"]
        return rows if not delivered.last else None

    delivered.last = None
    rows = wait_for(delivered, 75, "every webhook delivery to be sent")
    keys = [(d["ticket"], d["event"]) for d in rows]
    assert len(keys) == len(set(keys)), "a delivery recorded twice"
    plain_ids = {tid for tid, kind in kinds.items() if kind == PLAIN}
    assert set(keys) == {(tid, e) for tid in plain_ids for e in ("created", "pooled", "assigned")}
    # Every delivery reached the endpoint (at least once: a worker killed between the POST
    # and its record may send one again, which its attempt count then shows).
    assert set(endpoint.hooks) >= set(keys)
    resent = len(endpoint.hooks) - len(set(endpoint.hooks))
    assert resent <= sum(d["attempts"] - 1 for d in rows)
