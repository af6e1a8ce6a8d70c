"""Two requests racing on one ticket (DESIGN.md 2): exactly one wins, the
other gets a 409, and the ticket, its events and the agents' loads agree."""
from __future__ import annotations

from collections import Counter

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from agents.models import Agent
from tickets.errors import Conflict, LockedByOther, NotAssignee
from tickets.models import Ticket, TicketEvent, TicketState
from tickets.services.dispatch import ticket_assign, ticket_pull_next
from tickets.services.work import ticket_handover, ticket_lock_acquire, ticket_resolve
from tests.concurrency.conftest import agent_loads_match, run_at_once
from tests.factories import (
    AgentUserFactory,
    SupervisorFactory,
    TicketFactory,
    TicketTypeFactory,
    ticket_assign_to,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 5  # each race is run this many times on fresh tickets


@pytest.fixture
def cast(team, requester):
    ttype = TicketTypeFactory(slug="race", team=team, time_limit_minutes=120)
    return {
        "type": ttype,
        "requester": requester,
        "agent": AgentUserFactory(username="ann", teams=[team], agent__capacity=50),
        "other": AgentUserFactory(username="ben", teams=[team], agent__capacity=50),
        "supervisor": SupervisorFactory(username="sue", teams=[team]),
    }


def assigned_ticket(cast) -> Ticket:
    ticket = TicketFactory(ticket_type=cast["type"], requester=cast["requester"])
    return ticket_assign_to(ticket, cast["agent"])


def kinds(ticket_id: int) -> Counter:
    return Counter(TicketEvent.objects.filter(ticket_id=ticket_id).values_list("kind", flat=True))


def one_winner(outcomes, loser_errors=(Conflict,)):
    winners = [o for o in outcomes if o.ok]
    losers = [o for o in outcomes if not o.ok]
    assert len(winners) == 1, outcomes
    assert len(losers) == 1 and isinstance(losers[0].error, loser_errors), outcomes
    assert losers[0].error.status == 409
    return winners[0], losers[0]


def test_two_resolves_of_one_ticket(cast):
    agent = cast["agent"]
    for _ in range(ROUNDS):
        ticket = assigned_ticket(cast)
        outcomes = run_at_once(
            *[lambda n=n: ticket_resolve(ticket_id=ticket.pk, by=agent, result=f"result {n}")
              for n in range(2)]
        )
        winner, _ = one_winner(outcomes)
        row = Ticket.objects.get(pk=ticket.pk)
        assert row.state == TicketState.RESOLVED and row.result == winner.value.result
        assert kinds(ticket.pk)[TicketEvent.Kind.RESOLVED] == 1
    assert agent_loads_match() == []


def test_two_handovers_of_one_ticket(cast):
    agent = cast["agent"]
    for _ in range(ROUNDS):
        ticket = assigned_ticket(cast)
        outcomes = run_at_once(
            *[lambda: ticket_handover(ticket_id=ticket.pk, by=agent, reason="wrong desk")] * 2
        )
        one_winner(outcomes, (NotAssignee,))
        row = Ticket.objects.get(pk=ticket.pk)
        assert row.state == TicketState.POOLED and row.assignee_id is None
        assert row.handover_count == 1 and row.priority == 3  # one step, not two
        assert list(row.excluded_agents.values_list("pk", flat=True)) == [agent.pk]
        assert kinds(ticket.pk)[TicketEvent.Kind.HANDED_OVER] == 1
    assert agent_loads_match() == []


def test_resolve_against_handover(cast):
    agent = cast["agent"]
    results = Counter()
    for _ in range(ROUNDS):
        ticket = assigned_ticket(cast)
        outcomes = run_at_once(
            lambda: ticket_resolve(ticket_id=ticket.pk, by=agent, result="done"),
            lambda: ticket_handover(ticket_id=ticket.pk, by=agent, reason="not mine"),
        )
        one_winner(outcomes)
        row = Ticket.objects.get(pk=ticket.pk)
        seen = kinds(ticket.pk)
        if outcomes[0].ok:
            results["resolved"] += 1
            assert row.state == TicketState.RESOLVED
            assert (seen[TicketEvent.Kind.RESOLVED], seen[TicketEvent.Kind.HANDED_OVER]) == (1, 0)
        else:
            results["handed_over"] += 1
            assert row.state == TicketState.POOLED and row.handover_count == 1
            assert (seen[TicketEvent.Kind.RESOLVED], seen[TicketEvent.Kind.HANDED_OVER]) == (0, 1)
    assert sum(results.values()) == ROUNDS
    assert agent_loads_match() == []


def test_lock_against_reassignment(cast):
    """The assignee locks while a supervisor moves the ticket (no force):
    either the lock wins (the move is refused: locked) or the move wins (the
    lock is refused: no longer the assignee)."""
    agent, other, supervisor = cast["agent"], cast["other"], cast["supervisor"]
    for _ in range(ROUNDS):
        ticket = assigned_ticket(cast)
        outcomes = run_at_once(
            lambda: ticket_lock_acquire(ticket_id=ticket.pk, by=agent, minutes=30),
            lambda: ticket_assign(ticket_id=ticket.pk, agent_username=other.username,
                                  by=supervisor),
        )
        one_winner(outcomes, (LockedByOther, NotAssignee))
        row = Ticket.objects.get(pk=ticket.pk)
        seen = kinds(ticket.pk)
        if outcomes[0].ok:
            assert isinstance(outcomes[1].error, LockedByOther)
            assert row.assignee_id == agent.pk and row.locked_by_id == agent.pk
            assert (seen[TicketEvent.Kind.LOCKED], seen[TicketEvent.Kind.ASSIGNED]) == (1, 1)
        else:
            assert isinstance(outcomes[0].error, NotAssignee)
            assert row.assignee_id == other.pk and row.locked_until is None
            assert (seen[TicketEvent.Kind.LOCKED], seen[TicketEvent.Kind.ASSIGNED]) == (0, 2)
    assert agent_loads_match() == []


def test_two_agents_pull_the_last_ticket(cast):
    agent, other = cast["agent"], cast["other"]
    for _ in range(ROUNDS):
        ticket = TicketFactory(ticket_type=cast["type"], requester=cast["requester"])
        outcomes = run_at_once(lambda: ticket_pull_next(by=agent),
                               lambda: ticket_pull_next(by=other))
        assert all(o.ok for o in outcomes), outcomes
        taken = [o.value for o in outcomes if o.value is not None]
        assert [t.pk for t in taken] == [ticket.pk]
        row = Ticket.objects.get(pk=ticket.pk)
        assert row.assignee_id == taken[0].assignee_id
        assert kinds(ticket.pk)[TicketEvent.Kind.ASSIGNED] == 1
    assert agent_loads_match() == []
    assert sum(Agent.objects.values_list("active_count", flat=True)) == ROUNDS


@pytest.mark.parametrize("actions", [("resolve", "resolve"), ("resolve", "handover"),
                                     ("handover", "handover")])
def test_two_api_requests_on_one_ticket(cast, actions):
    """Over HTTP: one 200, one 409 with the error format."""
    agent = cast["agent"]
    token = Token.objects.get_or_create(user=agent)[0].key
    bodies = {"resolve": {"result": "done"}, "handover": {"reason": "not mine"}}
    for _ in range(ROUNDS):
        ticket = assigned_ticket(cast)

        def call(action):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
            response = client.post(f"/api/v1/tickets/{ticket.pk}/{action}/", bodies[action],
                                   format="json")
            return response.status_code, response.json()

        outcomes = run_at_once(*[lambda a=a: call(a) for a in actions])
        assert all(o.ok for o in outcomes), outcomes
        statuses = sorted(o.value[0] for o in outcomes)
        assert statuses == [200, 409], outcomes
        loser = next(o.value[1] for o in outcomes if o.value[0] == 409)
        assert loser["code"] in ("invalid_transition", "not_assignee"), loser
        seen = kinds(ticket.pk)
        assert seen[TicketEvent.Kind.RESOLVED] + seen[TicketEvent.Kind.HANDED_OVER] == 1
    assert agent_loads_match() == []
