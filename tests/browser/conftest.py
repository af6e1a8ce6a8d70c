"""The real processes for the browser test: gunicorn, a Celery worker and beat
on a throw-away SQLite database and filesystem broker (ORDERLY_VAR_DIR in a
temporary directory), and Debian's chromium driven by Playwright.

Never ``playwright install``: the browser is /usr/bin/chromium.
"""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
PYTHON = str(BIN / "python") if (BIN / "python").exists() else sys.executable
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PORTS = range(8100, 8200)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "orderly-browser-pass-1"


def _bin(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else name


def _free_port() -> int:
    ports = list(PORTS)
    random.shuffle(ports)
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("No free port in 8100-8199.")


@dataclass
class Server:
    base_url: str
    tmp: Path
    procs: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def logs(self) -> str:
        out = []
        for log in sorted(self.tmp.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-40:]
            out.append(f"---- {log.name} ----\n" + "\n".join(lines))
        return "\n".join(out)


@pytest.fixture(scope="module")
def server():
    tmp = Path(tempfile.mkdtemp(prefix="orderly-browser-"))
    port = _free_port()
    env = dict(os.environ)
    # SQLite and the filesystem broker in the run's own directory, whatever
    # the caller's environment points at.
    for key in ("DATABASE_URL", "CELERY_BROKER_URL"):
        env.pop(key, None)
    env.update({
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "ORDERLY_VAR_DIR": str(tmp / "var"),
        "ORDERLY_SWEEP_SECONDS": "2",
        "DEBUG": "1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ORDERLY_SEED_PASSWORD": PASSWORD,
        "PYTHONUNBUFFERED": "1",
    })
    srv = Server(base_url=f"http://127.0.0.1:{port}", tmp=tmp)

    def run(name: str, args: list[str]) -> None:
        with (tmp / f"{name}.log").open("ab") as out:
            done = subprocess.run(args, cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, timeout=180)
        assert done.returncode == 0, srv.logs()

    def start(name: str, args: list[str]) -> None:
        with (tmp / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        srv.procs.append((name, proc))

    run("migrate", [PYTHON, "manage.py", "migrate", "--noinput"])
    run("seed", [PYTHON, str(ROOT / "tests" / "browser" / "seed.py")])
    start("web", [_bin("gunicorn"), "helpdesk.wsgi:application", "--bind",
                  f"127.0.0.1:{port}", "--workers", "2", "--access-logfile", "-"])
    start("worker", [_bin("celery"), "-A", "helpdesk", "worker", "--loglevel=INFO",
                     "--concurrency=1", "--without-gossip", "--without-mingle",
                     "--without-heartbeat"])
    start("beat", [_bin("celery"), "-A", "helpdesk", "beat", "--loglevel=INFO",
                   "--schedule", str(tmp / "celerybeat-schedule")])
    try:
        deadline = time.monotonic() + 60
        while True:
            for name, proc in srv.procs:
                assert proc.poll() is None, f"{name} exited early\n{srv.logs()}"
            try:
                with urllib.request.urlopen(f"{srv.base_url}/accounts/login/", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"web did not start\n{srv.logs()}"
            time.sleep(0.3)
        yield srv
    finally:
        for _name, proc in srv.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in srv.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        print(f"\nbrowser run directory: {tmp}")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
