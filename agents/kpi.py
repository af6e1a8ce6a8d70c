"""KPIs: who did what, how fast, how well (DESIGN.md 4).

Every number is computed from the event log (``TicketEvent``) and ticket
timestamps by aggregate queries: a fixed number of queries whatever the
number of tickets, each one an index range over ``event_kind_at_idx``
(kind, at) or the open-ticket partial index ``ticket_open_kpi_idx``.

This docstring is the one place the definitions are written (the README
copies it).

Period
    ``from`` and ``to`` are dates, both included, as whole days in
    ``settings.TIME_ZONE``: an event counts when ``start <= at < end`` with
    ``start`` = ``from`` 00:00 and ``end`` = the day after ``to`` 00:00 in that
    zone (so 23:59:59.999999 of ``to`` counts, 00:00 of the next day does not).
    A period is at most ``MAX_PERIOD_DAYS`` long. ``open`` and ``overdue`` are
    "now" and ignore the period.

Groups (``group_by``)
    ``agent``: the ``agent`` (username) stored in each event's details -- the
    agent who was assigned, who resolved, who handed over, who held the
    ticket when it breached, whose resolution was accepted, rejected or
    auto-closed. Events without an agent (callback resolutions, breaches in
    the pool) count for no agent.
    ``team``: the ticket's team (name). ``type``: the ticket's type (slug).
    Scope: only tickets of the viewer's teams count, and the rows are the
    agents, teams and types of those teams (plus any agent who has events on
    them), with zeros where nothing happened. A superuser supervisor sees
    every team.

Row, per group and period
    assigned
        ``assigned`` events (dispatch, pull or a supervisor's assignment;
        a reassignment counts again).
    resolved
        Resolutions: ``resolved`` events, plus ``callback_resolved`` events for
        teams and types. Every resolution counts, so a ticket resolved,
        reopened and resolved again counts twice (for whoever resolved each).
    in_time_rate
        Share of those resolutions that were in time (``details.in_time``: the
        round had no breach and ended before ``due_at``). A callback
        resolution is in time (as ``Ticket.in_time`` says).
    breaches
        ``breached`` events; for agents, the agent holding the ticket then.
    handovers
        ``handed_over`` events; for agents, against the one who handed over.
    reopen_rate
        Of the resolutions answered in the period (``accepted``, ``rejected``,
        ``auto_closed`` events), the share rejected (reopened); for agents,
        the agent whose resolution was answered.
    mean_resolve_minutes, p90_resolve_minutes
        Per resolution: from the ticket's ``created_at`` to the resolution
        (what the requester waited, earlier resolutions of a reopened ticket
        included); mean and 90th percentile (linear interpolation, as
        PostgreSQL's ``percentile_cont(0.9)``).
    mean_handle_minutes
        Per agent resolution: from the resolving agent's own assignment to the
        resolution (``details.handle_seconds``). Time held by an agent who
        handed over or was reclaimed belongs to nobody's handle time; callback
        resolutions have none.
    mean_rating, satisfied_rate
        Ratings given in the period (``accepted``/``rejected`` events with a
        rating): mean, and share of 4 and 5; for agents, the agent whose
        resolution was rated.
    open
        Now: open tickets (callback, pooled, assigned); for agents, the
        tickets assigned to them now.
    overdue
        Now: those of them that are pooled or assigned with ``due_at`` in the
        past.
    Rates are fractions 0-1 rounded to 4 places, ``None`` with nothing to
    divide; minutes are configured minutes (``tickets.clock``) rounded to 0.1,
    ``None`` with no resolution.

Edge cases, decided
    Reopened tickets: each resolution counts (resolved, in time, times), and
    the rejection counts in ``reopen_rate`` of the agent who resolved.
    Callback resolutions: team and type rows count them (resolved, in time,
    resolve time, their feedback); no agent row does; no handle time.
    Cancelled tickets: the events before the cancel still count (an
    assignment, a hand-over, a breach); a cancel is no resolution, so the
    ticket never enters resolved, times or rates; it leaves ``open``.
    Hand-overs: the hand-over counts against the agent who handed over; the
    resolution, its handle time (from their own assignment) and its rating
    belong to the agent who resolved.
    Breach, then an in-time second round: the breach counts (for the agent
    who held it), and the resolution in the new round is in time, as the
    engine decides (``in_time`` is per round); with ``on_breach=notify`` the
    agent keeps the ticket in the breached round and the resolution is late.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Avg,
    CharField,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
)
from django.db.models.functions import TruncDate
from django.utils import timezone

from agents.models import Team, User
from tickets import clock
from tickets.errors import ValidationFailed
from tickets.models import BREACHABLE_STATES, OPEN_STATES, Ticket, TicketEvent, TicketState, TicketType

K = TicketEvent.Kind
GROUPINGS = ("agent", "team", "type")
ROW_KEYS = (
    "key", "assigned", "resolved", "in_time_rate", "breaches", "handovers", "reopen_rate",
    "mean_resolve_minutes", "p90_resolve_minutes", "mean_handle_minutes", "mean_rating",
    "satisfied_rate", "open", "overdue",
)
MAX_PERIOD_DAYS = 366
RESOLUTIONS = (K.RESOLVED, K.CALLBACK_RESOLVED)
VERDICTS = (K.ACCEPTED, K.REJECTED, K.AUTO_CLOSED)
RATED = (K.ACCEPTED, K.REJECTED)
ROW_KINDS = (K.ASSIGNED, *RESOLUTIONS, K.BREACHED, K.HANDED_OVER, *VERDICTS)
# How each event moves the open backlog (callback, pooled, assigned).
BACKLOG_FLOW = {K.CREATED: 1, K.REJECTED: 1, K.RESOLVED: -1, K.CALLBACK_RESOLVED: -1,
                K.CANCELLED: -1}


# -- the period -----------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole days ``first``..``last`` (inclusive) in ``settings.TIME_ZONE``."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return _day_start(self.first)

    @property
    def end(self) -> datetime:
        """Exclusive: the start of the day after ``last``."""
        return _day_start(self.last + timedelta(days=1))

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def _day_start(day: date) -> datetime:
    # make_aware on the zone's wall clock: right across DST changes.
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def kpi_today() -> date:
    return timezone.localdate(timezone.now(), timezone.get_default_timezone())


def kpi_period_parse(*, first: Any, last: Any, default_days: int = 30) -> Period:
    """A period from ``YYYY-MM-DD`` strings; missing ones default to the last
    ``default_days`` days up to today. Raises ValidationFailed (400)."""
    fields: dict[str, list[str]] = {}
    today = kpi_today()

    def parse(name: str, value: Any) -> date | None:
        if value in (None, ""):
            return None
        try:
            if isinstance(value, str) and len(value) == 10:
                return date.fromisoformat(value)
        except ValueError:
            pass
        fields[name] = ["Must be a date as YYYY-MM-DD."]
        return None

    to_day = parse("to", last)
    from_day = parse("from", first)
    if fields:
        raise ValidationFailed(fields)
    to_day = to_day or (today if from_day is None or from_day <= today else from_day)
    from_day = from_day or to_day - timedelta(days=default_days - 1)
    if from_day > to_day:
        raise ValidationFailed({"from": ["Must not be after 'to'."]})
    if (to_day - from_day).days + 1 > MAX_PERIOD_DAYS:
        raise ValidationFailed({"from": [f"The period is at most {MAX_PERIOD_DAYS} days."]})
    return Period(from_day, to_day)


def kpi_group_by_parse(value: Any, default: str = "agent") -> str:
    if value in (None, ""):
        return default
    if value not in GROUPINGS:
        raise ValidationFailed({"group_by": [f"Must be one of: {', '.join(GROUPINGS)}."]})
    return value


# -- scope ------------------------------------------------------------------------


def kpi_team_ids(*, user: User) -> list[int] | None:
    """The teams whose tickets a supervisor's KPIs cover; None means every team
    (a superuser supervisor, as in ``ticket_visibility_q``)."""
    if user.is_superuser and user.role == User.Role.SUPERVISOR:
        return None
    return list(user.teams.values_list("id", flat=True))


def _scoped(qs: QuerySet, team_ids: list[int] | None, team_field: str) -> QuerySet:
    return qs if team_ids is None else qs.filter(**{f"{team_field}__in": team_ids})


# -- SQL building blocks ------------------------------------------------------------


class Seconds(Func):
    """``end - start`` in seconds (float) on SQLite and PostgreSQL."""

    output_field = FloatField()

    def __init__(self, end: Any, start: Any) -> None:
        super().__init__(end, start)

    def as_sqlite(self, compiler, connection, **extra):  # noqa: ANN001
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s)) * 86400.0)",
                           arg_joiner=") - julianday(", **extra)

    def as_postgresql(self, compiler, connection, **extra):  # noqa: ANN001
        return self.as_sql(compiler, connection,
                           template="(EXTRACT(EPOCH FROM (%(expressions)s)))::double precision",
                           arg_joiner=" - ", **extra)


class Percentile90(Aggregate):
    """PostgreSQL's ``percentile_cont(0.9)`` (ordered-set aggregate)."""

    function = "percentile_cont"
    name = "Percentile90"
    template = "%(function)s(0.9) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


