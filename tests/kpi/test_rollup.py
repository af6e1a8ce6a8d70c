"""The KPI rollup (agents/kpi_rollup.py) gives exactly the numbers of the
direct computation over the event log, also after tickets change once their
days were rolled up: a reopen, a late rating, a cancel, a second resolution.

A seeded random desk is played through the real services for five days
(2026-03-02..06, clock moved by odd seconds and microseconds so durations are
not round), the closed days are rolled up, and every grouping, scope and
period is compared with ``rollup=False``.
"""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone as dt_timezone

import pytest

from agents import kpi
from agents.kpi_models import KpiDay, KpiRollupDay
from agents.kpi_rollup import kpi_rollup_day, kpi_rollup_sweep
from feedback.services import ticket_feedback
from tests.factories import AgentUserFactory, TicketTypeFactory, ticket_assign_to
from tickets.errors import OrderlyError
from tickets.models import Ticket, TicketEvent, TicketState
from tickets.services import callback
from tickets.services.creation import ticket_create
from tickets.services.sweeps import ticket_breach
from tickets.services.work import ticket_cancel, ticket_handover, ticket_resolve

FIRST = date(2026, 3, 2)
DAYS = 5


def moment(day: date | datetime, seconds: float) -> datetime:
    start = datetime(day.year, day.month, day.day, tzinfo=dt_timezone.utc)
    if isinstance(day, datetime):
        start += timedelta(hours=day.hour)
    return start + timedelta(seconds=seconds)


class Desk:
    """Plays random but plausible work through the services."""

    def __init__(self, clock, monkeypatch, requester, agents, slugs) -> None:
        self.clock, self.requester, self.agents, self.slugs = clock, requester, agents, slugs
        self.rng = random.Random(6)
        monkeypatch.setattr(callback, "_post", lambda t: ("resolved", "Done by the CRM.", ""))

    def tick(self) -> None:
        self.clock.shift(seconds=self.rng.randint(60, 1500) + self.rng.random())

    def step(self) -> None:
        rng = self.rng
        open_ = list(Ticket.objects.exclude(state__in=[TicketState.CLOSED,
                                                       TicketState.CANCELLED]).order_by("id"))
        roll = rng.random()
        try:
            if roll < 0.3 or not open_:
                ticket, _ = ticket_create(by=self.requester, type_slug=rng.choice(self.slugs),
                                          title="Generated")
                if ticket.state == TicketState.CALLBACK and rng.random() < 0.6:
                    callback.callback_attempt(ticket_id=ticket.pk)
                return
            ticket = rng.choice(open_)
            if ticket.state == TicketState.POOLED:
                if ticket.due_at and ticket.due_at < self.clock.now() and rng.random() < 0.5:
                    ticket_breach(ticket_id=ticket.pk)
                elif rng.random() < 0.07:
                    ticket_cancel(ticket_id=ticket.pk, by=self.requester, reason="Not needed.")
                else:
                    ticket_assign_to(ticket, rng.choice(self.agents))
            elif ticket.state == TicketState.ASSIGNED:
                agent = ticket.assignee
                if ticket.due_at and ticket.due_at < self.clock.now() and rng.random() < 0.4:
                    ticket_breach(ticket_id=ticket.pk)
                elif rng.random() < 0.12:
                    ticket_handover(ticket_id=ticket.pk, by=agent, reason="Not my field.")
                else:
                    ticket_resolve(ticket_id=ticket.pk, by=agent, result="Done.")
            elif ticket.state == TicketState.RESOLVED:
                accepted = rng.random() < 0.75
                ticket_feedback(ticket_id=ticket.pk, by=self.requester, accepted=accepted,
                                rating=rng.choice([None, 1, 2, 3, 4, 5, 5]),
                                comment="" if accepted else "Not fixed.")
        except OrderlyError:
            pass

    def play(self, day: datetime, steps: int) -> None:
        self.clock.move_to(moment(day, 8 * 3600 + self.rng.random() * 60))
        for _ in range(steps):
            self.step()
            self.tick()


@pytest.fixture
def desk(clock, monkeypatch, team, other_team, ticket_type, requester, agent_user,
         other_agent_user, outside_agent_user):
    TicketTypeFactory(slug="crm", name="CRM", team=team, callback=True, time_limit_minutes=90)
    TicketTypeFactory(slug="visa", name="Visa", team=team, time_limit_minutes=30,
                      on_breach="notify")
    TicketTypeFactory(slug="booking", name="Booking", team=other_team, time_limit_minutes=45)
    agents = [agent_user, other_agent_user, AgentUserFactory(username="ada", teams=[team])]
    d = Desk(clock, monkeypatch, requester, agents, [ticket_type.slug, "crm", "visa"])
    other = Desk(clock, monkeypatch, requester, [outside_agent_user], ["booking"])
    for n in range(DAYS):
        d.play(FIRST + timedelta(days=n), 80)
        first = datetime(FIRST.year, FIRST.month, FIRST.day, 6)
        other.play(first + timedelta(days=n), 10)
    return d


