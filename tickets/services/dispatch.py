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

from collections import defaultdict
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.db.models import F
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


def _choose(candidates: list[Agent], excluded: set[int]) -> Agent | None:
    """The best agent among those with room; excluded ones only if nobody else."""
    free = [a for a in candidates if a.active_count < a.capacity]
    if not free:
        return None
    preferred = [a for a in free if a.user_id not in excluded] or free
    return min(preferred, key=_agent_key)


def _assign(ticket: Ticket, agent: Agent, now, by: User | None, details: dict) -> TicketEvent:
    from_state = ticket.state
    ticket.assign(agent_user=agent.user, now=now)
    ticket.save(update_fields=["state", "assignee", "assigned_at", "locked_until", "locked_by",
                               "updated_at"])
    agent.active_count += 1
    agent.last_assigned_at = now
    return TicketEvent(
        ticket=ticket, kind=TicketEvent.Kind.ASSIGNED, actor=by, at=now,
        from_state=from_state, to_state=ticket.state,
        details={"agent": agent.user.username, **details},
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
        events: list[TicketEvent] = []
        touched: dict[int, Agent] = {}
        for ticket in tickets:
            agent = _choose(by_team[ticket.team_id], exclusions.get(ticket.pk, set()))
            if agent is None:
                continue
            events.append(_assign(ticket, agent, now, None, {"via": "dispatch"}))
            touched[agent.pk] = agent
        for agent in touched.values():
            agent.save(update_fields=["active_count", "last_assigned_at", "updated_at"])
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
