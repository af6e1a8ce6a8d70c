"""In-process benchmark steps (run by bench/run.py in a subprocess whose
environment selects the database). Each command prints one JSON object.

    python bench/data.py setup                 users, team, type, tokens
    python bench/data.py load N                bulk-load the bench team up to N tickets
    python bench/data.py querycount            SQL queries per API request (test client)
    python bench/data.py prep-transitions N    N tickets assigned to the bench agent
    python bench/data.py dispatch K            10,000 pooled tickets, 200 agents, K processes
    python bench/data.py sweeps                each sweep at the current open tickets, 1% due

Data is bulk-inserted with the columns and events the services would have
written (created + pooled events, assigned events for assigned tickets), so a
list or detail page costs what it would in production.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, connections, transaction  # noqa: E402
from django.db.models import F  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from agents.models import Agent, Team, User  # noqa: E402
from tickets.models import Ticket, TicketEvent, TicketState, TicketType  # noqa: E402

TEAM = "Bench"
TYPE = "bench"
REQUESTER = "bench-requester"
AGENT = "bench-agent"
AGENTS = 20  # bench-agent plus these share the loaded assigned tickets
SUPERVISOR = "bench-supervisor"
DISPATCH_TEAM = "Bench dispatch"
BATCH = 5_000
LOADED_TITLE = "Printer on the third floor is jammed"


def out(obj) -> None:
    print(json.dumps(obj, default=str))


def _user(username: str, role: str, teams=()) -> User:
    user, created = User.objects.get_or_create(username=username, defaults={"role": role})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if teams:
        user.teams.add(*teams)
    return user


def cmd_setup() -> None:
    team, _ = Team.objects.get_or_create(name=TEAM)
    ttype, _ = TicketType.objects.get_or_create(
        slug=TYPE, defaults={"name": "Bench", "team": team, "time_limit_minutes": 60 * 24 * 30,
                             "channels": ["portal"]},
    )
    requester = _user(REQUESTER, User.Role.REQUESTER)
    agent = _user(AGENT, User.Role.AGENT, [team])
    Agent.objects.get_or_create(user=agent, defaults={"status": Agent.Status.ONLINE,
                                                      "capacity": 1_000_000})
    for i in range(AGENTS):
        helper = _user(f"bench-agent-{i:02d}", User.Role.AGENT, [team])
        Agent.objects.get_or_create(user=helper, defaults={"status": Agent.Status.ONLINE,
                                                           "capacity": 1_000_000})
    supervisor = _user(SUPERVISOR, User.Role.SUPERVISOR, [team])
    out({
        "type": ttype.slug,
        "requester_token": Token.objects.get_or_create(user=requester)[0].key,
        "agent_token": Token.objects.get_or_create(user=agent)[0].key,
        "supervisor_token": Token.objects.get_or_create(user=supervisor)[0].key,
    })


def _bulk(ttype: TicketType, requester: User, specs: list[dict], now) -> list[int]:
    """Insert tickets and the events the services would have written."""
    rows = []
    for spec in specs:
        values = {
            "ticket_type": ttype, "team_id": ttype.team_id, "requester": requester,
            "created_by": requester, "state": TicketState.POOLED, "priority": 2, "round": 1,
            "sla_started_at": now, "due_at": now + timedelta(days=10),
            "title": LOADED_TITLE,
            "description": "The printer shows error E42 and will not print.",
        }
        values.update(spec)
        rows.append(Ticket(**values))
    tickets = Ticket.objects.bulk_create(rows)
    events = []
    for t in tickets:
        events.append(TicketEvent(ticket_id=t.pk, kind="created", actor_id=requester.pk, at=now,
                                  from_state="", to_state="pooled"))
        events.append(TicketEvent(ticket_id=t.pk, kind="pooled", at=now, from_state="",
                                  to_state="pooled", details={"round": 1}))
        if t.assignee_id:
            events.append(TicketEvent(ticket_id=t.pk, kind="assigned", at=now,
                                      from_state="pooled", to_state="assigned",
                                      details={"via": "dispatch"}))
    TicketEvent.objects.bulk_create(events, batch_size=BATCH)
    return [t.pk for t in tickets]


def _sync_loads(user_ids) -> None:
    for agent in Agent.objects.filter(user_id__in=list(user_ids)):
        n = Ticket.objects.filter(state=TicketState.ASSIGNED, assignee_id=agent.user_id).count()
        Agent.objects.filter(pk=agent.pk).update(active_count=n)


def cmd_load(target: int) -> None:
    """Up to ``target`` tickets in the bench team: 45% pooled, 45% assigned, 10% closed."""
    ttype = TicketType.objects.get(slug=TYPE)
    requester = User.objects.get(username=REQUESTER)
    agents = list(User.objects.filter(username__startswith="bench-agent-"))
    have = Ticket.objects.filter(team_id=ttype.team_id).count()
    rng = random.Random(have)
    now = timezone.now()
    t0 = time.perf_counter()
    while have < target:
        n = min(BATCH, target - have)
        specs = []
        for _ in range(n):
            roll = rng.random()
            spec = {"priority": rng.randint(1, 5),
                    "due_at": now + timedelta(days=10, minutes=rng.randint(0, 10_000))}
            if roll < 0.45:
                spec.update(state=TicketState.ASSIGNED, assignee=rng.choice(agents),
                            assigned_at=now)
            elif roll < 0.55:
                spec.update(state=TicketState.CLOSED, resolved_at=now, closed_at=now,
                            result="done", in_time=True, due_at=None)
            specs.append(spec)
        with transaction.atomic():
            _bulk(ttype, requester, specs, now)
        have += n
    _sync_loads([a.pk for a in agents])
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    out({"tickets": Ticket.objects.count(), "load_s": round(time.perf_counter() - t0, 1)})


def _counted(label: str, fn) -> dict:
    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        response = fn()
        ms = (time.perf_counter() - t0) * 1000
    return {"op": label, "status": response.status_code, "queries": len(ctx.captured_queries),
            "ms": round(ms, 1), "sql": [q["sql"][:160] for q in ctx.captured_queries]}


def cmd_querycount() -> None:
    from rest_framework.test import APIClient

    def client(username):
        c = APIClient(HTTP_HOST="127.0.0.1")
        c.credentials(HTTP_AUTHORIZATION="Token "
                      + Token.objects.get_or_create(user=User.objects.get(username=username))[0].key)
        return c

    requester, agent, supervisor = client(REQUESTER), client(AGENT), client(SUPERVISOR)
    n = Ticket.objects.count()
    body = {"type": TYPE, "title": "Printer on floor 1 is jammed",
            "description": "Customer reports the printer shows error E1.", "priority": 3}
    requester.post("/api/v1/tickets/", body, format="json")  # warm-up, not counted
    rows = [_counted("create", lambda: requester.post("/api/v1/tickets/", body, format="json"))]
    some = Ticket.objects.filter(team__name=TEAM).order_by("id").values_list("id", flat=True)[n // 2]
    rows.append(_counted("list_agent", lambda: agent.get("/api/v1/tickets/")))
    rows.append(_counted("list_requester", lambda: requester.get("/api/v1/tickets/")))
    rows.append(_counted("detail", lambda: agent.get(f"/api/v1/tickets/{some}/")))
    # Transitions on a fresh ticket of the bench agent.
    me = User.objects.get(username=AGENT)
    tid = _prep_assigned(2)
    rows.append(_counted("lock", lambda: agent.post(f"/api/v1/tickets/{tid[0]}/lock/",
                                                    {"minutes": 5}, format="json")))
    rows.append(_counted("resolve", lambda: agent.post(f"/api/v1/tickets/{tid[0]}/resolve/",
                                                       {"result": "done"}, format="json")))
    rows.append(_counted("handover", lambda: agent.post(f"/api/v1/tickets/{tid[1]}/handover/",
                                                        {"reason": "not mine"}, format="json")))
    del me, supervisor
    for r in rows:
        r.update(db=connection.vendor, tickets=n)
    out(rows)


def _prep_assigned(n: int) -> list[int]:
    ttype = TicketType.objects.get(slug=TYPE)
    me = User.objects.get(username=AGENT)
    with transaction.atomic():
        ids = _bulk(ttype, User.objects.get(username=REQUESTER),
                    [{"state": TicketState.ASSIGNED, "assignee": me, "assigned_at": timezone.now()}
                     for _ in range(n)], timezone.now())
    _sync_loads([me.pk])
    return ids


def cmd_prep_transitions(n: int) -> None:
    out({"ids": _prep_assigned(n)})


# -- dispatch ----------------------------------------------------------------------


def _dispatch_worker(_: int) -> tuple[int, float, float]:
    from tickets.services.dispatch import dispatch_run

    connections.close_all()
    t0 = time.time()
    n = dispatch_run()
    t1 = time.time()
    connections.close_all()
    return n, t0, t1


def cmd_dispatch(procs_list: list[int], tickets: int = 10_000, agents: int = 200,
                 capacity: int = 50) -> None:
    team, _ = Team.objects.get_or_create(name=DISPATCH_TEAM)
    ttype, _ = TicketType.objects.get_or_create(
        slug="bench-dispatch", defaults={"name": "Bench dispatch", "team": team,
                                         "time_limit_minutes": 600, "channels": ["portal"]})
    requester = User.objects.get(username=REQUESTER)
    users = [_user(f"bench-dispatch-{i:03d}", User.Role.AGENT, [team]) for i in range(agents)]
    for u in users:
        Agent.objects.update_or_create(user=u, defaults={"status": Agent.Status.ONLINE,
                                                         "capacity": capacity, "active_count": 0,
                                                         "last_assigned_at": None})
    # Other teams' agents off duty, so that only this pool is dispatched.
    others = Agent.objects.exclude(user__in=users).filter(status=Agent.Status.ONLINE)
    paused = list(others.values_list("pk", flat=True))
    others.update(status=Agent.Status.OFFLINE)
    rng = random.Random(1)
    results = []
    try:
        for procs in procs_list:
            Ticket.objects.filter(team=team).delete()
            Agent.objects.filter(user__in=users).update(active_count=0, last_assigned_at=None)
            now = timezone.now()
            with transaction.atomic():
                _bulk(ttype, requester, [
                    {"priority": rng.randint(1, 5),
                     "due_at": now + timedelta(minutes=rng.randint(1, 600))}
                    for _ in range(tickets)], now)
            if connection.vendor == "postgresql":
                with connection.cursor() as cur:
                    cur.execute("ANALYZE tickets_ticket")
            connections.close_all()
            t0 = time.time()
            with mp.get_context("fork").Pool(procs) as pool:
                parts = pool.map(_dispatch_worker, range(procs))
            wall = time.time() - t0
            assigned = sum(p[0] for p in parts)
            results.append({"dispatchers": procs, "tickets": tickets, "agents": agents,
                            "capacity": capacity, "assigned": assigned, "wall_s": round(wall, 3),
                            "assignments_per_s": round(assigned / wall, 1),
                            "violations": _dispatch_violations(team, capacity)})
    finally:
        Agent.objects.filter(pk__in=paused).update(status=Agent.Status.ONLINE)
        Ticket.objects.filter(team=team).delete()
        Agent.objects.filter(user__in=users).update(status=Agent.Status.OFFLINE, active_count=0)
    out(results)


def _dispatch_violations(team: Team, capacity: int) -> dict:
    from collections import Counter

    events = Counter(TicketEvent.objects.filter(ticket__team=team, kind="assigned")
                     .values_list("ticket_id", flat=True))
    twice = sum(1 for n in events.values() if n > 1)
    held = Counter(Ticket.objects.filter(team=team, state=TicketState.ASSIGNED)
                   .values_list("assignee_id", flat=True))
    over = sum(1 for n in held.values() if n > capacity)
    mismatched = sum(1 for a in Agent.objects.filter(user__teams=team)
                     if a.active_count != held.get(a.user_id, 0))
    left = Ticket.objects.filter(team=team, state=TicketState.POOLED).count()
    # Strict priority at the end: with capacity == tickets nothing may be left.
    return {"assigned_twice": twice, "over_capacity": over, "load_mismatch": mismatched,
            "left_in_pool": left}


# -- sweeps ------------------------------------------------------------------------


def _explain_ids(ids_fn) -> str:
    """EXPLAIN the very SQL a sweep's ``*_ids`` function runs."""
    with CaptureQueriesContext(connection) as ctx:
        ids_fn()
    sql = ctx.captured_queries[-1]["sql"]
    prefix = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cur:
        cur.execute(prefix + sql)
        return "\n".join(" ".join(str(c) for c in row) for row in cur.fetchall())


