"""Pool and dispatch: push, pull and manual assignment (DESIGN.md 1.3, 1.4, 1.5)."""
from __future__ import annotations

import random

import pytest

from agents.models import Agent
from tickets.errors import (
    AgentNotOnline,
    InvalidTransition,
    LockedByOther,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tickets.models import Ticket, TicketEvent, TicketState
from tickets.services.dispatch import dispatch_run, ticket_assign, ticket_pull_next
from tickets.services.work import ticket_handover, ticket_lock_acquire, ticket_resolve
from tests.factories import (
    AgentUserFactory,
    TeamFactory,
    TicketFactory,
    TicketTypeFactory,
    event_trail,
    ticket_assign_to,
    ticket_row,
)

from tests.factories import fresh

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


def agent_row(user) -> Agent:
    return Agent.objects.get(user=user)


def give_load(agent_user, n: int, ticket_type) -> None:
    """Give an agent ``n`` assigned tickets (through the supervisor's service)."""
    for _ in range(n):
        ticket_assign_to(TicketFactory(ticket_type=ticket_type), agent_user)


def assignees(*tickets: Ticket) -> list[str | None]:
    return [getattr(fresh(t).assignee, "username", None) for t in tickets]


# -- ticket order -------------------------------------------------------------------------


@pytest.fixture
def ordered_pool(team, ticket_type, clock):
    """Four pooled tickets whose dispatch order is B, C, A, D."""
    short = TicketTypeFactory(team=team, time_limit_minutes=30)
    a = TicketFactory(ticket_type=ticket_type, priority=2)          # due +60
    d = TicketFactory(ticket_type=ticket_type, priority=2)          # due +60, higher id
    clock.shift(minutes=1)
    b = TicketFactory(ticket_type=ticket_type, priority=3)          # due +61, higher priority
    clock.shift(minutes=1)
    c = TicketFactory(ticket_type=short, priority=2)                # due +32
    return [b, c, a, d]


def test_push_dispatch_order_is_priority_then_due_at_then_id(team, ordered_pool):
    worker = AgentUserFactory(teams=[team], agent__capacity=1)
    taken = []
    for _ in ordered_pool:
        assert dispatch_run() == 1
        ticket = Ticket.objects.get(assignee=worker, state=TicketState.ASSIGNED)
        taken.append(ticket.pk)
        ticket_resolve(ticket_id=ticket.pk, by=worker, result="done")
    assert taken == [t.pk for t in ordered_pool]


def test_pull_order_is_priority_then_due_at_then_id(team, ordered_pool):
    worker = AgentUserFactory(teams=[team], agent__capacity=1)
    taken = []
    for _ in ordered_pool:
        ticket = ticket_pull_next(by=worker)
        taken.append(ticket.pk)
        ticket_resolve(ticket_id=ticket.pk, by=worker, result="done")
    assert taken == [t.pk for t in ordered_pool]
    assert ticket_pull_next(by=worker) is None


def test_dispatch_writes_assigned_event_and_updates_agent(ticket, agent_user, clock):
    assert dispatch_run() == 1
    ticket = fresh(ticket)
    assert ticket.state == TicketState.ASSIGNED
    assert ticket.assignee == agent_user and ticket.assigned_at == clock.now()
    event = ticket.events.get(kind=TicketEvent.Kind.ASSIGNED)
    assert (event.from_state, event.to_state, event.actor) == ("pooled", "assigned", None)
    assert event.details == {"agent": "agnes", "via": "dispatch"}
    agent = agent_row(agent_user)
    assert agent.active_count == 1 and agent.last_assigned_at == clock.now()


def test_dispatch_does_not_move_the_time_limit(ticket, agent_user, clock):
    due = ticket.due_at
    clock.shift(minutes=20)
    dispatch_run()
    assert fresh(ticket).due_at == due


def test_dispatch_twice_assigns_nothing_more(ticket, agent_user):
    assert dispatch_run() == 1
    row = ticket_row(ticket)
    assert dispatch_run() == 0
    assert ticket_row(ticket) == row
    assert agent_row(agent_user).active_count == 1


def test_dispatch_with_empty_pool_does_nothing(agent_user):
    assert dispatch_run() == 0


# -- eligibility --------------------------------------------------------------------------------


def test_agent_of_another_team_is_not_eligible(ticket, outside_agent_user):
    assert dispatch_run() == 0
    assert fresh(ticket).state == TicketState.POOLED


@pytest.mark.parametrize("status", [Agent.Status.AWAY, Agent.Status.OFFLINE])
def test_agent_not_online_is_not_eligible(ticket, team, status):
    AgentUserFactory(teams=[team], agent__status=status)
    assert dispatch_run() == 0
    assert fresh(ticket).state == TicketState.POOLED


def test_agent_at_capacity_is_not_eligible(team, ticket_type):
    full = AgentUserFactory(teams=[team], agent__capacity=2)
    give_load(full, 2, ticket_type)
    waiting = TicketFactory(ticket_type=ticket_type)
    assert dispatch_run() == 0
    assert fresh(waiting).state == TicketState.POOLED
    assert agent_row(full).active_count == 2


def test_agent_with_zero_capacity_gets_nothing(ticket, team):
    AgentUserFactory(teams=[team], agent__capacity=0)
    assert dispatch_run() == 0


def test_deactivated_agent_is_not_eligible(ticket, team):
    user = AgentUserFactory(teams=[team])
    user.is_active = False
    user.save()
    assert dispatch_run() == 0


def test_excluded_agent_is_passed_over_for_another(assigned_ticket, agent_user, other_agent_user):
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="not my area")
    assert dispatch_run() == 1
    assert assignees(assigned_ticket) == ["otto"]


