"""The real system as subprocesses: gunicorn, a Celery worker and beat on
PostgreSQL and Redis, each with its own fresh database and broker db.

Nothing here uses pytest-django's database fixtures: the test talks HTTP to the
processes, exactly as a client would. Settings for the run (all optional)::

    ORDERLY_SYSTEM_PG_URL     PostgreSQL server to create the throw-away database on
                              (default: DATABASE_URL's server when it is PostgreSQL,
                              else postgres://postgres@127.0.0.1:5432)
    ORDERLY_SYSTEM_REDIS_URL  Redis database the run owns and flushes (default: the first
                              of dbs 7-15 on ORDERLY_SYSTEM_REDIS_SERVER, itself by default
                              redis://127.0.0.1:6379, that no other run has claimed)
    ORDERLY_SYSTEM_KEEP_LOGS  1: keep the run's logs (and print where) even when it passes

On failure the tail of every process log is printed; the logs stay in the
run's temporary directory, whose path is printed too.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.system.helpers import ADMIN_PASSWORD, ADMIN_USERNAME, Api, wait_for

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
PORTS = range(8200, 8300)
REDIS_DBS = range(7, 16)
CLAIM_KEY = "orderly-system-test-run"
CLAIM_SECONDS = 1800
START_TIMEOUT = 60
LOG_TAIL_LINES = 60


def _bin(name: str) -> str:
    path = VENV_BIN / name
    return str(path) if path.exists() else name


def _pg_server_url() -> str:
    explicit = os.environ.get("ORDERLY_SYSTEM_PG_URL")
    if explicit:
        return explicit
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith(("postgres://", "postgresql://")):
        return database_url
    return "postgres://postgres@127.0.0.1:5432"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def _free_port() -> int:
    candidates = list(PORTS)
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"No free port in {PORTS.start}-{PORTS.stop - 1}.")


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path
    oneshot: bool = False  # a command that ends by itself (not a server)


@dataclass
class System:
    base_url: str
    tmp: Path
    env: dict[str, str]
    database: str
    procs: list[Proc] = field(default_factory=list)

    def api(self, token: str | None = None) -> Api:
        return Api(self.base_url, token)

    def log_of(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.oneshot:
                continue
            code = proc.popen.poll()
            if code is not None:
                raise AssertionError(f"{proc.name} exited with code {code}:\n{tail(proc.log)}")

    def print_logs(self) -> None:
        print(f"\n==== system test logs in {self.tmp} ====")
        for log in sorted(self.tmp.glob("*.log")):
            print(f"\n---- tail of {log.name} ----\n{tail(log)}")


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _finish(proc: Proc, timeout: float) -> None:
    """Wait for a one-off command (migrate, bootstrap) and require success."""
    try:
        code = proc.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{proc.name} did not finish in {timeout:.0f}s:\n{tail(proc.log)}") from None
    if code != 0:
        raise AssertionError(f"{proc.name} failed ({code}):\n{tail(proc.log)}")


def _start(system: System, name: str, args: list[str], oneshot: bool = False) -> Proc:
    log = system.log_of(name)
    out = log.open("ab")
    try:
        popen = subprocess.Popen(args, cwd=ROOT, env=system.env, stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    finally:
        out.close()  # the child holds its own copy
    proc = Proc(name, popen, log, oneshot)
    system.procs.append(proc)
    return proc


def _stop_all(procs: list[Proc], grace: float = 10) -> None:
    """Terminate each subprocess's process group (each leads its own session):
    SIGTERM to all, a shared grace period, then SIGKILL for what is left
    (gunicorn and prefork children included)."""
    for proc in procs:
        if proc.popen.poll() is None:
            try:
                os.killpg(proc.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in procs:
        try:
            os.killpg(proc.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            print(f"{proc.name} (pid {proc.popen.pid}) did not end")


def _pg_admin(server_url: str):
    import psycopg

    return psycopg.connect(_with_database(server_url, "postgres"), autocommit=True,
                           connect_timeout=5)


def _create_database(server_url: str, name: str) -> None:
    from psycopg import sql

    with _pg_admin(server_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop_database(server_url: str, name: str) -> None:
    from psycopg import sql

    with _pg_admin(server_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def _claim_redis(run_id: str) -> str:
    """A Redis database of this run's own, emptied.

    Two runs sharing a broker db would consume each other's tasks (and flush
    each other's queues), so each run claims a free db from REDIS_DBS with a
    key that expires, and flushes it when it ends.
    """
    import redis

    explicit = os.environ.get("ORDERLY_SYSTEM_REDIS_URL")
    if explicit:
        _flush_redis(explicit)
        return explicit
    server = os.environ.get("ORDERLY_SYSTEM_REDIS_SERVER", "redis://127.0.0.1:6379").rstrip("/")
    for db in REDIS_DBS:
        url = f"{server}/{db}"
        client = redis.Redis.from_url(url, socket_timeout=5)
        try:
            if client.set(CLAIM_KEY, run_id, nx=True, ex=CLAIM_SECONDS):
                for key in client.scan_iter(count=1000):  # what a killed run left behind
                    if key != CLAIM_KEY.encode():
                        client.delete(key)
                return url
        finally:
            client.close()
    raise RuntimeError(f"Every Redis db in {REDIS_DBS} is claimed by another system test run.")


def _wait_for_log(system: System, proc: Proc, needle: str, timeout: float) -> None:
    def seen() -> bool:
        system.check_alive()
        try:
            return needle in proc.log.read_text(errors="replace")
        except OSError:
            return False

    wait_for(seen, timeout, f"{proc.name} to log {needle!r}")


_FAILED = pytest.StashKey[bool]()


def pytest_runtest_makereport(item, call):
    """Remember each phase's outcome so the fixture knows whether to print logs."""
    if call.when in ("setup", "call") and call.excinfo is not None:
        item.stash[_FAILED] = True



