"""The one row-lock helper per model (STYLE.md 6).

On SQLite ``select_for_update`` is a no-op: there every transaction is
IMMEDIATE (settings), so only one writer runs at a time.
"""
from __future__ import annotations

from django.db import connection

from agents.models import Agent
from tickets.errors import NotFound
from tickets.models import Ticket

# Any constant: the key of the PostgreSQL advisory lock that serialises dispatch.
DISPATCH_LOCK_KEY = 0x0D15_7A7C


def ticket_lock(ticket_id: int) -> Ticket:
    """Lock and return a ticket (with its type). Caller is inside atomic()."""
    try:
        return (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("ticket_type")
            .get(pk=ticket_id)
        )
    except (Ticket.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such ticket.") from None


def agents_lock(user_ids: list[int]) -> dict[int, Agent]:
    """Lock the agents of these users in primary-key order; keyed by user id."""
    if not user_ids:
        return {}
    agents = (
        Agent.objects.select_for_update(of=("self",))
        .filter(user_id__in=set(user_ids))
        .order_by("pk")
    )
    return {agent.user_id: agent for agent in agents}


def dispatch_lock() -> None:
    """Serialise dispatchers (push and pull) for the rest of the transaction.

    Strict priority is a property of the whole pool: two dispatchers working on
    disjoint slices of it could each give an agent a lower ticket while a higher
    one waits in the other's slice. One dispatcher at a time (assigning in
    batches) keeps the rule and still assigns thousands of tickets a second.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DISPATCH_LOCK_KEY])