def test_exclusion_beats_a_better_load(assigned_ticket, agent_user, other_agent_user,
                                      ticket_type):
    """Otto is busier, so without the exclusion Agnes would be the pick."""
    give_load(other_agent_user, 2, ticket_type)
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="not my area")
    assert dispatch_run() == 1
    assert assignees(assigned_ticket) == ["otto"]


def test_agent_excluded_from_one_ticket_still_gets_the_next(assigned_ticket, agent_user,
                                                            other_agent_user, ticket_type):
    give_load(other_agent_user, 2, ticket_type)
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="not mine")
    lower = TicketFactory(ticket_type=ticket_type, priority=1)
    assert dispatch_run() == 2
    assert assignees(assigned_ticket, lower) == ["otto", "agnes"]


def test_pull_by_a_better_placed_excluded_agent_skips_the_ticket(
    assigned_ticket, agent_user, other_agent_user, ticket_type
):
    give_load(other_agent_user, 2, ticket_type)
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="no")
    assert ticket_pull_next(by=agent_user) is None
    assert ticket_pull_next(by=other_agent_user).pk == assigned_ticket.pk


def test_excluded_agent_is_chosen_when_nobody_else_is_eligible(assigned_ticket, agent_user):
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="stuck")
    assert dispatch_run() == 1
    assert assignees(assigned_ticket) == ["agnes"]


def test_exclusion_gives_way_when_the_others_are_full(assigned_ticket, agent_user, team,
                                                      ticket_type):
    busy = AgentUserFactory(teams=[team], agent__capacity=1)
    give_load(busy, 1, ticket_type)
    away = AgentUserFactory(teams=[team], agent__status=Agent.Status.AWAY)
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="stuck")
    assert dispatch_run() == 1
    assert assignees(assigned_ticket) == ["agnes"]
    assert away.agent.active_count == 0


# -- which agent -----------------------------------------------------------------------------------


def test_lowest_load_over_capacity_wins(team, ticket_type):
    roomy = AgentUserFactory(teams=[team], agent__capacity=5)   # 2/5 = 0.4
    tight = AgentUserFactory(teams=[team], agent__capacity=2)   # 1/2 = 0.5
    give_load(roomy, 2, ticket_type)
    give_load(tight, 1, ticket_type)
    waiting = TicketFactory(ticket_type=ticket_type)
    dispatch_run()
    assert fresh(waiting).assignee == roomy


def test_equal_load_goes_to_longest_since_last_assignment(team, ticket_type, clock):
    first = AgentUserFactory(teams=[team])
    second = AgentUserFactory(teams=[team])
    give_load(second, 1, ticket_type)
    clock.shift(minutes=1)
    give_load(first, 1, ticket_type)   # more recent
    waiting = TicketFactory(ticket_type=ticket_type)
    dispatch_run()
    assert fresh(waiting).assignee == second