class JsonValue(Func):
    """A top-level key of ``TicketEvent.details`` as an SQL value, NULL for a
    JSON null or a missing key (Django's key transforms give SQLite's 'null'
    text for a JSON null, which casts to 0). ``key`` is a constant of this
    module, never user input."""

    def __init__(self, key: str, output_field: Any) -> None:
        if not key.isidentifier():
            raise ValueError(key)
        self.key = key
        super().__init__(F("details"), output_field=output_field)

    def as_sqlite(self, compiler, connection, **extra):  # noqa: ANN001
        return self.as_sql(compiler, connection,
                           template=f"CAST(json_extract(%(expressions)s, '$.{self.key}') AS "
                                    f"{self._sqlite_type()})", **extra)

    def as_postgresql(self, compiler, connection, **extra):  # noqa: ANN001
        cast = self.output_field.cast_db_type(connection)
        return self.as_sql(compiler, connection,
                           template=f"((%(expressions)s ->> '{self.key}')::{cast})", **extra)

    def _sqlite_type(self) -> str:
        return {"FloatField": "REAL", "IntegerField": "INTEGER"}.get(
            self.output_field.get_internal_type(), "TEXT")


def _db_percentile() -> bool:
    return connection.vendor == "postgresql"


def _agent_key() -> JsonValue:
    return JsonValue("agent", CharField())


