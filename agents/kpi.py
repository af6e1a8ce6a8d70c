"""KPIs: who did what, how fast, how well (DESIGN.md 4).

Every number is computed from the event log (``TicketEvent``) and ticket
timestamps by aggregate queries: a fixed number of queries whatever the
number of tickets. Closed days come from the daily rollup
(``agents.kpi_models.KpiDay``, built by the beat sweep in
``agents/kpi_rollup.py``: counts, integer sums and the resolve durations of
each day, team, type and agent); days not rolled up yet -- today at least --
are read from the events directly (an index range over ``event_kind_at_idx``).
Events are append-only and written at the time of the change, so a closed
day never changes and both sources give the same numbers to the last digit
(``rollup=False`` reads everything directly; tests and the benchmark compare
the two). Durations are summed in whole microseconds, so sums are exact in
any order.

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
    BigIntegerField,
    CharField,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Q,
    QuerySet,
    Sum,
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


class Micros(Func):
    """``end - start`` in whole microseconds (integer): sums of these add up
    exactly in any order, so the rollup and the direct scan agree to the
    last digit. Exact on PostgreSQL (EXTRACT gives numeric)."""

    output_field = BigIntegerField()

    def __init__(self, end: Any, start: Any) -> None:
        super().__init__(end, start)

    def as_sqlite(self, compiler, connection, **extra):  # noqa: ANN001
        return self.as_sql(compiler, connection,
                           template="CAST(ROUND((julianday(%(expressions)s)) * 86400000000.0) "
                                    "AS INTEGER)",
                           arg_joiner=") - julianday(", **extra)

    def as_postgresql(self, compiler, connection, **extra):  # noqa: ANN001
        return self.as_sql(compiler, connection,
                           template="(ROUND(EXTRACT(EPOCH FROM (%(expressions)s)) * 1000000))::bigint",
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
    module, never user input. ``micros`` turns seconds into whole
    microseconds (exact on PostgreSQL through numeric)."""

    def __init__(self, key: str, output_field: Any, micros: bool = False) -> None:
        if not key.isidentifier():
            raise ValueError(key)
        self.key = key
        self.micros = micros
        super().__init__(F("details"), output_field=output_field)

    def as_sqlite(self, compiler, connection, **extra):  # noqa: ANN001
        value = f"json_extract(%(expressions)s, '$.{self.key}')"
        if self.micros:
            return self.as_sql(compiler, connection,
                               template=f"CAST(ROUND({value} * 1000000.0) AS INTEGER)", **extra)
        return self.as_sql(compiler, connection,
                           template=f"CAST({value} AS {self._sqlite_type()})", **extra)

    def as_postgresql(self, compiler, connection, **extra):  # noqa: ANN001
        value = f"(%(expressions)s ->> '{self.key}')"
        if self.micros:
            return self.as_sql(compiler, connection,
                               template=f"(ROUND({value}::numeric * 1000000))::bigint", **extra)
        cast = self.output_field.cast_db_type(connection)
        return self.as_sql(compiler, connection, template=f"({value}::{cast})", **extra)

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


Range = tuple[datetime, datetime]


def _events(ranges: list[Range], team_ids: list[int] | None, kinds: Iterable[str]) -> QuerySet:
    """Events of these kinds with ``start <= at < end`` in one of the ranges."""
    when = Q()
    for start, end in ranges:
        when |= Q(at__gte=start, at__lt=end)
    return _scoped(TicketEvent.objects.filter(when, kind__in=list(kinds)), team_ids,
                   "ticket__team_id")


# -- rollup or event log: which days come from where -----------------------------------

# A day is rolled up once it ended this long ago: an event is written with the
# time its transaction started, so a transaction still open at midnight may
# commit a little later; this margin lets it land before the day is summed.
ROLLUP_SETTLE = timedelta(hours=1)


def kpi_rollable_last(now: datetime) -> date:
    """The last local day that may be rolled up at ``now``."""
    day = timezone.localdate(now - ROLLUP_SETTLE, timezone.get_default_timezone())
    return day - timedelta(days=1)