def test_never_assigned_agent_counts_as_longest_waiting(team, ticket_type, clock):
    veteran = AgentUserFactory(teams=[team])
    worked = TicketFactory(ticket_type=ticket_type, state="resolved", assignee=veteran)
    newcomer = AgentUserFactory(teams=[team])  # higher id, never assigned
    assert agent_row(veteran).last_assigned_at is not None
    assert agent_row(veteran).active_count == 0 == agent_row(newcomer).active_count
    clock.shift(days=30)
    waiting = TicketFactory(ticket_type=ticket_type)
    dispatch_run()
    assert fresh(waiting).assignee == newcomer
    assert worked.assignee == veteran


def test_load_spreads_tickets_across_agents(team, ticket_type):
    a = AgentUserFactory(teams=[team], agent__capacity=3)
    b = AgentUserFactory(teams=[team], agent__capacity=3)
    for _ in range(4):
        TicketFactory(ticket_type=ticket_type)
    assert dispatch_run() == 4
    assert agent_row(a).active_count == 2 and agent_row(b).active_count == 2


def test_one_ticket_never_goes_to_two_agents(ticket, agent_user, other_agent_user):
    assert dispatch_run() == 1
    assert ticket.events.filter(kind=TicketEvent.Kind.ASSIGNED).count() == 1
    assert agent_row(agent_user).active_count + agent_row(other_agent_user).active_count == 1


# -- strict priority -------------------------------------------------------------------------------


def test_agent_in_two_teams_gets_the_higher_ticket_first(team, ticket_type):
    other = TeamFactory()
    low = TicketFactory(ticket_type=ticket_type, priority=1)
    high = TicketFactory(ticket_type=TicketTypeFactory(team=other), priority=4)
    both = AgentUserFactory(teams=[team, other], agent__capacity=1)
    assert dispatch_run() == 1
    assert assignees(high, low) == [both.username, None]


def test_pull_takes_the_higher_ticket_across_own_teams(team, ticket_type):
    other = TeamFactory()
    TicketFactory(ticket_type=ticket_type, priority=1)
    high = TicketFactory(ticket_type=TicketTypeFactory(team=other), priority=4)
    both = AgentUserFactory(teams=[team, other])
    assert ticket_pull_next(by=both).pk == high.pk


def test_agent_is_not_given_a_lower_ticket_while_a_higher_one_waits(team, ticket_type):
    """The lower ticket goes to another agent; the higher one waits for nobody."""
    high = TicketFactory(ticket_type=ticket_type, priority=5)
    low = TicketFactory(ticket_type=ticket_type, priority=1)
    a = AgentUserFactory(teams=[team], agent__capacity=1)
    b = AgentUserFactory(teams=[team], agent__capacity=1)
    assert dispatch_run() == 2
    assert {fresh(high).assignee, fresh(low).assignee} == {a, b}
    assert fresh(high).assignee == a  # a and b tie; a has the lower id


def _order_key(ticket: Ticket):
    return (-ticket.priority, ticket.due_at, ticket.pk)


