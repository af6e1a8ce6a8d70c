"""Demo data for ``make run``: teams, ticket types, people and tickets.

Idempotent: people and types are created when missing, and each demo ticket is
created with an idempotency key, so its story (dispatch, lock, hand-over,
resolve, feedback, cancel) is played only the first time. Every ticket change
goes through the service layer, exactly as the portals and the API do it.

History for the KPI dashboard: three weeks of finished tickets (requester
``hana``, who has no email address, so no mail is queued for the past) are
played through the same services with the clock moved back (time-machine),
so every event carries the time it would have had; then the closed days are
rolled up. Played once, like the stories.
"""
from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from agents.models import Agent, Team, User
from agents.services import agent_set_status, team_create, user_provision
from feedback.services import ticket_feedback
from tickets.errors import OrderlyError
from tickets.models import Channel, IdempotencyKey, Ticket, TicketState, TicketType, TicketTypeField
from tickets.services.creation import ticket_create
from tickets.services.dispatch import dispatch_run, ticket_assign
from tickets.services.sweeps import ticket_auto_close, ticket_breach
from tickets.services.work import (
    ticket_cancel,
    ticket_comment,
    ticket_handover,
    ticket_lock_acquire,
    ticket_note,
    ticket_resolve,
)

PASSWORD = "demo-pass-123"
HISTORY_DAYS = 21
HISTORY_KEY = "orderly-demo-history"
# The history's requester: no address, so three weeks of past notifications
# queue no email when `make run` starts.
NO_EMAIL = {"hana"}
SUPERVISOR_GROUP = "Supervisors"

TEAMS = ["Billing", "Travel"]

K = TicketTypeField.Kind
TYPES: list[dict[str, Any]] = [
    {
        "slug": "refund-request",
        "name": "Refund request",
        "team": "Billing",
        "time_limit_minutes": 240,
        "max_lock_minutes": 60,
        "channels": [Channel.PORTAL, Channel.EMAIL],
        "fields": [
            ("order_number", "Order number", K.TEXT, True, [], 20),
            ("amount", "Amount (EUR)", K.NUMBER, True, [], None),
            ("purchase_date", "Purchase date", K.DATE, True, [], None),
            ("reason", "Reason", K.CHOICE, True,
             ["damaged", "not delivered", "not as described", "double charge", "other"], None),
            ("contact_email", "Contact email", K.EMAIL, False, [], None),
        ],
    },
    {
        "slug": "invoice-correction",
        "name": "Invoice correction",
        "team": "Billing",
        "time_limit_minutes": 480,
        "default_priority": 1,
        "channels": [Channel.PORTAL],
        "fields": [
            ("invoice_number", "Invoice number", K.TEXT, True, [], 30),
            ("invoice_date", "Invoice date", K.DATE, False, [], None),
            ("correction", "What is wrong", K.CHOICE, True,
             ["billing address", "VAT number", "amount", "company name"], None),
            ("accounts_email", "Accounts payable email", K.EMAIL, False, [], None),
        ],
    },
    {
        "slug": "booking-change",
        "name": "Booking change",
        "team": "Travel",
        "time_limit_minutes": 120,
        "channels": [Channel.PORTAL, Channel.EMAIL],
        "fields": [
            ("booking_reference", "Booking reference", K.TEXT, True, [], 6),
            ("travel_date", "New travel date", K.DATE, True, [], None),
            ("travellers", "Number of travellers", K.NUMBER, True, [], None),
            ("change", "Change", K.CHOICE, True,
             ["date", "name correction", "seat", "baggage", "cancel segment"], None),
            ("notes", "Anything else", K.TEXT, False, [], 500),
        ],
    },
    {
        # A 2-minute limit, so a breach can be watched while `make run` runs.
        "slug": "airport-assist",
        "name": "Airport assistance (2-minute limit)",
        "team": "Travel",
        "time_limit_minutes": 2,
        "default_priority": 4,
        "on_breach": TicketType.OnBreach.NOTIFY,
        "feedback_window_hours": 24,
        "channels": [Channel.PORTAL],
        "fields": [
            ("airport", "Airport (IATA code)", K.TEXT, True, [], 3),
            ("flight_date", "Flight date", K.DATE, True, [], None),
            ("problem", "Problem", K.CHOICE, True,
             ["missed connection", "lost baggage", "denied boarding", "special assistance"], None),
            ("callback_email", "Email for updates", K.EMAIL, False, [], None),
        ],
    },
]

