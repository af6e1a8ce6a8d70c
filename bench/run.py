#!/usr/bin/env python3
"""Orderly benchmarks: gunicorn with 2 workers (like the peer) on SQLite or
PostgreSQL, measured with the peer's bench.py. Run on purpose, never in CI.

    .venv/bin/python bench/run.py --db sqlite            # or pg, or both
    .venv/bin/python bench/run.py --db pg --only create,dispatch
    .venv/bin/python bench/run.py --db both --peer       # then the peer harness too
    .venv/bin/python bench/run.py --db sqlite --peer-create  # peer creation interleaved
    .venv/bin/python bench/compare.py                    # Orderly vs peer, medians + ratios

Phases (--only): create, dispatch, reads (10k then 100k; --sizes), transitions
(at the first size), sweeps (at the last size). Every figure is printed and
appended as a JSON line to bench/results/<db>.jsonl. Each run resets its own
database: var/bench-sqlite/orderly.sqlite3, or PostgreSQL database orderly_bench.
Knobs: RUNS (3), CREATE_N (2000), READ_N (50), PORT (8101).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PEER = ROOT.parent / "shared" / "peers" / "django-helpdesk"
BENCH_PY = PEER / "bench.py"
PY = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
PG_SERVER = os.environ.get("ORDERLY_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
PG_DB = "orderly_bench"
REDIS = os.environ.get("ORDERLY_BENCH_REDIS", "redis://127.0.0.1:6379/5")
PORT = int(os.environ.get("PORT", "8101"))
RUNS = int(os.environ.get("RUNS", "3"))
CREATE_N = int(os.environ.get("CREATE_N", "2000"))
READ_N = int(os.environ.get("READ_N", "50"))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split()[1]
    return {"nproc": os.cpu_count(), "cpu": model, "mem_gb": round(int(mem) / 1024 / 1024, 1),
            "python": platform.python_version(), "loadavg": Path("/proc/loadavg").read_text()[:14]}


class Target:
    """One database flavour of Orderly: its environment, database and server."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.var = ROOT / "var" / f"bench-{db}"
        self.out = RESULTS / f"{db}.jsonl"
        self.server: subprocess.Popen | None = None
        env = dict(os.environ)
        env.update({
            "DJANGO_SETTINGS_MODULE": "helpdesk.settings", "DEBUG": "0",
            "SECRET_KEY": "bench-only-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver", "ORDERLY_VAR_DIR": str(self.var),
            # Throttling is measured nowhere here: the load comes from one client.
            "ORDERLY_THROTTLE_SIGNIN": "off", "ORDERLY_THROTTLE_CREATE": "off",
            "ORDERLY_BASE_URL": f"http://127.0.0.1:{PORT}",
        })
        if db == "pg":
            env["DATABASE_URL"] = f"{PG_SERVER}/{PG_DB}"
            env["CELERY_BROKER_URL"] = REDIS
        else:
            env.pop("DATABASE_URL", None)
            env.pop("CELERY_BROKER_URL", None)
        self.env = env

    # -- database ---------------------------------------------------------------

    def reset(self) -> None:
        if self.db == "pg":
            import psycopg

            with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
                conn.execute(f"CREATE DATABASE {PG_DB}")
            import redis

            redis.Redis.from_url(REDIS).flushdb()
        else:
            shutil.rmtree(self.var, ignore_errors=True)
        self.var.mkdir(parents=True, exist_ok=True)
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=self.env,
                       check=True)

    def data(self, *args: str) -> object:
        """Run a bench/data.py command; its last output line is JSON."""
        res = subprocess.run([PY, str(BENCH / "data.py"), *args], cwd=ROOT, env=self.env,
                             capture_output=True, text=True)
        if res.returncode != 0:
            sys.stderr.write(res.stdout + res.stderr)
            raise SystemExit(f"bench/data.py {' '.join(args)} failed")
        return json.loads(res.stdout.strip().splitlines()[-1])

    # -- server -------------------------------------------------------------------

    def start(self) -> None:
        self.stop()
        logf = open(self.var / "gunicorn.log", "a")
        self.server = subprocess.Popen(
            [GUNICORN, "helpdesk.wsgi:application", "--workers", "2", "--bind",
             f"127.0.0.1:{PORT}", "--timeout", "600", "--no-control-socket",
             "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=logf, stderr=logf,
        )
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v1/health/", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        log(f"gunicorn pid {self.server.pid} ({self.db}) on port {PORT}")

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(30)
            self.server = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{PORT}"

    def cpu_groups(self) -> list[str]:
        groups = ["--cpu-group", f"gunicorn:pgrep -P {self.server.pid}"]
        if self.db == "pg":
            groups += ["--cpu-group", "postgres:pgrep -u postgres"]
        return groups

    # -- recording ------------------------------------------------------------------

    def record(self, row: dict) -> None:
        row = {"product": "orderly", "db": self.db, "machine": machine(), **row}
        RESULTS.mkdir(parents=True, exist_ok=True)
        with open(self.out, "a") as f:
            f.write(json.dumps(row, default=str) + "\n")

    def http_bench(self, label: str, *args: str) -> None:
        """bench.py appends its own JSON line; tag it with product and machine."""
        tmp = self.var / "bench-line.jsonl"
        tmp.unlink(missing_ok=True)
        subprocess.run([sys.executable, str(BENCH_PY), "--base-url", self.base,
                        "--label", f"{self.db}|{label}", "--json-out", str(tmp),
                        *self.cpu_groups(), *args], cwd=ROOT)
        if tmp.exists():
            for line in tmp.read_text().splitlines():
                self.record({"kind": "http", **json.loads(line)})


# -- phases ---------------------------------------------------------------------------


def peer_creds(db: str) -> dict | None:
    path = Path(f"/tmp/dh-site/creds-{'pg' if db == 'pg' else 'sqlite'}.env")
    if not path.exists():
        return None
    return dict(line.split("=", 1) for line in path.read_text().split() if "=" in line)


def peer_create(t: Target, creds: dict, r: int, c: int) -> None:
    """The peer's own creation scenario (run_all.sh a.), in the same minute as ours."""
    payload = ('{"queue": ' + creds["QUEUE_ID"] + ', "title": "Printer on floor {n} is jammed", '
               '"description": "Customer {n} reports the printer shows error E{n} and will not '
               'print.", "submitter_email": "customer{n}@example.com", "priority": 3}')
    pid = Path("/tmp/dh-gunicorn.pid").read_text().strip()
    groups = ["--cpu-group", f"gunicorn:pgrep -P {pid}"]
    if t.db == "pg":
        groups += ["--cpu-group", "postgres:pgrep -u postgres"]
    out = RESULTS / f"peer-{t.db}.jsonl"
    subprocess.run([sys.executable, str(BENCH_PY), "--base-url", "http://127.0.0.1:8001",
                    "--label", f"{t.db}|create|c{c}", "--json-out", str(out), *groups,
                    "--path", "/helpdesk/api/tickets/", "--method", "POST", "--token",
                    f"Token {creds['TOKEN']}", "--payload", payload, "-c", str(c), "-n",
                    str(CREATE_N), "--warmup", "20", "--n-start", str(r * 100000 + c * 10000)])


def phase_create(t: Target, creds: dict, with_peer: bool) -> None:
    payload = json.dumps({"type": creds["type"], "title": "Printer on floor {n} is jammed",
                          "description": "Customer {n} reports the printer shows error E{n} "
                                         "and will not print.", "priority": 3})
    peer = peer_creds(t.db) if with_peer else None
    if with_peer and peer is None:
        log(f"peer not set up for {t.db}: run DH_DB=... {PEER}/setup.sh first")
    if peer:
        env = {**os.environ, "DH_DB": "pg" if t.db == "pg" else "sqlite"}
        subprocess.run([str(PEER / "serve.sh"), "restart"], cwd=PEER, env=env, check=True)
    try:
        for r in range(1, RUNS + 1):
            for c in (1, 8):
                # Orderly then the peer, back to back: both see the same machine.
                t.http_bench(f"create|c{c}", "--path", "/api/v1/tickets/", "--method", "POST",
                             "--token", f"Token {creds['requester_token']}", "--payload",
                             payload, "-c", str(c), "-n", str(CREATE_N), "--warmup", "20",
                             "--n-start", str(r * 100000 + c * 10000))
                if peer:
                    peer_create(t, peer, r, c)
    finally:
        if peer:
            subprocess.run([str(PEER / "serve.sh"), "stop"], cwd=PEER, env=env)


def phase_querycount(t: Target) -> None:
    rows = t.data("querycount")
    for row in rows:
        print(f"  {t.db:6s} tickets={row['tickets']:>7} {row['op']:15s} status={row['status']} "
              f"queries={row['queries']:>3} in-process={row['ms']} ms")
        t.record({"kind": "queries", **row})


def phase_reads(t: Target, creds: dict, size: int) -> None:
    log(f"load {size:,} tickets")
    t.record({"kind": "load", **t.data("load", str(size))})
    phase_querycount(t)
    lo, hi = t.data("idrange")
    label = f"{size // 1000}k"
    for _ in range(RUNS):
        t.http_bench(f"{label}|api_list", "--path", "/api/v1/tickets/", "--token",
                     f"Token {creds['agent_token']}", "-c", "1", "-n", str(READ_N), "--warmup", "2")
        t.http_bench(f"{label}|api_detail", "--path", "/api/v1/tickets/{r}/", "--token",
                     f"Token {creds['agent_token']}", "-c", "1", "-n", str(READ_N), "--warmup",
                     "2", "--rand-min", str(lo), "--rand-max", str(hi))


def phase_transitions(t: Target, creds: dict) -> None:
    for _ in range(RUNS):
        ids = t.data("prep-transitions", str(16 + 200 + 200))["ids"]
        plan = [("lock", ids[:16]), ("resolve", ids[16:216]), ("handover", ids[216:416])]
        for op, chunk in plan:
            tmp = t.var / "transitions.jsonl"
            tmp.unlink(missing_ok=True)
            subprocess.run([sys.executable, str(BENCH / "transitions.py"), "--base-url", t.base,
                            "--token", creds["agent_token"], "--op", op, "--ids",
                            ",".join(map(str, chunk)), "-c", "8", "--requests", "400",
                            "--label", f"{t.db}|{op}|c8", "--json-out", str(tmp)], cwd=ROOT)
            for line in tmp.read_text().splitlines():
                t.record({"kind": "transition", **json.loads(line)})


def phase_dispatch(t: Target) -> None:
    for row in t.data("dispatch", "1", "8"):
        print(f"  {t.db:6s} dispatchers={row['dispatchers']} assigned={row['assigned']:,} in "
              f"{row['wall_s']} s = {row['assignments_per_s']:,} assignments/s "
              f"violations={row['violations']}")
        t.record({"kind": "dispatch", **row})


def phase_sweeps(t: Target) -> None:
    for row in t.data("sweeps"):
        print(f"  {t.db:6s} {row['sweep']:13s} open={row['open_tickets']:,} due={row['due']:,} "
              f"handled={row['handled']:,} in {row['s']} s ({row['ms_per_ticket']} ms/ticket) "
              f"index_scan={row['index_scan']}")
        print("    " + row["plan"].replace("\n", "\n    "))
        t.record({"kind": "sweep", **row})


def run_db(db: str, only: set[str], sizes: list[int], with_peer: bool = False) -> None:
    t = Target(db)
    log(f"== Orderly on {db}: reset, migrate, setup ({machine()})")
    t.reset()
    creds = t.data("setup")
    t.start()
    try:
        if "create" in only:
            log("a. ticket creation via the API")
            phase_create(t, creds, with_peer)
        if "dispatch" in only:
            log("d. dispatch: 10,000 pooled tickets, 200 agents x 50, 1 and 8 dispatchers")
            phase_dispatch(t)
        for i, size in enumerate(sizes):
            if "reads" in only or ("transitions" in only and i == 0) or (
                    "sweeps" in only and i == len(sizes) - 1):
                log(f"b. list and detail at {size:,} tickets")
                phase_reads(t, creds, size)
            if "transitions" in only and i == 0:
                log("c. lock / resolve / hand-over under contention, c8")
                phase_transitions(t, creds)
        if "sweeps" in only:
            log(f"e. beat sweeps at {sizes[-1]:,} tickets, 1% due")
            phase_sweeps(t)
    finally:
        t.stop()
    log(f"done ({db}): {t.out}")


def run_peer(db: str) -> None:
    peer_db = "pg" if db == "pg" else "sqlite"
    log(f"== peer (django-helpdesk) on {peer_db}: {PEER}/run_all.sh")
    subprocess.run([str(PEER / "run_all.sh"), peer_db], cwd=PEER, check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "pg", "both"], default="both")
    ap.add_argument("--only", default="create,dispatch,reads,transitions,sweeps")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--peer", action="store_true",
                    help="also run the peer harness (RUNS, SKIP_100K pass through)")
    ap.add_argument("--peer-create", action="store_true",
                    help="measure the peer's creation right after ours, run by run (needs "
                         "the peer's setup.sh for that database)")
    a = ap.parse_args()
    only = set(a.only.split(","))
    sizes = [int(s) for s in a.sizes.split(",")]
    for db in (["sqlite", "pg"] if a.db == "both" else [a.db]):
        run_db(db, only, sizes, a.peer_create)
        if a.peer:
            run_peer(db)


if __name__ == "__main__":
    main()