@pytest.mark.parametrize("seed", range(6))
def test_dispatch_invariants_on_a_random_pool(seed, clock):
    """Strict priority, capacity and work conservation on a random pool,
    dispatched in small batches."""
    rng = random.Random(seed)
    teams = [TeamFactory() for _ in range(3)]
    types = [TicketTypeFactory(team=t, time_limit_minutes=rng.choice([15, 60, 240]))
             for t in teams for _ in range(2)]
    agents = [
        AgentUserFactory(
            teams=rng.sample(teams, rng.randint(1, 2)),
            agent__capacity=rng.randint(0, 3),
            agent__status=rng.choice([Agent.Status.ONLINE] * 3 + [Agent.Status.AWAY]),
        )
        for _ in range(7)
    ]
    for _ in range(35):
        TicketFactory(ticket_type=rng.choice(types), priority=rng.randint(1, 5))
        clock.shift(seconds=rng.randint(0, 120))
    # Some tickets carry exclusions: handed over by an agent who had them.
    for user in rng.sample(agents, 3):
        room = agent_row(user).capacity
        if room and agent_row(user).status == Agent.Status.ONLINE:
            team_ids = list(user.teams.values_list("id", flat=True))
            for held in Ticket.objects.filter(state=TicketState.POOLED,
                                              team_id__in=team_ids)[:room]:
                ticket_assign_to(held, user)
                ticket_handover(ticket_id=held.pk, by=user, reason="exclude me")
    clock.shift(seconds=1)

    dispatch_run(batch=4)

    pooled = list(Ticket.objects.filter(state=TicketState.POOLED))
    for user in agents:
        agent = agent_row(user)
        mine = list(Ticket.objects.filter(assignee=user, state=TicketState.ASSIGNED))
        assert agent.active_count == len(mine) <= agent.capacity
        if mine:
            assert agent.status == Agent.Status.ONLINE
        team_ids = set(user.teams.values_list("id", flat=True))
        for given in mine:
            assert given.team_id in team_ids
            for waiting in pooled:
                if waiting.team_id in team_ids and user not in waiting.excluded_agents.all():
                    assert _order_key(waiting) > _order_key(given), (
                        f"{user.username} got #{given.pk} while #{waiting.pk} waited"
                    )
        if agent.status == Agent.Status.ONLINE and agent.active_count < agent.capacity:
            assert not [w for w in pooled if w.team_id in team_ids], "work left undone"
    assert dispatch_run() == 0


# -- pull-next -------------------------------------------------------------------------------------


def test_pull_assigns_to_the_caller(ticket, agent_user, clock):
    pulled = ticket_pull_next(by=agent_user)
    assert pulled.pk == ticket.pk
    ticket = fresh(ticket)
    assert ticket.assignee == agent_user and ticket.state == TicketState.ASSIGNED
    event = ticket.events.get(kind=TicketEvent.Kind.ASSIGNED)
    assert (event.from_state, event.to_state, event.actor) == ("pooled", "assigned", agent_user)
    assert event.details["via"] == "pull"
    agent = agent_row(agent_user)
    assert agent.active_count == 1 and agent.last_assigned_at == clock.now()


def test_pull_returns_none_when_nothing_is_pooled(agent_user):
    assert ticket_pull_next(by=agent_user) is None


def test_pull_ignores_other_teams(agent_user, other_team):
    TicketFactory(ticket_type=TicketTypeFactory(team=other_team))
    assert ticket_pull_next(by=agent_user) is None


@pytest.mark.parametrize("status", [Agent.Status.AWAY, Agent.Status.OFFLINE])
def test_pull_refuses_agent_not_online(ticket, team, status):
    user = AgentUserFactory(teams=[team], agent__status=status)
    with pytest.raises(AgentNotOnline) as exc:
        ticket_pull_next(by=user)
    assert exc.value.code == "agent_not_online" and exc.value.status == 409
    assert fresh(ticket).state == TicketState.POOLED


def test_pull_returns_none_at_capacity(team, ticket_type):
    user = AgentUserFactory(teams=[team], agent__capacity=1)
    give_load(user, 1, ticket_type)
    waiting = TicketFactory(ticket_type=ticket_type)
    assert ticket_pull_next(by=user) is None
    assert fresh(waiting).state == TicketState.POOLED


def test_pull_skips_ticket_the_caller_handed_over_when_others_can_take_it(
    assigned_ticket, agent_user, other_agent_user, ticket_type
):
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="no")
    lower = TicketFactory(ticket_type=ticket_type, priority=1)
    assert ticket_pull_next(by=agent_user).pk == lower.pk
    assert fresh(assigned_ticket).state == TicketState.POOLED


def test_pull_takes_handed_over_ticket_when_nobody_else_is_eligible(assigned_ticket, agent_user):
    ticket_handover(ticket_id=assigned_ticket.pk, by=agent_user, reason="no")
    assert ticket_pull_next(by=agent_user).pk == assigned_ticket.pk


@pytest.mark.parametrize("persona", ["requester", "supervisor", "integration"])
def test_pull_is_for_agents_only(request, persona, ticket):
    with pytest.raises(PermissionDenied):
        ticket_pull_next(by=request.getfixturevalue(persona))