def assert_same(team_ids, periods, now=None) -> None:
    for period in periods:
        for group_by in kpi.GROUPINGS:
            fast = kpi.kpi_rows(period=period, group_by=group_by, team_ids=team_ids, now=now)
            direct = kpi.kpi_rows(period=period, group_by=group_by, team_ids=team_ids, now=now,
                                  rollup=False)
            assert fast == direct, (period, group_by)
        assert kpi.kpi_daily(period=period, team_ids=team_ids, now=now) == kpi.kpi_daily(
            period=period, team_ids=team_ids, now=now, rollup=False), period
        assert kpi.kpi_rating_counts(period=period, team_ids=team_ids, now=now) == (
            kpi.kpi_rating_counts(period=period, team_ids=team_ids, now=now, rollup=False))


def periods_up_to(last: date) -> list[kpi.Period]:
    return [kpi.Period(FIRST - timedelta(days=1), last), kpi.Period(FIRST, FIRST),
            kpi.Period(FIRST + timedelta(days=1), FIRST + timedelta(days=3)),
            kpi.Period(last, last), kpi.Period(last - timedelta(days=29), last)]


def test_generated_history_is_rich_enough(desk, team):
    kinds = set(TicketEvent.objects.values_list("kind", flat=True))
    assert {"assigned", "resolved", "callback_resolved", "handed_over", "breached", "accepted",
            "rejected", "cancelled"} <= kinds
    rows = kpi.kpi_rows(period=kpi.Period(FIRST, FIRST + timedelta(days=DAYS - 1)),
                        group_by="agent", team_ids=[team.pk], rollup=False)
    assert sum(r["resolved"] for r in rows) > 15


@pytest.mark.parametrize("scope", ["team", "all"])
def test_rollup_equals_direct_then_after_later_changes(desk, clock, team, requester, scope):
    team_ids = [team.pk] if scope == "team" else None
    sixth = FIRST + timedelta(days=DAYS)
    clock.move_to(moment(sixth, 2 * 3600))  # past the settle margin of the 5th day
    built = kpi_rollup_sweep()
    assert sorted(built) == [FIRST + timedelta(days=n) for n in range(DAYS)]
    assert KpiDay.objects.exists()
    assert_same(team_ids, periods_up_to(sixth))

    # Changes to tickets of rolled-up days, today.
    clock.move_to(moment(sixth, 9 * 3600 + 17.25))
    resolved = list(Ticket.objects.filter(state=TicketState.RESOLVED).order_by("id"))
    assert len(resolved) >= 2
    ticket_feedback(ticket_id=resolved[0].pk, by=requester, accepted=False, rating=1,
                    comment="Still broken.")  # a reopen
    ticket_feedback(ticket_id=resolved[1].pk, by=requester, accepted=True, rating=5)  # late
    clock.shift(minutes=3, seconds=11)
    open_ = (Ticket.objects.filter(state__in=[TicketState.POOLED, TicketState.ASSIGNED])
             .exclude(pk=resolved[0].pk).order_by("id").first())
    ticket_cancel(ticket_id=open_.pk, by=requester, reason="Too late.")
    reopened = Ticket.objects.get(pk=resolved[0].pk)
    agent = desk.agents[0]
    ticket_assign_to(reopened, agent)
    clock.shift(minutes=41, seconds=7.5)
    ticket_resolve(ticket_id=reopened.pk, by=agent, result="Fixed for real.")
    assert_same(team_ids, periods_up_to(sixth))

    # The next night the sixth day is rolled up too, and still nothing moves.
    clock.move_to(moment(sixth + timedelta(days=1), 3 * 3600))
    assert kpi_rollup_sweep() == [sixth]
    assert_same(team_ids, periods_up_to(sixth + timedelta(days=1)))


def test_rolled_days_are_read_from_the_rollup(desk, clock, team):
    clock.move_to(moment(FIRST + timedelta(days=DAYS), 2 * 3600))
    kpi_rollup_sweep()
    period = kpi.Period(FIRST, FIRST)
    before = kpi.kpi_rows(period=period, group_by="team", team_ids=[team.pk])
    # Events are append-only; deleting them behind the rollup's back shows
    # which source a figure comes from.
    TicketEvent.objects.filter(at__date=FIRST).delete()
    assert kpi.kpi_rows(period=period, group_by="team", team_ids=[team.pk]) == before
    assert kpi.kpi_rows(period=period, group_by="team", team_ids=[team.pk],
                        rollup=False) != before


def test_sweep_waits_for_the_settle_margin_and_is_idempotent(desk, clock):
    sixth = FIRST + timedelta(days=DAYS)
    clock.move_to(moment(sixth, 30 * 60))  # 00:30: the 5th day may still get events
    assert FIRST + timedelta(days=DAYS - 1) not in kpi_rollup_sweep()
    clock.move_to(moment(sixth, 61 * 60))
    assert kpi_rollup_sweep() == [FIRST + timedelta(days=DAYS - 1)]
    assert kpi_rollup_sweep() == []
    rows = list(KpiDay.objects.filter(day=FIRST).order_by("team_id", "ticket_type_id", "agent")
                .values())
    kpi_rollup_day(day=FIRST)
    again = list(KpiDay.objects.filter(day=FIRST).order_by("team_id", "ticket_type_id", "agent")
                 .values())
    assert [{k: v for k, v in r.items() if k != "id"} for r in again] == [
        {k: v for k, v in r.items() if k != "id"} for r in rows]
    assert KpiRollupDay.objects.count() == DAYS
    with pytest.raises(ValueError):
        kpi_rollup_day(day=sixth)


def test_sweep_task_is_scheduled():
    from django.conf import settings

    from agents.tasks import kpi_rollup_sweep_task

    assert kpi_rollup_sweep_task.name in {e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