# username, role, teams, capacity, status, first name
PEOPLE: list[tuple[str, str, list[str], int | None, str | None, str]] = [
    ("alice", User.Role.AGENT, ["Billing"], 3, Agent.Status.ONLINE, "Alice"),
    ("bob", User.Role.AGENT, ["Billing"], 2, Agent.Status.ONLINE, "Bob"),
    ("carol", User.Role.AGENT, ["Billing"], 4, None, "Carol"),
    ("dave", User.Role.AGENT, ["Travel"], 3, Agent.Status.ONLINE, "Dave"),
    ("erin", User.Role.AGENT, ["Travel", "Billing"], 2, Agent.Status.ONLINE, "Erin"),
    ("frank", User.Role.AGENT, ["Travel"], 3, Agent.Status.AWAY, "Frank"),
    ("sue", User.Role.SUPERVISOR, ["Billing"], None, None, "Sue"),
    ("tom", User.Role.SUPERVISOR, ["Travel"], None, None, "Tom"),
    ("rita", User.Role.REQUESTER, [], None, None, "Rita"),
    ("ralph", User.Role.REQUESTER, [], None, None, "Ralph"),
    ("hana", User.Role.REQUESTER, [], None, None, "Hana"),
    ("booking-system", User.Role.INTEGRATION, [], None, None, ""),
]

# Supervisors work in the Django admin: they configure types and look at
# everything, but edit people only through their agents' capacity.
SUPERVISOR_PERMISSIONS = [
    ("tickets", None),
    ("feedback", None),
    ("agents", "view_team"),
    ("agents", "view_user"),
    ("agents", "view_agent"),
    ("agents", "change_agent"),
]