# -- manual assignment by a supervisor -------------------------------------------------------------


def test_supervisor_assigns_a_pooled_ticket(ticket, agent_user, supervisor):
    ticket_assign(ticket_id=ticket.pk, agent_username="agnes", by=supervisor)
    ticket = fresh(ticket)
    assert ticket.assignee == agent_user
    event = ticket.events.get(kind=TicketEvent.Kind.ASSIGNED)
    assert (event.from_state, event.to_state, event.actor) == ("pooled", "assigned", supervisor)
    assert event.details["via"] == "manual"
    assert agent_row(agent_user).active_count == 1


def test_supervisor_reassign_moves_the_load(assigned_ticket, agent_user, other_agent_user,
                                            supervisor):
    ticket_assign(ticket_id=assigned_ticket.pk, agent_username="otto", by=supervisor)
    assert assignees(assigned_ticket) == ["otto"]
    assert agent_row(agent_user).active_count == 0
    assert agent_row(other_agent_user).active_count == 1
    assert event_trail(assigned_ticket)[-1] == ("assigned", "assigned", "assigned")


def test_supervisor_reassign_over_lock_needs_force(assigned_ticket, agent_user, other_agent_user,
                                                   supervisor):
    ticket_lock_acquire(ticket_id=assigned_ticket.pk, by=agent_user, minutes=30)
    before = ticket_row(assigned_ticket)
    with pytest.raises(LockedByOther) as exc:
        ticket_assign(ticket_id=assigned_ticket.pk, agent_username="otto", by=supervisor)
    assert exc.value.code == "locked_by_other"
    assert ticket_row(assigned_ticket) == before

    ticket_assign(ticket_id=assigned_ticket.pk, agent_username="otto", by=supervisor, force=True)
    ticket = fresh(assigned_ticket)
    assert ticket.assignee == other_agent_user
    assert ticket.locked_until is None and ticket.locked_by is None
    assert ticket.events.filter(kind="assigned").last().details["forced"] is True


def test_supervisor_reassign_after_lock_expired_needs_no_force(assigned_ticket, agent_user,
                                                               other_agent_user, supervisor,
                                                               clock):
    ticket_lock_acquire(ticket_id=assigned_ticket.pk, by=agent_user, minutes=10)
    clock.shift(minutes=10)
    ticket_assign(ticket_id=assigned_ticket.pk, agent_username="otto", by=supervisor)
    assert assignees(assigned_ticket) == ["otto"]


def test_supervisor_cannot_assign_agent_of_another_team(ticket, outside_agent_user, supervisor):
    with pytest.raises(ValidationFailed) as exc:
        ticket_assign(ticket_id=ticket.pk, agent_username="olga", by=supervisor)
    assert list(exc.value.fields) == ["agent"]


def test_supervisor_cannot_exceed_agent_capacity(ticket_type, team, supervisor):
    user = AgentUserFactory(teams=[team], agent__capacity=1)
    give_load(user, 1, ticket_type)
    waiting = TicketFactory(ticket_type=ticket_type)
    with pytest.raises(ValidationFailed):
        ticket_assign(ticket_id=waiting.pk, agent_username=user.username, by=supervisor)
    assert agent_row(user).active_count == 1


def test_supervisor_of_another_team_gets_not_found(ticket, agent_user, outside_supervisor):
    with pytest.raises(NotFound):
        ticket_assign(ticket_id=ticket.pk, agent_username="agnes", by=outside_supervisor)


@pytest.mark.parametrize("persona", ["agent_user", "requester"])
def test_only_supervisors_assign(request, persona, ticket, agent_user):
    with pytest.raises(PermissionDenied):
        ticket_assign(ticket_id=ticket.pk, agent_username="agnes",
                      by=request.getfixturevalue(persona))


@pytest.mark.parametrize("state", ["resolved", "closed", "cancelled"])
def test_supervisor_cannot_assign_a_finished_ticket(state, ticket_type, other_agent_user,
                                                    supervisor):
    done = TicketFactory(ticket_type=ticket_type, state=state)
    before = ticket_row(done)
    with pytest.raises(InvalidTransition):
        ticket_assign(ticket_id=done.pk, agent_username="otto", by=supervisor)
    assert ticket_row(done) == before
