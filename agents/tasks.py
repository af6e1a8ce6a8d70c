"""Celery tasks of the agents app: thin adapters (STYLE.md 8, 11)."""
from __future__ import annotations

from celery import shared_task

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(name="agents.kpi_rollup_sweep", **TASK_OPTIONS)
def kpi_rollup_sweep_task() -> int:
    from agents.kpi_rollup import kpi_rollup_sweep

    return len(kpi_rollup_sweep())
