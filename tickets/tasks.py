"""Celery tasks: thin adapters from ids to services (STYLE.md 8, 9, 11)."""
from __future__ import annotations

from celery import shared_task

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(name="tickets.dispatch", **TASK_OPTIONS)
def dispatch_task() -> int:
    from tickets.services.dispatch import dispatch_run

    return dispatch_run()


@shared_task(name="tickets.dispatch_sweep", **TASK_OPTIONS)
def dispatch_sweep_task() -> int:
    from tickets.services.dispatch import dispatch_run

    return dispatch_run()


@shared_task(name="tickets.breach_sweep", **TASK_OPTIONS)
def breach_sweep_task() -> int:
    from tickets.services.sweeps import breach_sweep

    return breach_sweep()


@shared_task(name="tickets.lock_expiry_sweep", **TASK_OPTIONS)
def lock_expiry_sweep_task() -> int:
    from tickets.services.sweeps import lock_expiry_sweep

    return lock_expiry_sweep()


@shared_task(name="tickets.away_reclaim_sweep", **TASK_OPTIONS)
def away_reclaim_sweep_task() -> int:
    from tickets.services.sweeps import away_reclaim_sweep

    return away_reclaim_sweep()


@shared_task(name="tickets.auto_close_sweep", **TASK_OPTIONS)
def auto_close_sweep_task() -> int:
    from tickets.services.sweeps import auto_close_sweep

    return auto_close_sweep()


@shared_task(name="tickets.callback", **TASK_OPTIONS)
def callback_task(*, ticket_id: int) -> str | None:
    from tickets.services.callback import callback_attempt

    return callback_attempt(ticket_id=ticket_id)


@shared_task(name="tickets.callback_sweep", **TASK_OPTIONS)
def callback_sweep_task() -> int:
    """Re-drive tickets left in ``callback`` past their next-attempt time."""
    from tickets.services.callback import callback_due_ids

    ids = callback_due_ids()
    for ticket_id in ids:
        callback_task.delay(ticket_id=ticket_id)
    return len(ids)


@shared_task(name="tickets.delivery_send", **TASK_OPTIONS)
def delivery_send_task(*, delivery_id: int) -> str | None:
    from tickets.services.deliveries import delivery_send

    return delivery_send(delivery_id=delivery_id)


@shared_task(name="tickets.delivery_sweep", **TASK_OPTIONS)
def delivery_sweep_task() -> int:
    """Send every pending delivery whose next attempt is due (lost nudges included)."""
    from tickets.services.deliveries import delivery_due_ids

    ids = delivery_due_ids()
    for delivery_id in ids:
        delivery_send_task.delay(delivery_id=delivery_id)
    return len(ids)
