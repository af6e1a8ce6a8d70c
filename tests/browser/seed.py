"""Seed the browser test's throw-away database: one team, a refund type with
its own fields, and a requester, two agents and a supervisor.

Run as a script with the run's environment (ORDERLY_VAR_DIR etc.)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

import django  # noqa: E402

django.setup()

from agents.models import Agent, User  # noqa: E402
from agents.services import team_create, user_provision  # noqa: E402
from tickets.models import TicketType, TicketTypeField  # noqa: E402

PASSWORD = os.environ.get("ORDERLY_SEED_PASSWORD", "orderly-browser-pass-1")

team = team_create(name="Refunds")
ttype = TicketType.objects.create(slug="refund", name="Refund request", team=team,
                                  time_limit_minutes=60, channels=["portal"])
TicketTypeField.objects.create(ticket_type=ttype, name="order_ref", label="Order reference",
                               kind="text", required=True, max_length=20, position=0)
TicketTypeField.objects.create(ticket_type=ttype, name="amount", label="Amount",
                               kind="number", required=True, position=1)
TicketTypeField.objects.create(ticket_type=ttype, name="reason", label="Reason", kind="choice",
                               required=True, choices=["damaged", "late", "other"], position=2)
user_provision(username="rita", password=PASSWORD, email="rita@example.com",
               role=User.Role.REQUESTER)
for name in ("alex", "bea"):
    user_provision(username=name, password=PASSWORD, role=User.Role.AGENT, teams=["Refunds"])
user_provision(username="sara", password=PASSWORD, role=User.Role.SUPERVISOR, teams=["Refunds"])
# alex starts online; bea stays offline so the story's dispatch is deterministic.
Agent.objects.filter(user__username="alex").update(status=Agent.Status.ONLINE)
print("seeded")
