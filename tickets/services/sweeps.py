"""What happens by itself: breach, lock expiry, away reclaim and auto-close.

Each sweep selects the ids that are due through a partial index, up to a
batch, and hands each to a service that locks the row and re-checks that the
work is still due: two sweeps running at once handle every ticket once.
"""
from __future__ import annotations


from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent, User
from tickets import clock
from tickets.locks import agents_lock, ticket_lock
from tickets.models import BREACHABLE_STATES, MAX_PRIORITY, Ticket, TicketEvent, TicketState
from tickets.services.common import agent_load_change, event_record, notify_users, on_commit_dispatch


def _batch() -> int:
    return settings.ORDERLY_SWEEP_BATCH


def _drain(ids_of, handle, max_batches: int = 100) -> int:
    """Handle due ids batch after batch until a batch comes back short.

    A ticket that ``handle`` declines (no longer due) is not selected again
    by ``ids_of``, so the loop ends; ``max_batches`` bounds one run anyway.
    """
    done = 0
    for _ in range(max_batches):
        ids = ids_of()
        done += sum(bool(handle(ticket_id=tid)) for tid in ids)
        if len(ids) < _batch():
            break
    return done


# -- breach ---------------------------------------------------------------------


def breach_due_ids(now=None) -> list[int]:
    now = now or timezone.now()
    return list(
        Ticket.objects.filter(state__in=BREACHABLE_STATES, round_breached=False, due_at__lte=now)
        .order_by("due_at")
        .values_list("id", flat=True)[: _batch()]
    )


@transaction.atomic
def ticket_breach(*, ticket_id: int) -> bool:
    """Mark a ticket whose time limit ran out; returns False when not due (any more).

    Once per round: priority up by the type's step, supervisors told, and per
    ``on_breach`` either reclaimed to the pool with a new round (``reassign``)
    or left with the agent (``notify``). A ticket breaching in the pool starts
    a new round at once, so its next holder has a real time limit.
    """
    ticket = ticket_lock(ticket_id)
    now = timezone.now()
    if (
        ticket.state not in BREACHABLE_STATES
        or ticket.round_breached
        or ticket.due_at is None
        or ticket.due_at > now
    ):
        return False
    ttype = ticket.ticket_type
    from_state = ticket.state
    agent_id = ticket.assignee_id
    old_priority = ticket.priority
    ticket.breached_at = now
    ticket.round_breached = True
    ticket.priority = min(MAX_PRIORITY, ticket.priority + ttype.breach_priority_step)
    reclaimed = False
    agent_name = None
    if from_state == TicketState.ASSIGNED and ttype.on_breach == ttype.OnBreach.REASSIGN:
        agents = agents_lock([agent_id])
        agent_name = agents[agent_id].user.username if agent_id in agents else None
        ticket.release()
        ticket.excluded_agents.add(agent_id)
        agent_load_change(agents, agent_id, -1)
        ticket._start_round(now)
        reclaimed = True
    elif from_state == TicketState.ASSIGNED:
        agent_name = User.objects.filter(pk=agent_id).values_list("username", flat=True).first()
    else:
        ticket._start_round(now)
    ticket.save(update_fields=[
        "state", "assignee", "assigned_at", "locked_until", "locked_by", "breached_at",
        "round_breached", "priority", "round", "sla_started_at", "due_at", "updated_at",
    ])
    event_record(
        ticket=ticket, kind=TicketEvent.Kind.BREACHED, by=None, from_state=from_state, at=now,
        details={
            "agent": agent_name,
            "policy": ttype.on_breach,
            "reclaimed": reclaimed,
            "priority_from": old_priority,
            "priority_to": ticket.priority,
            "round": ticket.round,
            "due_at": ticket.due_at.isoformat() if ticket.due_at else None,
        },
    )
    supervisors = User.objects.filter(
        role=User.Role.SUPERVISOR, teams=ticket.team_id, is_active=True
    ).values_list("id", flat=True)
    notify_users(
        ticket=ticket, user_ids=list(supervisors), kind="breached", at=now,
        message=(
            f"Work order #{ticket.pk} \"{ticket.title}\" ran past its time limit"
            + (f" with {agent_name}" if agent_name else " in the pool")
            + ("; it was reclaimed to the pool." if reclaimed else ".")
        ),
    )
    if ticket.state == TicketState.POOLED:
        on_commit_dispatch()
    return True