class Command(BaseCommand):
    help = "Create (idempotently) the demo teams, ticket types, people and tickets."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000", help="port shown in the printed URLs")
        parser.add_argument(
            "--breach", action="store_true",
            help="also create a new airport-assist ticket (2-minute limit) to watch a breach",
        )
        parser.add_argument("--quiet-logins", action="store_true", help="do not print the logins")
        parser.add_argument("--history-days", type=int, default=HISTORY_DAYS,
                            help="days of finished tickets for the KPI charts (0: none)")

    def handle(self, *args, **options):
        self.created: list[str] = []
        for name in TEAMS:
            if not Team.objects.filter(name=name).exists():
                team_create(name=name)
                self.created.append(f"team {name}")
        group = self._supervisor_group()
        tokens = {}
        for username, role, teams, capacity, status, first in PEOPLE:
            tokens[username] = self._person(username, role, teams, capacity, status, first, group)
        tokens["admin"] = self._admin()
        for spec in TYPES:
            self._ticket_type(spec)
        self._history(days=options["history_days"])
        self._stories()
        if options["breach"]:
            self._airport_ticket(key=None)
        if self.created:
            self.stdout.write("Demo data: created " + ", ".join(self.created) + ".")
        else:
            self.stdout.write("Demo data: already in place.")
        if not options["quiet_logins"]:
            self._print_logins(options["port"], tokens)

    # -- people -----------------------------------------------------------------

    def _supervisor_group(self) -> Group:
        group, _ = Group.objects.get_or_create(name=SUPERVISOR_GROUP)
        perms = Permission.objects.none()
        for app, codename in SUPERVISOR_PERMISSIONS:
            q = Permission.objects.filter(content_type__app_label=app)
            perms |= q.filter(codename=codename) if codename else q
        group.permissions.set(perms)
        return group

    def _person(self, username, role, teams, capacity, status, first, group) -> str | None:
        user = User.objects.filter(username=username).first()
        if user is None:
            user, _token = user_provision(
                username=username, password=PASSWORD,
                email="" if username in NO_EMAIL else f"{username}@example.com",
                role=role, teams=teams, capacity=capacity, check_password=False,
            )
            user.first_name = first
            fields = ["first_name"]
            if role == User.Role.SUPERVISOR:
                # The Django admin is the supervisors' console.
                user.is_staff = True
                fields.append("is_staff")
                user.groups.add(group)
            user.save(update_fields=fields)
            if status and status != Agent.Status.OFFLINE:
                agent_set_status(by=user, status=status)
            self.created.append(f"{role} {username}")
        if role == User.Role.INTEGRATION:
            from rest_framework.authtoken.models import Token

            return Token.objects.get_or_create(user=user)[0].key
        return None

    def _admin(self) -> None:
        if User.objects.filter(username="admin").exists():
            return None
        user, _token = user_provision(
            username="admin", password=PASSWORD, email="admin@example.com",
            role=User.Role.SUPERVISOR, teams=TEAMS, check_password=False,
        )
        user.is_staff = True
        user.is_superuser = True
        user.save(update_fields=["is_staff", "is_superuser"])
        self.created.append("superuser admin")
        return None

    # -- configuration ----------------------------------------------------------

    @transaction.atomic
    def _ticket_type(self, spec: dict[str, Any]) -> None:
        if TicketType.objects.filter(slug=spec["slug"]).exists():
            return
        values = {k: v for k, v in spec.items() if k not in ("fields", "team")}
        ttype = TicketType(team=Team.objects.get(name=spec["team"]), **values)
        ttype.full_clean()
        ttype.save()
        for position, (name, label, kind, required, choices, max_length) in enumerate(spec["fields"]):
            TicketTypeField.objects.create(
                ticket_type=ttype, name=name, label=label, kind=kind, required=required,
                choices=choices, max_length=max_length, position=position,
            )
        self.created.append(f"type {ttype.slug}")

    # -- tickets, only through the services ---------------------------------------

    def _create(self, key: str | None, requester: str, type_slug: str, title: str,
                description: str, data: dict[str, Any], priority: int | None = None) -> Ticket | None:
        """Create a demo ticket; None when it exists already (its story was told)."""
        ticket, created = ticket_create(
            by=User.objects.get(username=requester), type_slug=type_slug, title=title,
            description=description, data=data, priority=priority,
            idempotency_key=f"orderly-demo-{key}" if key else None,
        )
        if not created:
            return None
        self.created.append(f"ticket #{ticket.pk}")
        dispatch_run()
        ticket.refresh_from_db()
        return ticket

    def _assignee(self, ticket: Ticket) -> User | None:
        ticket.refresh_from_db()
        return ticket.assignee

    def _step(self, what: str, fn, **kwargs):
        """Run one service call; a demo step that is refused is reported, not fatal."""
        try:
            return fn(**kwargs)
        except OrderlyError as exc:
            self.stderr.write(f"demo step skipped ({what}): {exc.detail}")
            return None

    def _stories(self) -> None:
        rita = User.objects.get(username="rita")
        ralph = User.objects.get(username="ralph")

        # Resolved and accepted, with a rating: closed.
        t = self._create("b1", "rita", "refund-request", "Kettle arrived with a cracked lid",
                         "The lid of the kettle was cracked when I opened the box.",
                         {"order_number": "ORD-20417", "amount": 39.90,
                          "purchase_date": "2026-10-28", "reason": "damaged",
                          "contact_email": "rita@example.com"})
        if t and (agent := self._assignee(t)):
            self._step("resolve", ticket_resolve, ticket_id=t.pk, by=agent,
                       result="Refunded 39.90 EUR to your card; no need to send the kettle back.")
            self._step("accept", ticket_feedback, ticket_id=t.pk, by=rita, accepted=True,
                       rating=5, comment="Quick and painless, thank you!")

        # Resolved, then rejected: reopened with a higher priority, dispatched again.
        t = self._create("b2", "ralph", "refund-request", "Charged twice for one order",
                         "My statement shows two payments for the same order.",
                         {"order_number": "ORD-20533", "amount": 120, "purchase_date": "2026-11-02",
                          "reason": "double charge"})
        if t and (agent := self._assignee(t)):
            self._step("resolve", ticket_resolve, ticket_id=t.pk, by=agent,
                       result="The second payment was only a pre-authorisation; it will disappear.")
            self._step("reject", ticket_feedback, ticket_id=t.pk, by=ralph, accepted=False,
                       rating=2, comment="It has not disappeared after a week; please refund it.")
            dispatch_run()

        # Assigned and locked by its agent while they work on it.
        t = self._create("b3", "rita", "invoice-correction", "Wrong VAT number on invoice",
                         "Our VAT number is DE811907980, the invoice shows an old one.",
                         {"invoice_number": "INV-2026-0912", "invoice_date": "2026-11-01",
                          "correction": "VAT number", "accounts_email": "ap@rita-gmbh.example"})
        if t and (agent := self._assignee(t)):
            self._step("lock", ticket_lock_acquire, ticket_id=t.pk, by=agent, minutes=30)
            self._step("note", ticket_note, ticket_id=t.pk, by=agent,
                       body="Checked the VAT register: the new number is valid.")

        # Handed over: priority raised, re-dispatched to another agent.
        t = self._create("b4", "ralph", "invoice-correction", "Company name misspelt",
                         "It says 'Ralf Trading', it should be 'Ralph Trading Ltd'.",
                         {"invoice_number": "INV-2026-1044", "correction": "company name"})
        if t and (agent := self._assignee(t)):
            self._step("hand over", ticket_handover, ticket_id=t.pk, by=agent,
                       reason="Needs someone with access to the ledger corrections.")
            dispatch_run()

        # Resolved, waiting for the requester's verdict.
        t = self._create("t1", "rita", "booking-change", "Move my Lisbon trip by a week",
                         "Same flights, one week later if possible.",
                         {"booking_reference": "QX7P2L", "travel_date": "2026-12-12",
                          "travellers": 2, "change": "date"})
        if t and (agent := self._assignee(t)):
            self._step("comment", ticket_comment, ticket_id=t.pk, by=agent,
                       body="Same flights are available on the 12th; the fare difference is 0 EUR.")
            self._step("resolve", ticket_resolve, ticket_id=t.pk, by=agent,
                       result="Rebooked: departure 12 December, return 19 December. New tickets sent.")

        # Cancelled by the requester.
        t = self._create("t2", "ralph", "booking-change", "Add a bag to my flight",
                         "", {"booking_reference": "ZT9K3M", "travel_date": "2026-11-30",
                              "travellers": 1, "change": "baggage"})
        if t:
            self._step("cancel", ticket_cancel, ticket_id=t.pk, by=ralph,
                       reason="Added the bag myself in the airline's app.")

        # Still open: assigned or waiting in the pool.
        self._create("t3", "rita", "booking-change", "Correct the spelling of my surname",
                     "Passport says 'Ritta', the booking says 'Rita'.",
                     {"booking_reference": "LM4R8D", "travel_date": "2026-12-03",
                      "travellers": 1, "change": "name correction"}, priority=3)
        self._create("b5", "ralph", "refund-request", "Parcel never arrived",
                     "Tracking has said 'in transit' for three weeks.",
                     {"order_number": "ORD-19980", "amount": 64.50, "purchase_date": "2026-10-12",
                      "reason": "not delivered"})
        self._create("b6", "rita", "refund-request", "Shoes not as described",
                     "Ordered leather, got synthetic.",
                     {"order_number": "ORD-20601", "amount": 89, "purchase_date": "2026-11-05",
                      "reason": "not as described"}, priority=1)
        self._create("b7", "ralph", "invoice-correction", "Billing address outdated",
                     "We moved in October.",
                     {"invoice_number": "INV-2026-1101", "correction": "billing address"},
                     priority=1)
        # More than the online agents can take: these wait in the Billing pool.
        self._create("b8", "rita", "refund-request", "Blender stopped working after two days",
                     "", {"order_number": "ORD-20688", "amount": 54.99,
                          "purchase_date": "2026-11-10", "reason": "damaged"}, priority=1)
        self._create("b9", "ralph", "invoice-correction", "Invoice amount rounded wrongly",
                     "Total should be 1,204.50, not 1,205.00.",
                     {"invoice_number": "INV-2026-1130", "correction": "amount"}, priority=1)

        # The 2-minute type: it breaches while you watch (the supervisor is told).
        self._airport_ticket(key="a1")

    # -- history for the KPI charts ------------------------------------------------

    def _history(self, days: int) -> None:
        """Finished tickets over the last ``days`` days, played through the
        services with the clock moved back; each ticket's story is over before
        the next one starts, so the agents' loads end as they began."""
        hana = User.objects.filter(username="hana").first()
        if days <= 0 or hana is None or IdempotencyKey.objects.filter(
                user=hana, key=f"{HISTORY_KEY}-0-0").exists():
            return
        import time_machine  # a dev dependency, installed for `make run` too

        from agents.kpi_rollup import kpi_rollup_sweep

        rng = random.Random(2026)
        boss = User.objects.get(username="admin")
        agents = {team: list(User.objects.filter(role=User.Role.AGENT, teams__name=team)
                             .order_by("username").values_list("username", flat=True))
                  for team in TEAMS}
        types = list(TicketType.objects.filter(slug__in=[t["slug"] for t in TYPES])
                     .select_related("team"))
        weights = [5 if t.slug == "refund-request" else 1 if t.slug == "airport-assist" else 3
                   for t in types]
        tz = timezone.get_default_timezone()
        today = timezone.localdate()
        count = 0
        real_now = timezone.now()
        with time_machine.travel(real_now, tick=False) as clock:
            for back in range(days, 0, -1):
                day = today - timedelta(days=back)
                # A busier middle week, quieter weekends: charts with a shape.
                n = rng.randint(2, 4) if day.weekday() >= 5 else rng.randint(7, 13) + (
                    4 if days // 3 <= back < 2 * days // 3 else 0)
                for i in range(n):
                    start = timezone.make_aware(datetime.combine(day, time(8)), tz) + timedelta(
                        minutes=rng.randint(0, 9 * 60), seconds=rng.randint(0, 59))
                    clock.move_to(start)
                    ttype = rng.choices(types, weights)[0]
                    self._history_ticket(clock, rng, hana, boss, ttype,
                                         agents[ttype.team.name], f"{HISTORY_KEY}-{back - 1}-{i}"
                                         if (back, i) != (days, 0) else f"{HISTORY_KEY}-0-0",
                                         real_now)
                    count += 1
        built = kpi_rollup_sweep()
        self.created.append(f"{count} past tickets over {days} days ({len(built)} days rolled up)")

    def _history_ticket(self, clock, rng: random.Random, hana: User, boss: User,
                        ttype: TicketType, usernames: list[str], key: str, real_now: datetime) -> None:
        data = {f.name: self._sample(f) for f in ttype.fields.all() if f.required}
        ticket, created = ticket_create(by=hana, type_slug=ttype.slug, title=f"{ttype.name}",
                                        description="", data=data, idempotency_key=key)
        if not created:
            return

        def later(lo: int, hi: int) -> None:
            clock.shift(timedelta(minutes=rng.randint(lo, hi), seconds=rng.randint(0, 59)))

        def assign() -> str:
            later(1, 40)
            who = rng.choice(usernames)
            self._past_step(real_now, "assign", ticket_assign, ticket_id=ticket.pk, agent_username=who, by=boss)
            return who

        if rng.random() < 0.05:
            later(5, 90)
            self._past_step(real_now, "cancel", ticket_cancel, ticket_id=ticket.pk, by=hana,
                       reason="No longer needed.")
            return
        rounds = 2 if rng.random() < 0.1 else 1
        for n in range(rounds):
            who = assign()
            if rng.random() < 0.1:
                later(5, 40)
                self._past_step(real_now, "hand over", ticket_handover, ticket_id=ticket.pk,
                           by=User.objects.get(username=who), reason="Needs a colleague.")
                who = assign()
            limit = ttype.time_limit_minutes
            work = int(rng.expovariate(1 / (limit * 0.45))) + 2
            ticket.refresh_from_db()
            if ticket.due_at and timezone.now() + timedelta(minutes=work) > ticket.due_at \
                    and rng.random() < 0.7:
                # Never back in time: the deadline may have passed already.
                clock.move_to(max(timezone.now(), ticket.due_at)
                              + timedelta(seconds=rng.randint(5, 300)))
                self._past_step(real_now, "breach", ticket_breach, ticket_id=ticket.pk)
                ticket.refresh_from_db()
                if ticket.state == TicketState.POOLED:
                    who = assign()
                work = rng.randint(3, max(4, limit // 2))
            clock.shift(timedelta(minutes=work, seconds=rng.randint(0, 59)))
            self._past_step(real_now, "resolve", ticket_resolve, ticket_id=ticket.pk,
                       by=User.objects.get(username=who), result="Done.")
            later(20, 600)
            if n < rounds - 1:
                self._past_step(real_now, "reject", ticket_feedback, ticket_id=ticket.pk, by=hana,
                           accepted=False, rating=rng.choice([1, 2, None]),
                           comment="Not solved yet.")
        if rng.random() < 0.8:
            self._past_step(real_now, "accept", ticket_feedback, ticket_id=ticket.pk, by=hana, accepted=True,
                       rating=rng.choices([5, 4, 3, 2, 1, None], [40, 28, 12, 6, 4, 10])[0])
        else:
            ticket.refresh_from_db()
            if ticket.feedback_due_at and ticket.feedback_due_at < real_now - timedelta(hours=1):
                clock.move_to(ticket.feedback_due_at + timedelta(minutes=1))
                self._past_step(real_now, "auto close", ticket_auto_close, ticket_id=ticket.pk)

    def _past_step(self, real_now: datetime, what: str, fn, **kwargs):
        """A history step, only while the moved clock is still in the past."""
        if timezone.now() >= real_now - timedelta(minutes=5):
            return None
        return self._step(what, fn, **kwargs)

    @staticmethod
    def _sample(field: TicketTypeField) -> Any:
        if field.kind == TicketTypeField.Kind.CHOICE:
            return field.choices[0]
        if field.kind == TicketTypeField.Kind.NUMBER:
            return 1
        if field.kind == TicketTypeField.Kind.DATE:
            return "2026-11-01"
        if field.kind == TicketTypeField.Kind.EMAIL:
            return "hana@example.invalid"
        return "ABC123"[: field.effective_max_length or 6]

    def _airport_ticket(self, key: str | None) -> None:
        self._create(key, "ralph", "airport-assist", "Missed my connection in Frankfurt",
                     "Inbound flight was 90 minutes late; the connection to Lisbon has left.",
                     {"airport": "FRA", "flight_date": "2026-11-20", "problem": "missed connection",
                      "callback_email": "ralph@example.com"})

    # -- the banner ---------------------------------------------------------------

    def _print_logins(self, port: str, tokens: dict[str, str | None]) -> None:
        base = f"http://127.0.0.1:{port}/"
        w = self.stdout.write
        w("")
        w("=" * 72)
        w(f"Orderly:        {base}")
        w(f"Django admin:   {base}admin/")
        w(f"API schema:     {base}api/schema/")
        w(f"API:            {base}api/v1/")
        w(f"Every demo password is: {PASSWORD}")
        w("")
        w(f"  {'username':<16}{'role':<13}{'teams':<17}notes")
        rows = User.objects.filter(
            username__in=[p[0] for p in PEOPLE] + ["admin"]
        ).prefetch_related("teams").select_related("agent").order_by("role", "username")
        for user in rows:
            notes = []
            if user.is_superuser:
                notes.append("superuser")
            elif user.is_staff:
                notes.append("admin access")
            agent = getattr(user, "agent", None) if user.role == User.Role.AGENT else None
            if agent is not None:
                notes.append(f"{agent.status}, capacity {agent.capacity}")
            if tokens.get(user.username):
                notes.append(f"API token {tokens[user.username]}")
            teams = ",".join(t.name for t in user.teams.all()) or "-"
            w(f"  {user.username:<16}{user.role:<13}{teams:<17}{'; '.join(notes)}")
        w("")
        w(f"Sweeps run every {settings.ORDERLY_SWEEP_SECONDS} s; the airport-assist type has a")
        w("2-minute limit: watch its ticket breach in the admin. Ctrl-C stops everything.")
        w("=" * 72)
        w("")
