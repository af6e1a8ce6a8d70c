"""Pool and dispatch: push (the dispatcher), pull (take next) and manual assignment.

Rules (DESIGN.md 1.3):
- tickets in order: priority desc, due_at asc, id asc;
- eligible agents: in the ticket's team, online, active < capacity, not excluded
  for this ticket -- unless every eligible agent is excluded, then exclusion
  gives way;
- among eligible agents: lowest active/capacity, then longest since last
  assignment (never assigned counts as longest), then id;
- strict priority: greedy assignment in ticket order means an agent is only
  given a ticket once every higher-ordered ticket it was eligible for has been
  assigned (to it or to a better-placed agent).
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from agents.models import Agent, User
from tickets.errors import (
    AgentNotOnline,
    InvalidTransition,
    LockedByOther,
    ValidationFailed,
)
from tickets.locks import agents_lock, dispatch_lock, ticket_lock
from tickets.models import Ticket, TicketEvent, TicketState
from tickets.services.common import (
    agent_load_change,
    events_deliver,
    on_commit_dispatch,
    require_role,
    require_visible,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
POOL_ORDER = ("-priority", "due_at", "id")


def _agent_key(agent: Agent):
    return (
        agent.active_count / agent.capacity,
        agent.last_assigned_at or _EPOCH,
        agent.pk,
    )


def _teams_of(user_ids: list[int]) -> dict[int, set[int]]:
    """user id -> team ids."""
    teams: dict[int, set[int]] = defaultdict(set)
    for user_id, team_id in User.teams.through.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "team_id"
    ):
        teams[user_id].add(team_id)
    return teams


def _exclusions_of(ticket_ids: list[int]) -> dict[int, set[int]]:
    """ticket id -> excluded user ids."""
    excluded: dict[int, set[int]] = defaultdict(set)
    for ticket_id, user_id in Ticket.excluded_agents.through.objects.filter(
        ticket_id__in=ticket_ids
    ).values_list("ticket_id", "user_id"):
        excluded[ticket_id].add(user_id)
    return excluded


class _Chooser:
    """The best agent of a team for each ticket of one dispatch turn.

    A heap per team, keyed like ``_agent_key``, replaces a scan of every
    agent for every ticket (10,000 tickets x 200 agents was the dispatcher's
    main cost). An agent's key changes only when it is given a ticket: its
    entries are then re-pushed with a new version, and older entries are
    dropped when they reach the top, as are agents that became full.
    """

    def __init__(self, by_team: dict[int, list[Agent]]) -> None:
        self.version: dict[int, int] = {}
        self.teams_of: dict[int, list[int]] = defaultdict(list)
        self.heaps: dict[int, list] = {}
        for team_id, agents in by_team.items():
            for agent in agents:
                self.version[agent.pk] = 0
                self.teams_of[agent.pk].append(team_id)
            heap = [(_agent_key(a), 0, a) for a in agents if a.active_count < a.capacity]
            heapq.heapify(heap)
            self.heaps[team_id] = heap

    def choose(self, team_id: int, excluded: set[int]) -> Agent | None:
        """The best agent with room; an excluded one only if nobody else."""
        heap = self.heaps.get(team_id, [])
        skipped = []
        best = None
        while heap:
            _, version, agent = heap[0]
            if version != self.version[agent.pk] or agent.active_count >= agent.capacity:
                heapq.heappop(heap)
            elif agent.user_id in excluded:
                skipped.append(heapq.heappop(heap))
            else:
                best = agent
                break
        for entry in skipped:
            heapq.heappush(heap, entry)
        if best is None and skipped:
            best = skipped[0][2]  # popped in key order: the best excluded agent
        return best

    def charged(self, agent: Agent) -> None:
        """``agent`` was just given a ticket: its key changed."""
        self.version[agent.pk] += 1
        if agent.active_count < agent.capacity:
            entry = (_agent_key(agent), self.version[agent.pk], agent)
            for team_id in self.teams_of[agent.pk]:
                heapq.heappush(self.heaps[team_id], entry)


ASSIGN_FIELDS = ["state", "assignee", "assigned_at", "locked_until", "locked_by", "updated_at"]


def _assign(ticket: Ticket, agent: Agent, now, by: User | None, details: dict, *,
            save: bool = True) -> TicketEvent:
    """Assign a locked ticket; with ``save=False`` the caller writes the row
    (the dispatcher writes a whole turn in one statement)."""
    from_state = ticket.state
    ticket.assign(agent_user=agent.user, now=now)
    if save:
        ticket.save(update_fields=ASSIGN_FIELDS)
    else:
        ticket.updated_at = now
    agent.active_count += 1
    agent.last_assigned_at = now
    return TicketEvent(
        ticket=ticket, kind=TicketEvent.Kind.ASSIGNED, actor=by, at=now,
        from_state=from_state, to_state=ticket.state,
        details={"agent": agent.user.username, **details},
    )


def _write_turn(tickets: list[Ticket], agents: list[Agent], now) -> None:
    """Write a dispatch turn in one statement for the tickets and one for the
    agents (instead of one per row). Every row is locked by the caller (FOR
    UPDATE; on SQLite the whole database), and every ticket was pooled when
    locked, so the state filter must match them all."""
    if not tickets:
        return
    by_assignee: dict[int, list[int]] = defaultdict(list)
    for ticket in tickets:
        by_assignee[ticket.assignee_id].append(ticket.pk)
    updated = Ticket.objects.filter(pk__in=[t.pk for t in tickets], state=TicketState.POOLED).update(
        state=TicketState.ASSIGNED, assigned_at=now, locked_until=None, locked_by=None,
        updated_at=now,
        assignee_id=Case(*[When(pk__in=ids, then=Value(user_id))
                           for user_id, ids in by_assignee.items()]),
    )
    if updated != len(tickets):
        raise RuntimeError(f"dispatch wrote {updated} of {len(tickets)} locked tickets")
    Agent.objects.filter(pk__in=[a.pk for a in agents]).update(
        last_assigned_at=now, updated_at=now,
        active_count=Case(*[When(pk=a.pk, then=Value(a.active_count)) for a in agents]),
    )


def _dispatch_batch(batch: int) -> int:
    with transaction.atomic():
        dispatch_lock()
        now = timezone.now()
        agents = list(
            Agent.objects.select_for_update(of=("self",))
            .select_related("user")
            .filter(status=Agent.Status.ONLINE, active_count__lt=F("capacity"), user__is_active=True)
            .order_by("pk")
        )
        if not agents:
            return 0
        teams_by_user = _teams_of([a.user_id for a in agents])
        by_team: dict[int, list[Agent]] = defaultdict(list)
        for agent in agents:
            for team_id in teams_by_user.get(agent.user_id, ()):
                by_team[team_id].append(agent)
        if not by_team:
            return 0
        tickets = list(
            Ticket.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("ticket_type")
            .filter(state=TicketState.POOLED, team_id__in=list(by_team))
            .order_by(*POOL_ORDER)[:batch]
        )
        if not tickets:
            return 0
        exclusions = _exclusions_of([t.pk for t in tickets])
        chooser = _Chooser(by_team)
        events: list[TicketEvent] = []
        assigned: list[Ticket] = []
        touched: dict[int, Agent] = {}
        for ticket in tickets:
            agent = chooser.choose(ticket.team_id, exclusions.get(ticket.pk, set()))
            if agent is None:
                continue
            events.append(_assign(ticket, agent, now, None, {"via": "dispatch"}, save=False))
            chooser.charged(agent)
            assigned.append(ticket)
            touched[agent.pk] = agent
        _write_turn(assigned, list(touched.values()), now)
        TicketEvent.objects.bulk_create(events)
        for event in events:
            events_deliver(event.ticket, [event])
        return len(events)


def dispatch_run(*, batch: int | None = None) -> int:
    """Assign every pooled ticket that can be assigned now; returns how many.

    Safe to run any number of times at once: dispatchers take turns.
    """
    batch = batch or settings.ORDERLY_DISPATCH_BATCH
    total = 0
    while True:
        assigned = _dispatch_batch(batch)
        total += assigned
        if assigned == 0:
            return total


def _others_eligible(ticket: Ticket, me: Agent, excluded: set[int]) -> bool:
    """Is any agent other than ``me``, not excluded, eligible for the ticket?"""
    return (
        Agent.objects.filter(
            status=Agent.Status.ONLINE,
            active_count__lt=F("capacity"),
            user__is_active=True,
            user__teams=ticket.team_id,
        )
        .exclude(user_id__in=excluded | {me.user_id})
        .exists()
    )


@transaction.atomic
def ticket_pull_next(*, by: User) -> Ticket | None:
    """The caller takes the next ticket by the dispatch rules, or None."""
    require_role(by, User.Role.AGENT)
    dispatch_lock()
    agent = agents_lock([by.pk]).get(by.pk)
    if agent is None or agent.status != Agent.Status.ONLINE:
        raise AgentNotOnline()
    if agent.active_count >= agent.capacity:
        return None
    team_ids = list(by.teams.values_list("id", flat=True))
    now = timezone.now()
    pool = (
        Ticket.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("ticket_type")
        .filter(state=TicketState.POOLED, team_id__in=team_ids)
        .order_by(*POOL_ORDER)
    )
    start = 0
    chunk = 100
    while True:
        tickets = list(pool[start : start + chunk])
        if not tickets:
            return None
        exclusions = _exclusions_of([t.pk for t in tickets])
        for ticket in tickets:
            excluded = exclusions.get(ticket.pk, set())
            if agent.user_id in excluded and _others_eligible(ticket, agent, excluded):
                continue
            agent.user = by
            event = _assign(ticket, agent, now, by, {"via": "pull"})
            agent.save(update_fields=["active_count", "last_assigned_at", "updated_at"])
            event.save()
            events_deliver(ticket, [event])
            return ticket
        start += chunk


@transaction.atomic
def ticket_assign(*, ticket_id: int, agent_username: str, by: User, force: bool = False) -> Ticket:
    """A supervisor (re)assigns a ticket; a lock in force needs ``force``."""
    require_role(by, User.Role.SUPERVISOR)
    ticket = ticket_lock(ticket_id)
    require_visible(by, ticket)
    if ticket.state not in (TicketState.POOLED, TicketState.ASSIGNED):
        raise InvalidTransition(ticket.state, "assign")
    target = (
        User.objects.filter(username=agent_username, role=User.Role.AGENT, is_active=True).first()
        if isinstance(agent_username, str)
        else None
    )
    if target is None:
        raise ValidationFailed({"agent": ["No agent with this username."]})
    if not target.teams.filter(pk=ticket.team_id).exists():
        raise ValidationFailed({"agent": ["This agent is not in the ticket's team."]})
    now = timezone.now()
    if ticket.assignee_id == target.pk:
        return ticket
    if ticket.lock_in_force(now) and not force:
        raise LockedByOther()
    previous = ticket.assignee_id
    agents = agents_lock([target.pk] + ([previous] if previous else []))
    agent = agents[target.pk]
    if agent.active_count >= agent.capacity:
        raise ValidationFailed({"agent": ["This agent has no free capacity."]})
    was_locked = ticket.lock_in_force(now)
    agent.user = target
    event = _assign(ticket, agent, now, by, {"via": "manual", "forced": bool(force and was_locked),
                                             "previous": _username(previous)})
    agent.save(update_fields=["active_count", "last_assigned_at", "updated_at"])
    event.save()
    events_deliver(ticket, [event])
    if previous:
        agent_load_change(agents, previous, -1)
        on_commit_dispatch()
    return ticket


def _username(user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return User.objects.filter(pk=user_id).values_list("username", flat=True).first()