@pytest.fixture
def system(request):
    """Start web, worker and beat on a fresh PostgreSQL database and Redis db.

    Yields a ``System``; tears everything down whatever happens.
    """
    pg_server = _pg_server_url()
    started = time.monotonic()
    run_id = uuid.uuid4().hex[:12]
    redis_url = "(unclaimed)"
    tmp = Path(tempfile.mkdtemp(prefix="orderly-system-"))
    database = f"orderly_system_{run_id}"
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        # pytest-django points DJANGO_SETTINGS_MODULE at the test settings (memory broker):
        # the real processes run the real settings.
        if not key.startswith(("DJANGO_", "CELERY_", "ORDERLY_")) and key != "DATABASE_URL"
    }
    env.update({
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "DATABASE_URL": _with_database(pg_server, database),
        "ORDERLY_VAR_DIR": str(tmp / "var"),
        "ORDERLY_SWEEP_SECONDS": "1",
        "ORDERLY_SECONDS_PER_MINUTE": "1",
        "ORDERLY_AWAY_GRACE_MINUTES": "2",
        "DEBUG": "1",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    system = System(base_url=f"http://127.0.0.1:{port}", tmp=tmp, env=env, database=database)
    created = False
    try:
        try:
            redis_url = _claim_redis(run_id)
            _create_database(pg_server, database)
            created = True
        except Exception as exc:  # noqa: BLE001 - say plainly what is missing
            pytest.fail(f"The system test needs PostgreSQL ({pg_server}) and Redis: {exc}")
        env["CELERY_BROKER_URL"] = redis_url
        # Gunicorn and the worker need no tables to start: they boot while the schema
        # is made. Beat (whose sweeps query the tables) waits for migrate.
        migrate = _start(system, "migrate", [PYTHON, "manage.py", "migrate", "--noinput",
                                             "-v", "0"], oneshot=True)
        _start(system, "web", [
            _bin("gunicorn"), "helpdesk.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}",
            "--timeout", "30", "--access-logfile", "-", "--error-logfile", "-",
        ])
        worker = _start(system, "worker", [
            _bin("celery"), "-A", "helpdesk", "worker", "--loglevel=INFO", "--concurrency=2",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", "celery",
        ])
        _finish(migrate, timeout=120)
        # The one bootstrap step outside the API: an admin (a staff superuser with the
        # supervisor role).
        bootstrap = _start(system, "bootstrap", [
            PYTHON, "manage.py", "shell", "-c",
            "from agents.models import User; "
            f"User.objects.create_superuser(username={ADMIN_USERNAME!r}, "
            f"email='admin@example.com', password={ADMIN_PASSWORD!r}, role='supervisor')",
        ], oneshot=True)
        beat = _start(system, "beat", [
            # The schedule file lands in ORDERLY_VAR_DIR (CELERY_BEAT_SCHEDULE_FILENAME).
            _bin("celery"), "-A", "helpdesk", "beat", "--loglevel=INFO",
        ])
        _wait_for_log(system, worker, " ready.", START_TIMEOUT)
        _wait_for_log(system, beat, "beat: Starting...", START_TIMEOUT)
        # Beat keeps its schedule where ORDERLY_VAR_DIR says (CELERY_BEAT_SCHEDULE_FILENAME).
        wait_for(lambda: list((tmp / "var").glob("celerybeat-schedule*")), START_TIMEOUT,
                 "beat to write its schedule file under ORDERLY_VAR_DIR")
        anonymous = system.api()

        def web_up() -> bool:
            system.check_alive()
            return anonymous.reachable("/api/v1/health/")

        wait_for(web_up, START_TIMEOUT, f"gunicorn to answer on {system.base_url}")
        _finish(bootstrap, timeout=START_TIMEOUT)
        system.procs.remove(migrate)
        system.procs.remove(bootstrap)
        print(f"\n  system up in {time.monotonic() - started:.1f}s: {system.base_url}, "
              f"database {database}, broker {redis_url}")
    except BaseException:  # also KeyboardInterrupt: never leave processes behind
        _teardown(system, pg_server, redis_url, created, failed=True)
        raise
    try:
        yield system
    finally:
        _teardown(system, pg_server, redis_url, created,
                  failed=request.node.stash.get(_FAILED, False))


def _teardown(system: System, pg_server: str, redis_url: str, created: bool,
              failed: bool) -> None:
    """Stop every process, drop the database, flush the broker db; logs on failure."""
    _stop_all(system.procs)
    if failed:
        system.print_logs()
    if created:
        try:
            _drop_database(pg_server, system.database)
        except Exception as exc:  # noqa: BLE001 - report, do not mask the test's outcome
            print(f"could not drop database {system.database}: {exc}")
    if redis_url.startswith("redis"):
        try:
            _flush_redis(redis_url)
        except Exception as exc:  # noqa: BLE001
            print(f"could not flush {redis_url}: {exc}")
    if failed or os.environ.get("ORDERLY_SYSTEM_KEEP_LOGS") == "1":
        print(f"system test logs kept in {system.tmp}")
    else:
        shutil.rmtree(system.tmp, ignore_errors=True)