def cmd_sweeps(due_share: float = 0.01) -> None:
    from tickets.services import sweeps

    ttype = TicketType.objects.get(slug=TYPE)
    team_id = ttype.team_id
    open_qs = Ticket.objects.filter(team_id=team_id, state__in=[TicketState.POOLED,
                                                               TicketState.ASSIGNED])
    n_open = open_qs.count()
    due = max(1, int(n_open * due_share))
    now = timezone.now()
    past = now - timedelta(minutes=1)
    rows = []

    def run(name, ids_fn, sweep):
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute("ANALYZE tickets_ticket")
        plan = _explain_ids(ids_fn)
        t0 = time.perf_counter()
        handled = sweep()
        dt = time.perf_counter() - t0
        seq = "Seq Scan on tickets_ticket" in plan or "SCAN tickets_ticket" in plan.replace(
            "SCAN tickets_ticket USING", "")
        rows.append({"sweep": name, "open_tickets": n_open, "due": due, "handled": handled,
                     "s": round(dt, 3), "ms_per_ticket": round(dt * 1000 / max(1, handled), 2),
                     "index_scan": ("Index" in plan or "USING" in plan) and not seq,
                     "plan": plan})

    # Breach: 1% of the open tickets ran out of time.
    ids = list(open_qs.filter(round_breached=False).values_list("id", flat=True)[:due])
    Ticket.objects.filter(pk__in=ids).update(due_at=past)
    run("breach", sweeps.breach_due_ids, sweeps.breach_sweep)

    # Lock expiry: 1% of the open tickets hold an expired lock.
    assigned = Ticket.objects.filter(team_id=team_id, state=TicketState.ASSIGNED)
    ids = list(assigned.values_list("id", flat=True)[:due])
    Ticket.objects.filter(pk__in=ids).update(locked_until=past, locked_by_id=F("assignee_id"))
    run("lock_expiry", sweeps.lock_expired_ids, sweeps.lock_expiry_sweep)

    # Away reclaim: one agent who left an hour ago holds 1% of the tickets.
    away = _user("bench-away", User.Role.AGENT, [ttype.team])
    Agent.objects.update_or_create(user=away, defaults={
        "status": Agent.Status.AWAY, "status_changed_at": now - timedelta(hours=1),
        "capacity": 1_000_000})
    ids = list(assigned.filter(locked_until__isnull=True).values_list("id", flat=True)[:due])
    Ticket.objects.filter(pk__in=ids).update(assignee=away)
    _sync_loads(list(User.objects.filter(role=User.Role.AGENT).values_list("id", flat=True)))
    run("away_reclaim", sweeps.away_reclaim_ids, sweeps.away_reclaim_sweep)

    # Auto-close: 1% of the tickets were resolved and their feedback window ended.
    pooled = Ticket.objects.filter(team_id=team_id, state=TicketState.POOLED)
    ids = list(pooled.values_list("id", flat=True)[:due])
    Ticket.objects.filter(pk__in=ids).update(state=TicketState.RESOLVED, resolved_at=past,
                                             result="done", in_time=True, feedback_due_at=past)
    run("auto_close", sweeps.auto_close_ids, sweeps.auto_close_sweep)
    for r in rows:
        r["db"] = connection.vendor
    out(rows)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "setup":
        cmd_setup()
    elif cmd == "load":
        cmd_load(int(args[0]))
    elif cmd == "idrange":
        # From the first bulk-loaded ticket on: every id in the range exists
        # (the dispatch bench deletes its tickets before the loads).
        first = Ticket.objects.filter(team__name=TEAM, title=LOADED_TITLE).order_by("id").first()
        qs = Ticket.objects.filter(team__name=TEAM, id__gte=first.pk if first else 0)
        out([qs.order_by("id").values_list("id", flat=True).first(),
             qs.order_by("-id").values_list("id", flat=True).first()])
    elif cmd == "querycount":
        cmd_querycount()
    elif cmd == "prep-transitions":
        cmd_prep_transitions(int(args[0]))
    elif cmd == "dispatch":
        cmd_dispatch([int(a) for a in args] or [1, 8])
    elif cmd == "sweeps":
        cmd_sweeps()
    else:
        sys.exit(f"unknown command {cmd}")