def _split(first: date, last: date, now: datetime, rollup: bool) -> tuple[list[date], list[Range]]:
    """The days of ``first..last`` read from the rollup (those marked rolled
    up), and the time ranges (runs of the other days) to scan directly."""
    from agents.kpi_models import KpiRollupDay

    rolled: set[date] = set()
    upto = min(last, kpi_rollable_last(now))
    if rollup and first <= upto:
        rolled = set(KpiRollupDay.objects.filter(day__gte=first, day__lte=upto)
                     .values_list("day", flat=True))
    ranges: list[Range] = []
    day = first
    while day <= last:
        if day in rolled:
            day += timedelta(days=1)
            continue
        run_start = day
        while day <= last and day not in rolled:
            day += timedelta(days=1)
        ranges.append((_day_start(run_start), _day_start(day)))
    return sorted(rolled), ranges


# -- rows ---------------------------------------------------------------------------

# Counts and sums per group; a row's rates and means are derived from these.
STAT_KEYS = ("assigned", "resolved", "in_time", "breaches", "handovers", "verdicts", "rejected",
             "resolve_us", "handle_us", "handled", "rating_sum", "rated", "satisfied")
RATING_KEYS = tuple(f"rating_{value}" for value in range(1, 6))


def kpi_rows(*, period: Period, group_by: str, team_ids: list[int] | None,
             keys: Iterable[str] | None = None, now: datetime | None = None,
             rollup: bool = True) -> list[dict[str, Any]]:
    """The KPI rows (``ROW_KEYS``) of a period, one per group, sorted by key.

    ``team_ids`` is the scope (see ``kpi_team_ids``); ``keys`` keeps only these
    keys (an agent's own row). Days already rolled up are read from
    ``KpiDay``, the others (today at least) from the event log; ``rollup=False``
    reads everything from the event log (the reference the tests compare
    with). A fixed number of queries.
    """
    now = now or timezone.now()
    names = _group_names(group_by, team_ids)
    rolled, ranges = _split(period.first, period.last, now, rollup)
    if not rolled:
        stats = _event_stats(ranges, group_by, team_ids, p90=True)
        p90 = _p90_resolve(ranges, group_by, team_ids, stats)
    else:
        stats = _rollup_stats(rolled, group_by, team_ids)
        for group, direct in _event_stats(ranges, group_by, team_ids).items():
            _add(stats.setdefault(group, {}), direct)
        p90 = _rollup_p90(rolled, ranges, group_by, team_ids)
    backlog = _backlog_now(group_by, team_ids, now)
    if group_by != "agent":
        missing = (set(stats) | set(backlog)) - set(names)
        if missing:
            names.update(_names_of(group_by, missing))
    else:
        names.update({k: k for k in (set(stats) | set(backlog)) if k is not None})
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


def _stat_aggregates(*, rollup: bool = False) -> dict[str, Any]:
    """The aggregates of one grouped scan of events (``STAT_KEYS``); the
    rollup also counts created and cancelled tickets and each rating."""
    resolution = Q(kind__in=RESOLUTIONS)
    rated = Q(kind__in=RATED, m_rating__isnull=False)
    aggregates: dict[str, Any] = {
        "assigned": Count("id", filter=Q(kind=K.ASSIGNED)),
        "resolved": Count("id", filter=resolution),
        "in_time": Count("id", filter=Q(kind=K.CALLBACK_RESOLVED)
                         | Q(kind=K.RESOLVED, details__in_time=True)),
        "breaches": Count("id", filter=Q(kind=K.BREACHED)),
        "handovers": Count("id", filter=Q(kind=K.HANDED_OVER)),
        "verdicts": Count("id", filter=Q(kind__in=VERDICTS)),
        "rejected": Count("id", filter=Q(kind=K.REJECTED)),
        "resolve_us": Sum("m_resolve", filter=resolution),
        "handle_us": Sum("m_handle", filter=Q(kind=K.RESOLVED)),
        "handled": Count("m_handle", filter=Q(kind=K.RESOLVED)),
        "rating_sum": Sum("m_rating", filter=rated),
        "rated": Count("id", filter=rated),
        "satisfied": Count("id", filter=Q(kind__in=RATED, m_rating__gte=4)),
    }
    if rollup:
        aggregates["created"] = Count("id", filter=Q(kind=K.CREATED))
        aggregates["cancelled"] = Count("id", filter=Q(kind=K.CANCELLED))
        for value, name in enumerate(RATING_KEYS, start=1):
            aggregates[name] = Count("id", filter=Q(kind__in=RATED, m_rating=value))
    return aggregates