def _event_key(group_by: str) -> Any:
    return {"agent": _agent_key(), "team": F("ticket__team_id"),
            "type": F("ticket__ticket_type_id")}[group_by]


def _events(period: Period, team_ids: list[int] | None, kinds: Iterable[str]) -> QuerySet:
    return _scoped(TicketEvent.objects.filter(kind__in=list(kinds), at__gte=period.start,
                                              at__lt=period.end), team_ids, "ticket__team_id")


# -- rows ---------------------------------------------------------------------------


def kpi_rows(*, period: Period, group_by: str, team_ids: list[int] | None,
             keys: Iterable[str] | None = None, now: datetime | None = None) -> list[dict[str, Any]]:
    """The KPI rows (``ROW_KEYS``) of a period, one per group, sorted by key.

    ``team_ids`` is the scope (see ``kpi_team_ids``); ``keys`` keeps only these
    keys (an agent's own row). A fixed number of queries.
    """
    now = now or timezone.now()
    names = _group_names(group_by, team_ids)
    stats = _event_stats(period, group_by, team_ids)
    backlog = _backlog_now(group_by, team_ids, now)
    if group_by != "agent":
        missing = (set(stats) | set(backlog)) - set(names)
        if missing:
            names.update(_names_of(group_by, missing))
    else:
        names.update({k: k for k in (set(stats) | set(backlog)) if k is not None})
    p90 = _p90_resolve(period, group_by, team_ids, stats)
    wanted = set(keys) if keys is not None else None
    rows = []
    for ident, key in names.items():
        if ident is None or (wanted is not None and key not in wanted):
            continue
        rows.append(_row(key, stats.get(ident, {}), backlog.get(ident, {}), p90.get(ident)))
    return sorted(rows, key=lambda r: r["key"])


