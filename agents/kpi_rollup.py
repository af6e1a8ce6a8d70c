"""Builds the KPI daily rollup (``agents.kpi_models``) for closed days.

A beat sweep (``agents.kpi_rollup_sweep``) rolls up every day that ended at
least ``kpi.ROLLUP_SETTLE`` ago and is not rolled up yet, newest first, a
bounded number per run. Events are append-only and written with the time of
the change, so a closed day's events never change afterwards: a reopen, a
late rating or a cancel are events of the day they happen, which the
selectors read directly until that day is rolled up in turn. Rebuilding a
day gives the same rows (idempotent); a concurrent rebuild of the same day
fails on the unique constraint and is rolled back.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from agents import kpi
from agents.kpi_models import KpiDay, KpiRollupDay
from tickets.models import TicketEvent

K = TicketEvent.Kind
ROLLUP_KINDS = (*kpi.ROW_KINDS, K.CREATED, K.CANCELLED)
SWEEP_DAYS = 62


def kpi_rollup_day(*, day: date, now: datetime | None = None) -> int:
    """(Re)build the rollup rows of one local day; returns the number of rows."""
    now = now or timezone.now()
    if day > kpi.kpi_rollable_last(now):
        raise ValueError(f"{day} is not closed yet")
    ranges = [(kpi._day_start(day), kpi._day_start(day + timedelta(days=1)))]
    group = {"team": F("ticket__team_id"), "ttype": F("ticket__ticket_type_id"),
             "agent_key": kpi._agent_key()}
    qs = (
        kpi._with_measures(kpi._events(ranges, None, ROLLUP_KINDS).annotate(**group))
        .values("team", "ttype", "agent_key")
        .annotate(**kpi._stat_aggregates(rollup=True))
        .order_by()
    )
    durations: dict[tuple, list[int]] = defaultdict(list)
    for team, ttype, agent, micros in (
            kpi._events(ranges, None, kpi.RESOLUTIONS)
            .annotate(**group, micros=kpi.Micros(F("at"), F("ticket__created_at")))
            .values_list("team", "ttype", "agent_key", "micros").order_by()):
        durations[(team, ttype, agent or "")].append(micros)
    fields = {f.name for f in KpiDay._meta.concrete_fields} - {"id", "day", "team_id",
                                                               "ticket_type_id", "agent"}
    rows = []
    events = 0
    for stats in qs:
        stats = kpi._ints(stats)
        key = (stats.pop("team"), stats.pop("ttype"), stats.pop("agent_key") or "")
        values: dict[str, Any] = {name: stats[name] for name in fields if name in stats}
        values["resolve_values"] = sorted(durations.get(key, []))
        events += sum(stats[n] for n in ("created", "cancelled", "assigned", "resolved",
                                         "breaches", "handovers", "verdicts"))
        rows.append(KpiDay(day=day, team_id=key[0], ticket_type_id=key[1], agent=key[2],
                           **values))
    with transaction.atomic():
        KpiDay.objects.filter(day=day).delete()
        KpiDay.objects.bulk_create(rows, batch_size=1000)
        KpiRollupDay.objects.update_or_create(day=day, defaults={"built_at": now,
                                                                 "events": events})
    return len(rows)


def kpi_rollup_sweep(*, now: datetime | None = None, limit: int = SWEEP_DAYS) -> list[date]:
    """Roll up the closed days not rolled up yet (newest first, at most
    ``limit``), from the day of the first event on; returns the days built."""
    now = now or timezone.now()
    first_event = TicketEvent.objects.order_by("id").values_list("at", flat=True).first()
    if first_event is None:
        return []
    tz = timezone.get_default_timezone()
    first = timezone.localdate(first_event, tz)
    last = kpi.kpi_rollable_last(now)
    if first > last:
        return []
    done = set(KpiRollupDay.objects.filter(day__gte=first, day__lte=last)
               .values_list("day", flat=True))
    todo = [last - timedelta(days=n) for n in range((last - first).days + 1)]
    built = []
    for day in [d for d in todo if d not in done][:limit]:
        try:
            kpi_rollup_day(day=day, now=now)
        except IntegrityError:
            continue  # built concurrently by another run
        built.append(day)
    return built