def breach_sweep() -> int:
    return _drain(breach_due_ids, ticket_breach)


# -- lock expiry ------------------------------------------------------------------


def lock_expired_ids(now=None) -> list[int]:
    now = now or timezone.now()
    return list(
        Ticket.objects.filter(locked_until__isnull=False, locked_until__lte=now)
        .order_by("locked_until")
        .values_list("id", flat=True)[: _batch()]
    )


@transaction.atomic
def ticket_lock_expire(*, ticket_id: int) -> bool:
    ticket = ticket_lock(ticket_id)
    now = timezone.now()
    if ticket.locked_until is None or ticket.locked_until > now:
        return False
    until = ticket.locked_until
    holder = ticket.locked_by
    ticket.locked_until = None
    ticket.locked_by = None
    ticket.save(update_fields=["locked_until", "locked_by", "updated_at"])
    event_record(
        ticket=ticket, kind=TicketEvent.Kind.LOCK_EXPIRED, by=None, from_state=ticket.state, at=now,
        details={"locked_until": until.isoformat(), "locked_by": holder.username if holder else None},
    )
    return True


def lock_expiry_sweep() -> int:
    return _drain(lock_expired_ids, ticket_lock_expire)


# -- away reclaim -----------------------------------------------------------------


def _away_cutoff(now):
    return now - clock.minutes(settings.ORDERLY_AWAY_GRACE_MINUTES)


def away_reclaim_ids(now=None) -> list[int]:
    """Unlocked tickets of agents who left ``online`` longer than the grace period ago."""
    now = now or timezone.now()
    away_users = Agent.objects.filter(
        ~Q(status=Agent.Status.ONLINE), status_changed_at__lt=_away_cutoff(now), active_count__gt=0
    ).values("user_id")
    return list(
        Ticket.objects.filter(state=TicketState.ASSIGNED, assignee_id__in=away_users)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .order_by("id")
        .values_list("id", flat=True)[: _batch()]
    )


@transaction.atomic
def ticket_reclaim(*, ticket_id: int) -> bool:
    """Take an unlocked ticket back from an agent who is away: no priority
    change, no new round."""
    ticket = ticket_lock(ticket_id)
    now = timezone.now()
    if ticket.state != TicketState.ASSIGNED or ticket.lock_in_force(now):
        return False
    agents = agents_lock([ticket.assignee_id])
    agent = agents.get(ticket.assignee_id)
    if agent is None or agent.status == Agent.Status.ONLINE or agent.status_changed_at >= _away_cutoff(now):
        return False
    ticket.release()
    ticket.save(update_fields=["state", "assignee", "assigned_at", "locked_until", "locked_by",
                               "updated_at"])
    agent_load_change(agents, agent.user_id, -1)
    event_record(
        ticket=ticket, kind=TicketEvent.Kind.RECLAIMED, by=None, from_state=TicketState.ASSIGNED,
        at=now, details={"agent": agent.user.username, "agent_status": agent.status},
    )
    on_commit_dispatch()
    return True


def away_reclaim_sweep() -> int:
    return _drain(away_reclaim_ids, ticket_reclaim)


# -- auto-close -------------------------------------------------------------------


def auto_close_ids(now=None) -> list[int]:
    now = now or timezone.now()
    return list(
        Ticket.objects.filter(state=TicketState.RESOLVED, feedback_due_at__lte=now)
        .order_by("feedback_due_at")
        .values_list("id", flat=True)[: _batch()]
    )


@transaction.atomic
def ticket_auto_close(*, ticket_id: int) -> bool:
    ticket = ticket_lock(ticket_id)
    now = timezone.now()
    if ticket.state != TicketState.RESOLVED or ticket.feedback_due_at is None or ticket.feedback_due_at > now:
        return False
    resolver = (User.objects.filter(pk=ticket.assignee_id).values_list("username", flat=True)
                .first() if ticket.assignee_id else None)
    ticket.close(now=now)
    ticket.save(update_fields=["state", "closed_at", "feedback_due_at", "updated_at"])
    # "agent": whose resolution closed unanswered (KPI reopen rate, agents/kpi.py).
    event_record(ticket=ticket, kind=TicketEvent.Kind.AUTO_CLOSED, by=None,
                 from_state=TicketState.RESOLVED, at=now, details={"agent": resolver})
    return True


def auto_close_sweep() -> int:
    return _drain(auto_close_ids, ticket_auto_close)