def _group_names(group_by: str, team_ids: list[int] | None) -> dict[Any, str]:
    """Group identity -> key for every group in scope (rows with zeros)."""
    if group_by == "agent":
        qs = User.objects.filter(role=User.Role.AGENT)
        if team_ids is not None:
            qs = qs.filter(teams__in=team_ids)
        return {u: u for u in qs.values_list("username", flat=True).distinct()}
    if group_by == "team":
        return dict(_scoped(Team.objects.all(), team_ids, "id").values_list("id", "name"))
    return dict(_scoped(TicketType.objects.all(), team_ids, "team_id").values_list("id", "slug"))


def _names_of(group_by: str, ids: set[Any]) -> dict[Any, str]:
    model, field = (Team, "name") if group_by == "team" else (TicketType, "slug")
    return dict(model.objects.filter(id__in=[i for i in ids if i is not None])
                .values_list("id", field))


def _event_stats(period: Period, group_by: str, team_ids: list[int] | None) -> dict[Any, dict]:
    """One grouped scan of the period's events: counts and sums per group."""
    kinds = ROW_KINDS if group_by != "agent" else tuple(k for k in ROW_KINDS
                                                         if k != K.CALLBACK_RESOLVED)
    resolution = Q(kind__in=RESOLUTIONS)
    rated = Q(kind__in=RATED, rating__isnull=False)
    aggregates: dict[str, Any] = {
        "assigned": Count("id", filter=Q(kind=K.ASSIGNED)),
        "resolved": Count("id", filter=resolution),
        "in_time": Count("id", filter=Q(kind=K.CALLBACK_RESOLVED)
                         | Q(kind=K.RESOLVED, details__in_time=True)),
        "breaches": Count("id", filter=Q(kind=K.BREACHED)),
        "handovers": Count("id", filter=Q(kind=K.HANDED_OVER)),
        "verdicts": Count("id", filter=Q(kind__in=VERDICTS)),
        "rejected": Count("id", filter=Q(kind=K.REJECTED)),
        "resolve_avg": Avg("resolve_seconds", filter=resolution),
        "handle_avg": Avg("handle_seconds", filter=Q(kind=K.RESOLVED)),
        "rating_avg": Avg("rating", filter=rated),
        "rated": Count("id", filter=rated),
        "satisfied": Count("id", filter=Q(kind__in=RATED, rating__gte=4)),
    }
    if _db_percentile():
        aggregates["resolve_p90"] = Percentile90("resolve_seconds", filter=resolution)
    qs = (
        _events(period, team_ids, kinds)
        .annotate(group=_event_key(group_by))
        .alias(
            resolve_seconds=Seconds(F("at"), F("ticket__created_at")),
            handle_seconds=JsonValue("handle_seconds", FloatField()),
            rating=JsonValue("rating", IntegerField()),
        )
        .values("group")
        .annotate(**aggregates)
        .order_by()
    )
    return {row.pop("group"): row for row in qs}


def _backlog_now(group_by: str, team_ids: list[int] | None, now: datetime) -> dict[Any, dict]:
    """Open and overdue tickets now, per group."""
    overdue = Count("id", filter=Q(state__in=BREACHABLE_STATES, due_at__lt=now))
    qs = _scoped(Ticket.objects.all(), team_ids, "team_id")
    if group_by == "agent":
        qs = qs.filter(state=TicketState.ASSIGNED).values(group=F("assignee__username"))
    else:
        qs = qs.filter(state__in=OPEN_STATES).values(
            group=F("team_id") if group_by == "team" else F("ticket_type_id"))
    return {row.pop("group"): row for row in qs.annotate(open=Count("id"), overdue=overdue)
            .order_by()}


def _p90_resolve(period: Period, group_by: str, team_ids: list[int] | None,
                 stats: dict[Any, dict]) -> dict[Any, float]:
    """p90 of created->resolved seconds per group. On PostgreSQL it came with
    the stats; elsewhere the durations are streamed sorted by group and value,
    and only the two values around each group's 90% position are kept
    (constant memory; the counts come from ``stats``)."""
    if _db_percentile():
        return {g: s["resolve_p90"] for g, s in stats.items() if s.get("resolve_p90") is not None}
    kinds = (K.RESOLVED,) if group_by == "agent" else RESOLUTIONS
    qs = (
        _events(period, team_ids, kinds)
        .annotate(group=_event_key(group_by),
                  seconds=Seconds(F("at"), F("ticket__created_at")))
        .order_by("group", "seconds")
        .values_list("group", "seconds")
    )
    result: dict[Any, float] = {}
    index = 0
    current: Any = object()
    low = 0.0
    for group, seconds in qs.iterator(chunk_size=2000):
        if group != current:
            current, index = group, 0
        n = stats.get(group, {}).get("resolved", 0)
        if n:
            pos = 0.9 * (n - 1)
            lo = int(pos)
            if index == lo:
                low = seconds
                result[group] = seconds
            elif index == lo + 1:
                result[group] = low + (seconds - low) * (pos - lo)
        index += 1
    return result