def _with_measures(qs: QuerySet) -> QuerySet:
    return qs.alias(
        m_resolve=Micros(F("at"), F("ticket__created_at")),
        m_handle=JsonValue("handle_seconds", BigIntegerField(), micros=True),
        m_rating=JsonValue("rating", IntegerField()),
    )


def _event_stats(ranges: list[Range], group_by: str, team_ids: list[int] | None,
                 p90: bool = False) -> dict[Any, dict]:
    """One grouped scan of the events in ``ranges``: counts and sums per group
    (and the p90 on PostgreSQL when ``p90``)."""
    if not ranges:
        return {}
    kinds = ROW_KINDS if group_by != "agent" else tuple(k for k in ROW_KINDS
                                                         if k != K.CALLBACK_RESOLVED)
    aggregates = _stat_aggregates()
    if p90 and _db_percentile():
        aggregates["resolve_p90"] = Percentile90(Seconds(F("at"), F("ticket__created_at")),
                                                 filter=Q(kind__in=RESOLUTIONS))
    qs = (
        _with_measures(_events(ranges, team_ids, kinds).annotate(group=_event_key(group_by)))
        .values("group")
        .annotate(**aggregates)
        .order_by()
    )
    return {row.pop("group"): _ints(row) for row in qs}


def _ints(row: dict[str, Any]) -> dict[str, Any]:
    """SUM(bigint) is numeric on PostgreSQL: back to int; NULL sums to 0."""
    for key in ("resolve_us", "handle_us", "rating_sum"):
        if key in row:
            row[key] = int(row[key] or 0)
    return row


