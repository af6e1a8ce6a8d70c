"""The KPI definitions (agents/kpi.py) on hand-computed histories."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents import kpi
from feedback.services import ticket_feedback
from tests.factories import AgentUserFactory, TicketTypeFactory, ticket_assign_to
from tests.kpi.conftest import EXPECTED, at, create
from tickets.errors import ValidationFailed
from tickets.models import TicketEvent
from tickets.services.sweeps import ticket_auto_close, ticket_breach
from tickets.services.work import ticket_resolve

DAY = kpi.Period(date(2026, 3, 2), date(2026, 3, 2))


def rows(group_by: str, team_ids=None, period: kpi.Period = DAY, **kw) -> dict[str, dict]:
    return {r["key"]: r for r in kpi.kpi_rows(period=period, group_by=group_by,
                                               team_ids=team_ids, **kw)}


@pytest.mark.parametrize("group_by", kpi.GROUPINGS)
def test_every_metric_of_the_scripted_day(scripted_day, team, group_by):
    assert rows(group_by, [team.pk]) == EXPECTED[group_by]


def test_rows_have_exactly_the_api_keys(scripted_day, team):
    for group_by in kpi.GROUPINGS:
        for row in kpi.kpi_rows(period=DAY, group_by=group_by, team_ids=[team.pk]):
            assert tuple(row) == kpi.ROW_KEYS


def test_a_superuser_supervisor_sees_every_team(scripted_day, team, outside_agent_user):
    everything = rows("agent", None)
    assert everything["agnes"] == EXPECTED["agent"]["agnes"]
    assert "olga" in everything  # an agent of another team, with zeros
    assert rows("team", None)["Bookings"]["assigned"] == 0


def test_other_teams_do_not_leak(scripted_day, other_team, outside_agent_user):
    assert rows("agent", [other_team.pk]) == {"olga": {
        "key": "olga", "assigned": 0, "resolved": 0, "in_time_rate": None, "breaches": 0,
        "handovers": 0, "reopen_rate": None, "mean_resolve_minutes": None,
        "p90_resolve_minutes": None, "mean_handle_minutes": None, "mean_rating": None,
        "satisfied_rate": None, "open": 0, "overdue": 0}}
    assert list(rows("type", [other_team.pk])) == []


def test_keys_keep_one_agents_row(scripted_day, team):
    assert rows("agent", [team.pk], keys=["otto"]) == {"otto": EXPECTED["agent"]["otto"]}


# -- edge cases, one by one -----------------------------------------------------------


def test_reopened_ticket_counts_each_resolution_and_the_rejection_for_its_resolver(
        scripted_day, team):
    t2 = scripted_day.tickets["T2"]
    resolutions = TicketEvent.objects.filter(ticket=t2, kind="resolved")
    assert [e.details["agent"] for e in resolutions] == ["otto", "otto"]
    rejected = TicketEvent.objects.get(ticket=t2, kind="rejected")
    assert rejected.details["agent"] == "otto"
    otto = rows("agent", [team.pk])["otto"]
    assert otto["resolved"] == 3 and otto["reopen_rate"] == 0.5


def test_callback_resolution_counts_for_team_and_type_but_no_agent(scripted_day, team):
    by_agent = rows("agent", [team.pk])
    assert sum(r["resolved"] for r in by_agent.values()) == 4
    assert rows("team", [team.pk])["Refunds"]["resolved"] == 5
    crm = rows("type", [team.pk])["crm-refund"]
    assert (crm["resolved"], crm["in_time_rate"], crm["mean_handle_minutes"]) == (1, 1.0, None)


def test_cancelled_ticket_keeps_its_assignment_but_never_resolves(scripted_day, team):
    # T5 was assigned to agnes then cancelled: the assignment counts, nothing else.
    agnes = rows("agent", [team.pk])["agnes"]
    assert agnes["assigned"] == 4 and agnes["resolved"] == 1 and agnes["open"] == 0


def test_handover_counts_against_the_one_who_handed_over_handle_time_for_the_resolver(
        scripted_day, team):
    by_agent = rows("agent", [team.pk])
    assert by_agent["agnes"]["handovers"] == 1 and by_agent["otto"]["handovers"] == 0
    first = TicketEvent.objects.filter(ticket=scripted_day.tickets["T2"], kind="resolved").first()
    assert first.details["handle_seconds"] == 21 * 60  # from otto's 09:25, not agnes's 09:10


def test_breach_then_in_time_second_round(scripted_day, team):
    by_agent = rows("agent", [team.pk])
    assert by_agent["agnes"]["breaches"] == 1
    t3 = TicketEvent.objects.get(ticket=scripted_day.tickets["T3"], kind="resolved")
    assert t3.details["in_time"] is True and t3.details["round"] == 2
    assert by_agent["otto"]["in_time_rate"] == 1.0


def test_breach_with_notify_policy_keeps_the_agent_and_the_resolution_is_late(
        clock, team, requester, agent_user):
    TicketTypeFactory(slug="urgent", team=team, time_limit_minutes=30, on_breach="notify")
    clock.move_to(at("09:00"))
    ticket = create(requester, "urgent")
    ticket_assign_to(ticket, agent_user)
    clock.move_to(at("09:30"))
    assert ticket_breach(ticket_id=ticket.pk)
    clock.move_to(at("09:40"))
    ticket_resolve(ticket_id=ticket.pk, by=agent_user, result="Late but done.")
    row = rows("agent", [team.pk])["agnes"]
    assert (row["breaches"], row["resolved"], row["in_time_rate"]) == (1, 1, 0.0)
    assert row["mean_handle_minutes"] == 40.0


def test_breach_in_the_pool_counts_for_the_team_only(clock, ticket_type, team, requester,
                                                     agent_user):
    clock.move_to(at("09:00"))
    ticket = create(requester)
    clock.move_to(at("10:00"))
    assert ticket_breach(ticket_id=ticket.pk)
    assert rows("team", [team.pk])["Refunds"]["breaches"] == 1
    assert rows("agent", [team.pk])["agnes"]["breaches"] == 0
    # The pooled ticket started a new round at once: not overdue now.
    assert rows("team", [team.pk])["Refunds"]["overdue"] == 0


def test_auto_closed_resolution_counts_as_answered_not_reopened(clock, ticket_type, team,
                                                                requester, agent_user):
    clock.move_to(at("00:10"))
    ticket = create(requester)
    ticket_assign_to(ticket, agent_user)
    ticket_resolve(ticket_id=ticket.pk, by=agent_user, result="Done.")
    clock.move_to(at("00:10", "2026-03-05"))
    assert ticket_auto_close(ticket_id=ticket.pk)
    event = TicketEvent.objects.get(ticket=ticket, kind="auto_closed")
    assert event.details == {"agent": "agnes"}
    period = kpi.Period(date(2026, 3, 5), date(2026, 3, 5))
    assert rows("agent", [team.pk], period)["agnes"]["reopen_rate"] == 0.0
    assert rows("agent", [team.pk], period)["agnes"]["resolved"] == 0


def test_ratings_count_when_given_even_for_an_earlier_resolution(clock, ticket_type, team,
                                                                 requester, agent_user):
    clock.move_to(at("23:00", "2026-03-01"))
    ticket = create(requester)
    ticket_assign_to(ticket, agent_user)
    ticket_resolve(ticket_id=ticket.pk, by=agent_user, result="Done.")
    clock.move_to(at("08:00"))
    ticket_feedback(ticket_id=ticket.pk, by=requester, accepted=True, rating=3)
    row = rows("agent", [team.pk])["agnes"]
    assert (row["resolved"], row["mean_rating"], row["satisfied_rate"]) == (0, 3.0, 0.0)


# -- period boundaries ----------------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York"])
def test_period_is_whole_days_in_the_server_time_zone(settings, clock, ticket_type, team,
                                                      requester, agent_user, tz):
    from zoneinfo import ZoneInfo

    settings.TIME_ZONE = tz
    zone = ZoneInfo(tz)
    from datetime import datetime

    last_second = datetime(2026, 3, 2, 23, 59, 59, tzinfo=zone)
    next_midnight = datetime(2026, 3, 3, 0, 0, 0, tzinfo=zone)
    first_midnight = datetime(2026, 3, 2, 0, 0, 0, tzinfo=zone)
    for when in (first_midnight - timedelta(seconds=1), first_midnight, last_second,
                 next_midnight):
        clock.move_to(when)
        ticket_assign_to(create(requester), agent_user)
    assert rows("agent", [team.pk])["agnes"]["assigned"] == 2
    two_days = kpi.Period(date(2026, 3, 2), date(2026, 3, 3))
    assert rows("agent", [team.pk], two_days)["agnes"]["assigned"] == 3


def test_period_parse_defaults_and_errors(clock):
    today = kpi.kpi_today()
    period = kpi.kpi_period_parse(first=None, last=None)
    assert (period.first, period.last) == (today - timedelta(days=29), today)
    assert kpi.kpi_period_parse(first="2026-01-01", last="2026-01-01").days == [date(2026, 1, 1)]
    for first, last, field in [("2026-13-01", "2026-01-01", "from"), ("x", None, "from"),
                               (None, "2026-1-1", "to"), ("2026-02-02", "2026-02-01", "from"),
                               ("2024-01-01", "2026-01-01", "from")]:
        with pytest.raises(ValidationFailed) as exc:
            kpi.kpi_period_parse(first=first, last=last)
        assert field in exc.value.fields
    with pytest.raises(ValidationFailed):
        kpi.kpi_group_by_parse("queue")


# -- daily series -----------------------------------------------------------------------


def test_daily_series_and_backlog(scripted_day, team, clock):
    two_days = kpi.Period(date(2026, 3, 1), date(2026, 3, 2))
    daily = kpi.kpi_daily(period=two_days, team_ids=[team.pk])
    assert daily[0] == {"day": date(2026, 3, 1), "created": 0, "resolved": 0,
                        "in_time_rate": None, "backlog": 0}
    # 7 created, 5 resolutions, 1 cancel, 1 reopen: 2 open at the end of the day.
    assert daily[1] == {"day": date(2026, 3, 2), "created": 7, "resolved": 5,
                        "in_time_rate": 1.0, "backlog": 2}
    assert kpi.kpi_rating_counts(period=two_days, team_ids=[team.pk]) == {
        1: 0, 2: 1, 3: 0, 4: 1, 5: 1}


def test_backlog_of_a_past_day_subtracts_later_flow(scripted_day, team, clock, requester):
    clock.move_to(at("09:00", "2026-03-04"))
    create(requester)
    create(requester)
    daily = kpi.kpi_daily(period=kpi.Period(date(2026, 3, 2), date(2026, 3, 4)),
                          team_ids=[team.pk])
    assert [d["backlog"] for d in daily] == [2, 2, 4]
    assert [d["created"] for d in daily] == [7, 0, 2]


# -- query shape ------------------------------------------------------------------------


def _queries(team) -> int:
    with CaptureQueriesContext(connection) as ctx:
        for group_by in kpi.GROUPINGS:
            kpi.kpi_rows(period=DAY, group_by=group_by, team_ids=[team.pk])
        kpi.kpi_daily(period=DAY, team_ids=[team.pk])
        kpi.kpi_rating_counts(period=DAY, team_ids=[team.pk])
    return len(ctx.captured_queries)


def _resolved_tickets(n: int, requester, agents) -> None:
    for i in range(n):
        ticket = create(requester)
        agent = agents[i % len(agents)]
        ticket_assign_to(ticket, agent)
        ticket_resolve(ticket_id=ticket.pk, by=agent, result="Done.")
        ticket_feedback(ticket_id=ticket.pk, by=requester, accepted=bool(i % 3), rating=1 + i % 5,
                        comment="No.")


def test_query_count_does_not_grow_with_tickets(clock, ticket_type, team, requester,
                                                agent_user, other_agent_user):
    clock.move_to(at("09:00"))
    agents = [agent_user, other_agent_user, AgentUserFactory(username="ada", teams=[team])]
    _resolved_tickets(5, requester, agents)
    few = _queries(team)
    _resolved_tickets(45, requester, agents)
    assert _queries(team) == few
    assert few <= 16  # per grouping: scope, events, backlog (+ p90 off PostgreSQL)
    assert sum(r["resolved"] for r in kpi.kpi_rows(period=DAY, group_by="agent",
                                                   team_ids=[team.pk])) == 50


def test_p90_matches_linear_interpolation(clock, ticket_type, team, requester, agent_user):
    # Resolve times 1..10 minutes: percentile_cont(0.9) = 9 + 0.1 * 1 = 9.1.
    for minutes in range(1, 11):
        clock.move_to(at("09:00"))
        ticket = create(requester)
        ticket_assign_to(ticket, agent_user)
        clock.move_to(at("09:00") + timedelta(minutes=minutes))
        ticket_resolve(ticket_id=ticket.pk, by=agent_user, result="Done.")
    row = rows("agent", [team.pk])["agnes"]
    assert (row["mean_resolve_minutes"], row["p90_resolve_minutes"]) == (5.5, 9.1)
