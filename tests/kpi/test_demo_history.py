"""The demo command's KPI history: played through the services, idempotent."""
from __future__ import annotations

from datetime import timedelta
from io import StringIO

from django.core.management import call_command

from agents import kpi
from agents.kpi_models import KpiRollupDay
from tickets.models import Ticket, TicketEvent


def test_demo_history_fills_the_charts_once(db):
    call_command("orderly_demo", "--quiet-logins", "--history-days", "4", stdout=StringIO(),
                 stderr=StringIO())
    tickets = Ticket.objects.count()
    events = TicketEvent.objects.count()
    today = kpi.kpi_today()
    period = kpi.Period(today - timedelta(days=4), today - timedelta(days=1))
    daily = kpi.kpi_daily(period=period, team_ids=None)
    assert sum(d["resolved"] for d in daily) > 5
    assert KpiRollupDay.objects.filter(day__gte=period.first).count() >= 3
    for group_by in kpi.GROUPINGS:
        assert kpi.kpi_rows(period=period, group_by=group_by, team_ids=None) == kpi.kpi_rows(
            period=period, group_by=group_by, team_ids=None, rollup=False)
    assert not TicketEvent.objects.filter(at__gt=kpi.timezone.now()).exists()
    # Each ticket's story moves forward in time only.
    for ticket in Ticket.objects.prefetch_related("events"):
        times = [e.at for e in ticket.events.all()]
        assert times == sorted(times), ticket.pk

    out = StringIO()
    call_command("orderly_demo", "--quiet-logins", "--history-days", "4", stdout=out,
                 stderr=StringIO())
    assert "already in place" in out.getvalue()
    assert (Ticket.objects.count(), TicketEvent.objects.count()) == (tickets, events)