def _minutes(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    return round(seconds / clock.minute_seconds(), 1)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _row(key: str, s: dict[str, Any], b: dict[str, Any], p90: float | None) -> dict[str, Any]:
    resolved = s.get("resolved", 0)
    return {
        "key": key,
        "assigned": s.get("assigned", 0),
        "resolved": resolved,
        "in_time_rate": _rate(s.get("in_time", 0), resolved),
        "breaches": s.get("breaches", 0),
        "handovers": s.get("handovers", 0),
        "reopen_rate": _rate(s.get("rejected", 0), s.get("verdicts", 0)),
        "mean_resolve_minutes": _minutes(s.get("resolve_avg")),
        "p90_resolve_minutes": _minutes(p90),
        "mean_handle_minutes": _minutes(s.get("handle_avg")),
        "mean_rating": round(s["rating_avg"], 2) if s.get("rating_avg") is not None else None,
        "satisfied_rate": _rate(s.get("satisfied", 0), s.get("rated", 0)),
        "open": b.get("open", 0),
        "overdue": b.get("overdue", 0),
    }


# -- series for the dashboard's charts ------------------------------------------------


def kpi_daily(*, period: Period, team_ids: list[int] | None,
              now: datetime | None = None) -> list[dict[str, Any]]:
    """Per day of the period: tickets created, resolutions, in-time rate of
    those resolutions (definitions as in the rows), and the open backlog at
    the end of the day. Backlog = open now minus the net flow (created and
    reopened in, resolved and cancelled out) after the day ended. Three
    queries."""
    now = now or timezone.now()
    tz = timezone.get_default_timezone()
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    flow = (
        _events(period, team_ids, BACKLOG_FLOW)
        .annotate(day=TruncDate("at", tzinfo=tz))
        .values("day", "kind")
        .annotate(n=Count("id"), in_time=Count("id", filter=Q(kind=K.CALLBACK_RESOLVED)
                                               | Q(kind=K.RESOLVED, details__in_time=True)))
        .order_by()
    )
    for row in flow:
        day = row["day"]
        per_day[day][row["kind"]] += row["n"]
        per_day[day]["in_time"] += row["in_time"]
    after = (
        _scoped(TicketEvent.objects.filter(kind__in=list(BACKLOG_FLOW), at__gte=period.end),
                team_ids, "ticket__team_id")
        .values("kind").annotate(n=Count("id")).order_by()
    )
    backlog = _scoped(Ticket.objects.filter(state__in=OPEN_STATES), team_ids, "team_id").count()
    backlog -= sum(BACKLOG_FLOW[r["kind"]] * r["n"] for r in after)
    days = []
    for day in reversed(period.days):
        counts = per_day.get(day, {})
        resolved = counts.get(K.RESOLVED, 0) + counts.get(K.CALLBACK_RESOLVED, 0)
        days.append({
            "day": day,
            "created": counts.get(K.CREATED, 0),
            "resolved": resolved,
            "in_time_rate": _rate(counts.get("in_time", 0), resolved),
            "backlog": backlog if _day_start(day) <= now else None,
        })
        backlog -= sum(BACKLOG_FLOW[k] * counts.get(k, 0) for k in BACKLOG_FLOW)
    return list(reversed(days))


def kpi_rating_counts(*, period: Period, team_ids: list[int] | None) -> dict[int, int]:
    """How many ratings of each value 1-5 were given in the period."""
    counts = {value: 0 for value in range(1, 6)}
    qs = (
        _events(period, team_ids, RATED)
        .annotate(rating=JsonValue("rating", IntegerField()))
        .filter(rating__isnull=False)
        .values("rating").annotate(n=Count("id")).order_by()
    )
    for row in qs:
        counts[row["rating"]] = row["n"]
    return counts