def _add(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key in STAT_KEYS:
        into[key] = into.get(key, 0) + (more.get(key) or 0)


def _rollup_group(group_by: str) -> str:
    return {"agent": "agent", "team": "team_id", "type": "ticket_type_id"}[group_by]


def _rollup_rows(days: list[date], group_by: str, team_ids: list[int] | None) -> QuerySet:
    from agents.kpi_models import KpiDay

    qs = _scoped(KpiDay.objects.filter(day__gte=days[0], day__lte=days[-1], day__in=days),
                 team_ids, "team_id")
    return qs.exclude(agent="") if group_by == "agent" else qs


def _rollup_stats(days: list[date], group_by: str,
                  team_ids: list[int] | None) -> dict[Any, dict]:
    """Counts and sums per group from the rolled-up days: one aggregate over
    ``KpiDay`` (a few hundred rows a day)."""
    fields = ("assigned", "resolved", "in_time", "breaches", "handovers", "verdicts", "rejected",
              "resolve_us", "handle_us", "handled", *RATING_KEYS)
    qs = (_rollup_rows(days, group_by, team_ids)
          .values(group=F(_rollup_group(group_by)))
          .annotate(**{f"s_{name}": Sum(name) for name in fields})
          .order_by())
    stats: dict[Any, dict] = {}
    for row in qs:
        counts = {name: int(row[f"s_{name}"] or 0) for name in fields}
        ratings = [counts.pop(name) for name in RATING_KEYS]
        counts["rated"] = sum(ratings)
        counts["rating_sum"] = sum(value * n for value, n in enumerate(ratings, start=1))
        counts["satisfied"] = ratings[3] + ratings[4]
        stats[row["group"]] = counts
    return stats


def _rollup_p90(days: list[date], ranges: list[Range], group_by: str,
                team_ids: list[int] | None) -> dict[Any, float]:
    """p90 of created->resolved seconds per group over the rolled-up days'
    stored durations and the other days' resolutions. PostgreSQL computes it
    in one query (``percentile_cont`` over both); elsewhere in Python."""
    rollup_qs = (_rollup_rows(days, group_by, team_ids).filter(resolved__gt=0)
                 .values_list(_rollup_group(group_by), "resolve_values"))
    if not _db_percentile():
        values: dict[Any, list[int]] = defaultdict(list)
        for group, durations in rollup_qs.iterator(chunk_size=5000):
            values[group].extend(durations)
        for group, micros in _resolve_values(ranges, group_by, team_ids).items():
            values[group].extend(micros)
        return {group: _percentile90(sorted(v)) for group, v in values.items() if v}
    sql, params = rollup_qs.query.sql_with_params()
    parts = [f"SELECT r.g, (e.v)::bigint AS v FROM ({sql}) AS r(g, vals) "
             f"CROSS JOIN LATERAL jsonb_array_elements_text(r.vals) AS e(v)"]
    params = list(params)
    if ranges:
        direct_sql, direct_params = _resolve_values_qs(ranges, group_by, team_ids).query \
            .sql_with_params()
        parts.append(f"SELECT d.g, d.v FROM ({direct_sql}) AS d(g, v)")
        params.extend(direct_params)
    query = ("SELECT x.g, percentile_cont(0.9) WITHIN GROUP (ORDER BY x.v::float8 / 1000000) "
             f"FROM ({' UNION ALL '.join(parts)}) AS x GROUP BY x.g")
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return {group: p90 for group, p90 in cursor.fetchall() if p90 is not None}


def _resolve_values_qs(ranges: list[Range], group_by: str, team_ids: list[int] | None) -> QuerySet:
    kinds = (K.RESOLVED,) if group_by == "agent" else RESOLUTIONS
    return (_events(ranges, team_ids, kinds)
            .annotate(group=_event_key(group_by), micros=Micros(F("at"), F("ticket__created_at")))
            .values_list("group", "micros").order_by())


def _resolve_values(ranges: list[Range], group_by: str,
                    team_ids: list[int] | None) -> dict[Any, list[int]]:
    """Created->resolved microseconds of the resolutions in ``ranges``, per group."""
    values: dict[Any, list[int]] = defaultdict(list)
    if ranges:
        for group, micros in _resolve_values_qs(ranges, group_by, team_ids).iterator(
                chunk_size=5000):
            values[group].append(micros)
    return values


def _percentile90(ordered: list[int]) -> float | None:
    """``percentile_cont(0.9)`` of sorted microseconds, in seconds, computed
    as PostgreSQL does (float8: lo + (hi - lo) * fraction)."""
    if not ordered:
        return None
    pos = 0.9 * (len(ordered) - 1)
    lo = int(pos)
    low = ordered[lo] / 1_000_000
    if lo + 1 >= len(ordered) or pos == lo:
        return low
    high = ordered[lo + 1] / 1_000_000
    return low + (high - low) * (pos - lo)


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


def _p90_resolve(ranges: list[Range], group_by: str, team_ids: list[int] | None,
                 stats: dict[Any, dict]) -> dict[Any, float]:
    """p90 of created->resolved seconds per group, straight from the events.
    On PostgreSQL it came with the stats; elsewhere the durations are streamed
    sorted by group and value, and only the two values around each group's
    90% position are kept (constant memory; the counts come from ``stats``)."""
    if _db_percentile():
        return {g: s["resolve_p90"] for g, s in stats.items() if s.get("resolve_p90") is not None}
    if not ranges:
        return {}
    kinds = (K.RESOLVED,) if group_by == "agent" else RESOLUTIONS
    qs = (
        _events(ranges, team_ids, kinds)
        .annotate(group=_event_key(group_by), micros=Micros(F("at"), F("ticket__created_at")))
        .order_by("group", "micros")
        .values_list("group", "micros")
    )
    result: dict[Any, float] = {}
    index = 0
    current: Any = object()
    low = 0.0
    for group, micros in qs.iterator(chunk_size=2000):
        seconds = micros / 1_000_000
        if group != current:
            current, index = group, 0
        n = stats.get(group, {}).get("resolved", 0)
        if n:
            pos = 0.9 * (n - 1)
            lo = int(pos)
            if index == lo:
                low = seconds
                result[group] = seconds
            elif index == lo + 1 and pos != lo:
                result[group] = low + (seconds - low) * (pos - lo)
        index += 1
    return result


def _minutes(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    return round(seconds / clock.minute_seconds(), 1)


def _mean_minutes(micros: int, n: int) -> float | None:
    return _minutes(micros / n / 1_000_000) if n else None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def kpi_row_empty(key: str) -> dict[str, Any]:
    """The row of a group with nothing in the period and nothing open."""
    return _row(key, {}, {}, None)


def _row(key: str, s: dict[str, Any], b: dict[str, Any], p90: float | None) -> dict[str, Any]:
    resolved = s.get("resolved", 0)
    rated = s.get("rated", 0)
    return {
        "key": key,
        "assigned": s.get("assigned", 0),
        "resolved": resolved,
        "in_time_rate": _rate(s.get("in_time", 0), resolved),
        "breaches": s.get("breaches", 0),
        "handovers": s.get("handovers", 0),
        "reopen_rate": _rate(s.get("rejected", 0), s.get("verdicts", 0)),
        "mean_resolve_minutes": _mean_minutes(s.get("resolve_us", 0), resolved),
        "p90_resolve_minutes": _minutes(p90),
        "mean_handle_minutes": _mean_minutes(s.get("handle_us", 0), s.get("handled", 0)),
        "mean_rating": round(s.get("rating_sum", 0) / rated, 2) if rated else None,
        "satisfied_rate": _rate(s.get("satisfied", 0), rated),
        "open": b.get("open", 0),
        "overdue": b.get("overdue", 0),
    }


# -- series for the dashboard's charts ------------------------------------------------


def _daily_flow(first: date, last: date, team_ids: list[int] | None, now: datetime,
                rollup: bool) -> dict[date, dict[str, int]]:
    """Per local day of ``first..last``: the backlog-moving events by kind and
    the in-time resolutions, from the rollup where the day is rolled up."""
    from agents.kpi_models import KpiDay

    tz = timezone.get_default_timezone()
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rolled, ranges = _split(first, last, now, rollup)
    if rolled:
        qs = (_scoped(KpiDay.objects.filter(day__gte=rolled[0], day__lte=rolled[-1],
                                            day__in=rolled), team_ids, "team_id")
              .values("day")
              .annotate(created=Sum("created"), resolved=Sum("resolved"),
                        rejected=Sum("rejected"), cancelled=Sum("cancelled"),
                        in_time=Sum("in_time"))
              .order_by())
        for row in qs:
            counts = per_day[row["day"]]
            counts[K.CREATED] += row["created"]
            counts[K.RESOLVED] += row["resolved"]  # both resolution kinds
            counts[K.REJECTED] += row["rejected"]
            counts[K.CANCELLED] += row["cancelled"]
            counts["in_time"] += row["in_time"]
    if ranges:
        flow = (
            _events(ranges, team_ids, BACKLOG_FLOW)
            .annotate(day=TruncDate("at", tzinfo=tz))
            .values("day", "kind")
            .annotate(n=Count("id"), in_time=Count("id", filter=Q(kind=K.CALLBACK_RESOLVED)
                                                   | Q(kind=K.RESOLVED, details__in_time=True)))
            .order_by()
        )
        for row in flow:
            counts = per_day[row["day"]]
            counts[row["kind"]] += row["n"]
            counts["in_time"] += row["in_time"]
    return per_day


def kpi_daily(*, period: Period, team_ids: list[int] | None,
              now: datetime | None = None, rollup: bool = True) -> list[dict[str, Any]]:
    """Per day of the period: tickets created, resolutions, in-time rate of
    those resolutions (definitions as in the rows), and the open backlog at
    the end of the day. Backlog = open now minus the net flow (created and
    reopened in, resolved and cancelled out) after the day ended. A few
    queries (rolled-up days from the rollup, the rest from the events)."""
    now = now or timezone.now()
    today = timezone.localdate(now, timezone.get_default_timezone())
    per_day = _daily_flow(period.first, max(period.last, today), team_ids, now, rollup)
    backlog = _scoped(Ticket.objects.filter(state__in=OPEN_STATES), team_ids, "team_id").count()
    for day, counts in per_day.items():
        if day > period.last:
            backlog -= sum(BACKLOG_FLOW[k] * counts.get(k, 0) for k in BACKLOG_FLOW)
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


def kpi_rating_counts(*, period: Period, team_ids: list[int] | None,
                      now: datetime | None = None, rollup: bool = True) -> dict[int, int]:
    """How many ratings of each value 1-5 were given in the period."""
    from agents.kpi_models import KpiDay

    now = now or timezone.now()
    counts = {value: 0 for value in range(1, 6)}
    rolled, ranges = _split(period.first, period.last, now, rollup)
    if rolled:
        sums = _scoped(KpiDay.objects.filter(day__gte=rolled[0], day__lte=rolled[-1],
                                             day__in=rolled), team_ids, "team_id").aggregate(
            **{name: Sum(name) for name in RATING_KEYS})
        for value, name in enumerate(RATING_KEYS, start=1):
            counts[value] += sums[name] or 0
    if ranges:
        qs = (
            _events(ranges, team_ids, RATED)
            .annotate(rating=JsonValue("rating", IntegerField()))
            .filter(rating__isnull=False)
            .values("rating").annotate(n=Count("id")).order_by()
        )
        for row in qs:
            counts[row["rating"]] += row["n"]
    return counts
