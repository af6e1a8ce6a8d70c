"""KPI benchmark: bulk-load N tickets with their events, time the KPI queries.

Run on purpose, never from the tests. It writes into the configured database
(``DATABASE_URL``), so point it at a database of its own::

    createdb -h 127.0.0.1 -U postgres orderly_kpi_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/orderly_kpi_bench \\
        .venv/bin/python bench/kpi_bench.py --migrate --n 1000000 --direct

(Not ``orderly_bench``: bench/run.py drops and recreates that one.)

The load uses COPY on PostgreSQL (bulk_create elsewhere): minutes, not hours.
``--reuse`` skips the load when the bench data is already there. Histories are
spread over ``--days`` days up to now: most tickets are assigned, resolved and
closed; some are handed over, breached, rejected and resolved again, resolved
by the callback flow or cancelled; the last day's are still open. Timings (the
median of ``--repeat`` runs, milliseconds) are printed and appended as a JSON
line to ``bench/results/kpi.jsonl``.

After the load, the closed days are rolled up as the beat sweep would
(``agents.kpi_rollup.kpi_rollup_sweep``); the timings are of the selectors
as served (rollup for closed days, today from the events), ``--direct`` adds
the direct computation for comparison, and every run checks that both give
the same numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.utils import timezone  # noqa: E402

from agents import kpi  # noqa: E402
from agents.kpi_models import KpiDay  # noqa: E402
from agents.kpi_rollup import kpi_rollup_sweep  # noqa: E402
from agents.models import Agent, Team, User  # noqa: E402
from tickets.models import Ticket, TicketEvent, TicketType  # noqa: E402

PREFIX = "kpibench"
TEAMS = 10
TYPES_PER_TEAM = 3
AGENTS_PER_TEAM = 12
CHUNK = 50_000


def _people() -> tuple[list[Team], list[TicketType], dict[int, list[User]], User, User]:
    teams = [Team.objects.get_or_create(name=f"{PREFIX} team {i}")[0] for i in range(TEAMS)]
    types = []
    for team in teams:
        for j in range(TYPES_PER_TEAM):
            slug = f"{PREFIX}-{team.pk}-{j}"
            ttype, _ = TicketType.objects.get_or_create(
                slug=slug, defaults={"name": slug, "team": team, "time_limit_minutes": 240,
                                     "callback_url": "https://crm.invalid/cb" if j == 2 else ""})
            types.append(ttype)
    agents: dict[int, list[User]] = {}
    for t, team in enumerate(teams):
        agents[team.pk] = []
        for a in range(AGENTS_PER_TEAM):
            user, created = User.objects.get_or_create(
                username=f"{PREFIX}-agent-{t}-{a}", defaults={"role": User.Role.AGENT})
            if created:
                user.teams.set([team])
                Agent.objects.create(user=user, status=Agent.Status.ONLINE, capacity=50)
            agents[team.pk].append(user)
    requester, _ = User.objects.get_or_create(username=f"{PREFIX}-requester",
                                              defaults={"role": User.Role.REQUESTER})
    supervisor, created = User.objects.get_or_create(username=f"{PREFIX}-supervisor",
                                                     defaults={"role": User.Role.SUPERVISOR})
    if created:
        supervisor.teams.set(teams[:2])
    return teams, types, agents, requester, supervisor


def _history(rng: random.Random, tid: int, ttype: TicketType, team_agents: list[User],
             created: datetime, now: datetime, limit: timedelta):
    """One ticket's row and events: a plausible life through the engine's rules."""
    ev: list[tuple] = []
    minute = timedelta(minutes=1)

    def add(kind, at, frm, to, details):
        ev.append((tid, kind, at, frm, to, details))

    callback = bool(ttype.callback_url)
    row = {"state": "closed", "assignee": None, "round": 1, "due_at": created + limit,
           "sla_started_at": created, "round_breached": False, "breached_at": None,
           "assigned_at": None, "resolved_at": None, "in_time": None, "closed_at": None,
           "cancelled_at": None, "handover_count": 0, "reopen_count": 0, "rating": None,
           "priority": 2}
    add("created", created, "", "callback" if callback else "pooled", {})
    t = created
    if callback and rng.random() < 0.5:
        t += minute * rng.randint(1, 5)
        add("callback_resolved", t, "callback", "resolved", {"attempt": 1, "result": "ok"})
        row.update(resolved_at=t, in_time=True, round=0, due_at=None, sla_started_at=None)
        return _verdict(rng, row, add, ev, t, None, now)
    if callback:
        t += minute * 2
        add("callback_needs_agent", t, "callback", "pooled", {"attempt": 1, "note": ""})
        row.update(sla_started_at=t, due_at=t + limit)
    add("pooled", t, "callback" if callback else "", "pooled", {"round": 1})
    if now - created < timedelta(hours=30) and rng.random() < 0.5:
        # Still open: pooled or assigned.
        if rng.random() < 0.5:
            row.update(state="pooled")
            return row, ev
        agent = rng.choice(team_agents)
        t += minute * rng.randint(1, 30)
        add("assigned", t, "pooled", "assigned", {"agent": agent.username, "via": "dispatch"})
        row.update(state="assigned", assignee=agent.pk, assigned_at=t)
        return row, ev
    if rng.random() < 0.03:
        t += minute * rng.randint(1, 60)
        add("cancelled", t, "pooled", "cancelled", {"reason": ""})
        row.update(state="cancelled", cancelled_at=t)
        return row, ev
    resolutions = 2 if rng.random() < 0.06 else 1
    agent = None
    for n in range(resolutions):
        agent = rng.choice(team_agents)
        t += minute * rng.randint(1, 90)
        add("assigned", t, "pooled", "assigned", {"agent": agent.username, "via": "dispatch"})
        assigned_at = t
        if rng.random() < 0.08:
            t += minute * rng.randint(5, 60)
            add("handed_over", t, "assigned", "pooled", {"agent": agent.username, "reason": "x"})
            row["handover_count"] += 1
            agent = rng.choice(team_agents)
            t += minute * rng.randint(1, 30)
            add("assigned", t, "pooled", "assigned", {"agent": agent.username, "via": "dispatch"})
            assigned_at = t
        if rng.random() < 0.07:
            t = max(t, row["due_at"])
            add("breached", t, "assigned", "pooled", {"agent": agent.username, "reclaimed": True,
                                                      "policy": "reassign"})
            row.update(round=row["round"] + 1, breached_at=t, due_at=t + limit)
            agent = rng.choice(team_agents)
            t += minute * rng.randint(1, 30)
            add("assigned", t, "pooled", "assigned", {"agent": agent.username, "via": "dispatch"})
            assigned_at = t
        t += minute * int(rng.expovariate(1 / 80) + 1)
        in_time = t < row["due_at"]
        add("resolved", t, "assigned", "resolved",
            {"agent": agent.username, "in_time": in_time, "round": row["round"],
             "handle_seconds": (t - assigned_at).total_seconds()})
        row.update(resolved_at=t, in_time=in_time, assignee=agent.pk, assigned_at=assigned_at,
                   round_breached=False)
        if n < resolutions - 1:
            t += minute * rng.randint(10, 600)
            add("rejected", t, "resolved", "pooled",
                {"agent": agent.username, "rating": rng.choice([1, 2, None]), "comment": "no"})
            row.update(round=row["round"] + 1, reopen_count=row["reopen_count"] + 1,
                       due_at=t + limit)
    return _verdict(rng, row, add, ev, t, agent, now)


def _verdict(rng, row, add, ev, t, agent, now):
    name = agent.username if agent else None
    t2 = t + timedelta(minutes=rng.randint(5, 2000))
    if t2 > now:
        row["state"] = "resolved"
        return row, ev
    if rng.random() < 0.7:
        rating = rng.choices([5, 4, 3, 2, 1, None], [40, 25, 10, 5, 5, 15])[0]
        add("accepted", t2, "resolved", "closed", {"agent": name, "rating": rating, "comment": ""})
        row["rating"] = rating
    else:
        add("auto_closed", t2, "resolved", "closed", {"agent": name})
    row.update(state="closed", closed_at=t2)
    return row, ev


def _load(n: int, days: int, seed: int) -> tuple[int, int]:
    rng = random.Random(seed)
    teams, types, agents, requester, _ = _people()
    now = timezone.now()
    span = timedelta(days=days).total_seconds()
    next_ticket = (Ticket.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    next_event = (TicketEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    loaded = events = 0
    started = time.perf_counter()
    while loaded < n:
        size = min(CHUNK, n - loaded)
        tickets, evs = [], []
        for i in range(size):
            tid = next_ticket + loaded + i
            ttype = types[rng.randrange(len(types))]
            # Ids grow with creation time, as in a live desk.
            created = now - timedelta(seconds=span * (1 - (loaded + i + rng.random()) / n))
            row, ev = _history(rng, tid, ttype, agents[ttype.team_id], created, now,
                               timedelta(minutes=ttype.time_limit_minutes))
            row.update(id=tid, ticket_type_id=ttype.pk, team_id=ttype.team_id, created_at=created,
                       updated_at=created, requester_id=requester.pk, created_by_id=requester.pk,
                       title=f"Bench {tid}")
            tickets.append(row)
            evs.extend(ev)
        # Events are appended in time order in a live desk: same physical order here.
        evs.sort(key=lambda e: e[2])
        for j, e in enumerate(evs):
            evs[j] = (next_event + events + j, *e)
        _write(tickets, evs)
        loaded += size
        events += len(evs)
        rate = loaded / (time.perf_counter() - started)
        print(f"  loaded {loaded:>9,} tickets, {events:>10,} events ({rate:,.0f} tickets/s)",
              flush=True)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            for table in ("tickets_ticket", "tickets_ticketevent"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                            f"(SELECT max(id) FROM {table}))")
            cur.execute("ANALYZE tickets_ticket")
            cur.execute("ANALYZE tickets_ticketevent")
    return loaded, events


TICKET_COLUMNS = ["id", "ticket_type_id", "team_id", "title", "description", "data", "state",
                  "priority", "requester_id", "created_by_id", "assignee_id", "round",
                  "sla_started_at", "due_at", "round_breached", "breached_at", "assigned_at",
                  "resolved_at", "in_time", "handover_count", "reopen_count", "rating",
                  "closed_at", "cancelled_at", "callback_attempts", "created_at", "updated_at"]
EVENT_COLUMNS = ["id", "ticket_id", "kind", "at", "from_state", "to_state", "details"]


def _ticket_values(r: dict) -> list:
    return [r["id"], r["ticket_type_id"], r["team_id"], r["title"], "", "{}", r["state"],
            r["priority"], r["requester_id"], r["created_by_id"], r["assignee"], r["round"],
            r["sla_started_at"], r["due_at"], r["round_breached"], r["breached_at"],
            r["assigned_at"], r["resolved_at"], r["in_time"], r["handover_count"],
            r["reopen_count"], r["rating"], r["closed_at"], r["cancelled_at"], 0,
            r["created_at"], r["updated_at"]]


def _write(tickets: list[dict], evs: list[tuple]) -> None:
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cur:
            raw = cur.cursor
            with raw.copy(f"COPY tickets_ticket ({', '.join(TICKET_COLUMNS)}) FROM STDIN") as cp:
                for r in tickets:
                    cp.write_row(_ticket_values(r))
            with raw.copy(f"COPY tickets_ticketevent ({', '.join(EVENT_COLUMNS)}) "
                          "FROM STDIN") as cp:
                for e in evs:
                    cp.write_row([e[0], e[1], e[2], e[3], e[4], e[5], json.dumps(e[6])])
        return
    with transaction.atomic():
        Ticket.objects.bulk_create(
            [Ticket(**dict(zip(TICKET_COLUMNS, _ticket_values(r)), data={})) for r in tickets],
            batch_size=2000)
        TicketEvent.objects.bulk_create(
            [TicketEvent(id=e[0], ticket_id=e[1], kind=e[2], at=e[3], from_state=e[4],
                         to_state=e[5], details=e[6]) for e in evs], batch_size=5000)


def _time(fn, repeat: int) -> float:
    fn()  # warm the caches once
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(runs), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="tickets to load")
    parser.add_argument("--days", type=int, default=365, help="history span in days")
    parser.add_argument("--period", type=int, default=30, help="KPI period in days")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--reuse", action="store_true", help="skip loading if data is there")
    parser.add_argument("--migrate", action="store_true", help="migrate the database first")
    parser.add_argument("--direct", action="store_true",
                        help="also time the direct computation (no rollup)")
    args = parser.parse_args()

    if args.migrate:
        call_command("migrate", verbosity=0, interactive=False)
    existing = Ticket.objects.filter(team__name__startswith=PREFIX).count()
    load_seconds = None
    if not (args.reuse and existing >= args.n):
        print(f"loading {args.n:,} tickets over {args.days} days into {connection.vendor} ...")
        started = time.perf_counter()
        _load(args.n, args.days, args.seed)
        load_seconds = round(time.perf_counter() - started, 1)
        print(f"loaded in {load_seconds} s")
    tickets = Ticket.objects.count()
    events = TicketEvent.objects.count()

    # The beat sweep's work, all at once: roll up every closed day not rolled
    # up yet (after a load, all of them; with --reuse, none or the new ones).
    started = time.perf_counter()
    built = kpi_rollup_sweep(limit=args.days + 2)
    rollup_seconds = round(time.perf_counter() - started, 1)
    print(f"rolled up {len(built)} days in {rollup_seconds} s "
          f"({KpiDay.objects.count():,} rollup rows in all)")

    _, _, _, _, supervisor = _people()
    today = kpi.kpi_today()
    period = kpi.Period(today - timedelta(days=args.period - 1), today)
    scopes = {"supervisor (2 teams)": kpi.kpi_team_ids(user=supervisor), "all teams": None}
    timings: dict[str, float] = {}
    mismatches = []
    for scope, team_ids in scopes.items():
        for group_by in kpi.GROUPINGS:
            timings[f"rows {group_by}, {scope}"] = _time(
                lambda g=group_by, t=team_ids: kpi.kpi_rows(period=period, group_by=g,
                                                            team_ids=t), args.repeat)
            if args.direct:
                timings[f"rows {group_by}, {scope}, direct (no rollup)"] = _time(
                    lambda g=group_by, t=team_ids: kpi.kpi_rows(
                        period=period, group_by=g, team_ids=t, rollup=False), args.repeat)
            fast = kpi.kpi_rows(period=period, group_by=group_by, team_ids=team_ids)
            if fast != kpi.kpi_rows(period=period, group_by=group_by, team_ids=team_ids,
                                    rollup=False):
                mismatches.append(f"rows {group_by}, {scope}")
        timings[f"daily series, {scope}"] = _time(
            lambda t=team_ids: kpi.kpi_daily(period=period, team_ids=t), args.repeat)
        timings[f"rating counts, {scope}"] = _time(
            lambda t=team_ids: kpi.kpi_rating_counts(period=period, team_ids=t), args.repeat)
        if kpi.kpi_daily(period=period, team_ids=team_ids) != kpi.kpi_daily(
                period=period, team_ids=team_ids, rollup=False):
            mismatches.append(f"daily, {scope}")
        if kpi.kpi_rating_counts(period=period, team_ids=team_ids) != kpi.kpi_rating_counts(
                period=period, team_ids=team_ids, rollup=False):
            mismatches.append(f"ratings, {scope}")

    # The API and the dashboard end to end (view, queries, rendering).
    from rest_framework.test import APIRequestFactory, force_authenticate

    from agents.api import KpiView
    from agents.kpi_views import kpi_dashboard

    api = KpiView.as_view()
    for group_by in kpi.GROUPINGS:
        def call_api(g=group_by):
            request = APIRequestFactory().get("/api/v1/kpi/", {"group_by": g})
            force_authenticate(request, user=supervisor)
            response = api(request)
            assert response.status_code == 200, response.data
            response.render()
        timings[f"API {group_by} (30 days)"] = _time(call_api, args.repeat)

    def call_page():
        request = RequestFactory().get("/supervise/kpi/", {"period": "30"})
        request.user = supervisor
        response = kpi_dashboard(request)
        assert response.status_code == 200
    timings["dashboard page (30 days, agent)"] = _time(call_page, args.repeat)

    width = max(len(k) for k in timings)
    print(f"\n{connection.vendor}: {tickets:,} tickets, {events:,} events; "
          f"period {period.first}..{period.last}; median of {args.repeat} runs")
    for name, ms in timings.items():
        print(f"  {name:<{width}}  {ms:>8.1f} ms")
    print("rollup == direct: " + ("yes, every figure" if not mismatches
                                  else "NO: " + ", ".join(mismatches)))
    result = {
        "at": datetime.now(dt_timezone.utc).isoformat(timespec="seconds"),
        "vendor": connection.vendor, "tickets": tickets, "events": events,
        "history_days": args.days, "period_days": args.period, "load_seconds": load_seconds,
        "repeat": args.repeat, "rollup_seconds": rollup_seconds,
        "rollup_equals_direct": not mismatches, "ms": timings,
    }
    out = ROOT / "bench" / "results" / "kpi.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh:
        fh.write(json.dumps(result) + "\n")
    print(f"\nappended to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
