"""The KPI daily rollup (agents/kpi_rollup.py builds it, agents/kpi.py reads it).

One ``KpiDay`` row per local day, team, type and agent holds the counts and
sums of that day's events, and the created->resolved durations (for an exact
p90). A ``KpiRollupDay`` row marks a day as rolled up: the selectors read
marked days from the rollup and compute every other day directly from the
event log, so a missing, late or failed rollup never changes a number.
"""
from __future__ import annotations

from django.db import models


class KpiRollupDay(models.Model):
    """A local day (``settings.TIME_ZONE``) whose ``KpiDay`` rows are complete."""

    day = models.DateField(primary_key=True)
    built_at = models.DateTimeField()
    events = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"KPI rollup of {self.day}"


class KpiDay(models.Model):
    day = models.DateField()
    # Plain ids, no foreign keys: the rollup is derived data, rebuilt at will,
    # and must never block deleting or renaming the rows it summarises.
    team_id = models.BigIntegerField()
    ticket_type_id = models.BigIntegerField()
    # ``details.agent`` of the events; "" for none (callback, pool).
    agent = models.CharField(max_length=150, blank=True, default="")

    created = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    assigned = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    in_time = models.PositiveIntegerField(default=0)
    breaches = models.PositiveIntegerField(default=0)
    handovers = models.PositiveIntegerField(default=0)
    verdicts = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    # Durations in whole microseconds, so sums add up exactly in any order.
    resolve_us = models.BigIntegerField(default=0)
    handle_us = models.BigIntegerField(default=0)
    handled = models.PositiveIntegerField(default=0)
    rating_1 = models.PositiveIntegerField(default=0)
    rating_2 = models.PositiveIntegerField(default=0)
    rating_3 = models.PositiveIntegerField(default=0)
    rating_4 = models.PositiveIntegerField(default=0)
    rating_5 = models.PositiveIntegerField(default=0)
    resolve_values = models.JSONField(default=list, blank=True)  # microseconds, sorted

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "team_id", "ticket_type_id", "agent"],
                                    name="kpiday_unique_group"),
        ]
        indexes = [models.Index(fields=["day", "team_id"], name="kpiday_day_team_idx")]

    def __str__(self) -> str:
        return f"KPIs of {self.day} team {self.team_id} type {self.ticket_type_id} {self.agent}"
