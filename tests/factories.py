"""Factories for every test suite (STYLE.md 18).

People and configuration are plain model factories. Tickets are different:
``TicketFactory`` creates them through ``ticket_create`` and then walks them to
the requested ``state`` through the same services the product uses, so a
factory-made ticket carries the events, rounds, loads and exclusions a real one
would. Examples::

    TicketFactory()                                   # pooled, type of a new team
    TicketFactory(ticket_type=ticket_type)            # pooled in that type's team
    TicketFactory(state="assigned", assignee=agent_user)
    TicketFactory(state="resolved", ticket_type=ticket_type, requester=requester)
    TicketFactory(state="closed")                     # accepted by its requester
    TicketFactory(state="cancelled")                  # cancelled from the pool
    TicketFactory(ticket_type=TicketTypeFactory(callback=True))  # state "callback"

``state="assigned"`` without ``assignee`` makes a new online agent of the team.
Assignment goes through ``ticket_assign`` by ``system_supervisor()``: a
superuser supervisor with no teams, so it sees every ticket yet is never among
a team's supervisors (breach notifications, comment recipients).
"""
from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory, Password

from agents.models import Agent, Team, User
from tickets.models import Ticket, TicketState, TicketType, TicketTypeField

DEFAULT_PASSWORD = "correct-horse-battery-staple"


class TeamFactory(DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")


class UserFactory(DjangoModelFactory):
    """A user; pass ``teams=[team, ...]`` to put them in teams."""

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = Password(DEFAULT_PASSWORD)
    role = User.Role.REQUESTER

    @factory.post_generation
    def teams(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            self.teams.set(extracted)


class RequesterFactory(UserFactory):
    username = factory.Sequence(lambda n: f"requester{n}")
    role = User.Role.REQUESTER


class SupervisorFactory(UserFactory):
    username = factory.Sequence(lambda n: f"supervisor{n}")
    role = User.Role.SUPERVISOR


class IntegrationFactory(UserFactory):
    username = factory.Sequence(lambda n: f"integration{n}")
    role = User.Role.INTEGRATION


class AgentFactory(DjangoModelFactory):
    """The Agent row (availability, capacity, load) of an agent user."""

    class Meta:
        model = Agent

    user = factory.SubFactory(UserFactory, role=User.Role.AGENT,
                              username=factory.Sequence(lambda n: f"agentrow{n}"))
    status = Agent.Status.ONLINE
    capacity = 5
    status_changed_at = factory.LazyFunction(timezone.now)


class AgentUserFactory(UserFactory):
    """An agent user with its Agent row: online, capacity 5 unless told
    otherwise (``agent__status=Agent.Status.AWAY``, ``agent__capacity=1``)."""

    username = factory.Sequence(lambda n: f"agent{n}")
    role = User.Role.AGENT
    agent = factory.RelatedFactory(AgentFactory, factory_related_name="user")


class TicketTypeFactory(DjangoModelFactory):
    """A ticket type. ``fields=[{"name": "ref", "kind": "text", ...}]`` adds
    field definitions; ``callback=True`` gives it a callback endpoint."""

    class Meta:
        model = TicketType
        django_get_or_create = ("slug",)
        skip_postgeneration_save = True

    class Params:
        callback = factory.Trait(callback_url="https://callback.example.com/orderly")

    slug = factory.Sequence(lambda n: f"type-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    team = factory.SubFactory(TeamFactory)
    time_limit_minutes = 60
    channels = factory.LazyFunction(lambda: ["portal"])

    @factory.post_generation
    def fields(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if create and extracted:
            for position, spec in enumerate(extracted):
                TicketTypeFieldFactory(ticket_type=self, position=position, **spec)


class TicketTypeFieldFactory(DjangoModelFactory):
    class Meta:
        model = TicketTypeField

    ticket_type = factory.SubFactory(TicketTypeFactory)
    name = factory.Sequence(lambda n: f"field_{n}")
    label = factory.LazyAttribute(lambda o: o.name.replace("_", " ").capitalize())
    kind = TicketTypeField.Kind.TEXT
    required = False
    choices = factory.LazyFunction(list)


def system_supervisor() -> User:
    """A superuser supervisor in no team: may assign any ticket, is told of nothing."""
    user, created = User.objects.get_or_create(
        username="factory-system-supervisor",
        defaults={"role": User.Role.SUPERVISOR, "is_superuser": True, "is_staff": True},
    )
    if created:
        user.set_password(DEFAULT_PASSWORD)
        user.save(update_fields=["password"])
    return user


class TicketFactory(factory.Factory):
    """A ticket made by the services (see the module docstring)."""

    class Meta:
        model = Ticket

    ticket_type = factory.SubFactory(TicketTypeFactory)
    requester = factory.SubFactory(RequesterFactory)
    title = factory.Sequence(lambda n: f"Work order {n}")
    description = "Please help."
    data = factory.LazyFunction(dict)
    priority = None
    state = None  # as created: pooled, or callback for a callback type
    assignee = None
    result = "Done."

    @classmethod
    def _build(cls, model_class, *args: Any, **kwargs: Any):
        raise NotImplementedError("Tickets are made by the services: use TicketFactory(...).")

    @classmethod
    def _create(cls, model_class, *, ticket_type, requester, title, description, data, priority,
                state, assignee, result) -> Ticket:
        from tickets.services.creation import ticket_create

        ticket, _ = ticket_create(
            by=requester, type_slug=ticket_type.slug, title=title, description=description,
            data=data, priority=priority,
        )
        return ticket_advance(ticket, state=state, assignee=assignee, result=result)


def ticket_assign_to(ticket: Ticket, agent_user: User) -> Ticket:
    """Assign through the supervisor's service (deterministic, unlike dispatch)."""
    from tickets.services.dispatch import ticket_assign

    return ticket_assign(ticket_id=ticket.pk, agent_username=agent_user.username,
                         by=system_supervisor())


def ticket_advance(ticket: Ticket, *, state: str | None, assignee: User | None = None,
                   result: str = "Done.") -> Ticket:
    """Walk a freshly created ticket to ``state`` through the services."""
    from feedback.services import ticket_feedback
    from tickets.services.work import ticket_cancel, ticket_resolve

    if state is None or state == ticket.state:
        return ticket
    if ticket.state == TicketState.CALLBACK and state != TicketState.CANCELLED:
        raise ValueError(f"A callback ticket becomes {state} through the callback flow only.")
    if state == TicketState.CANCELLED:
        ticket_cancel(ticket_id=ticket.pk, by=ticket.requester)
        return Ticket.objects.get(pk=ticket.pk)
    if assignee is None:
        assignee = AgentUserFactory(teams=[ticket.team])
    ticket_assign_to(ticket, assignee)
    if state in (TicketState.RESOLVED, TicketState.CLOSED):
        ticket_resolve(ticket_id=ticket.pk, by=assignee, result=result)
    if state == TicketState.CLOSED:
        ticket_feedback(ticket_id=ticket.pk, by=ticket.requester, accepted=True)
    if state not in (TicketState.ASSIGNED, TicketState.RESOLVED, TicketState.CLOSED):
        raise ValueError(f"Unknown ticket state {state!r}.")
    return Ticket.objects.get(pk=ticket.pk)


# -- assertion helpers ------------------------------------------------------------


def ticket_row(ticket_or_id: Ticket | int) -> dict[str, Any]:
    """The ticket's stored row (fresh from the DB), exclusions included, for
    before/after comparisons."""
    from django.forms.models import model_to_dict

    pk = ticket_or_id.pk if isinstance(ticket_or_id, Ticket) else ticket_or_id
    row = model_to_dict(Ticket.objects.get(pk=pk))
    row["excluded_agents"] = sorted(u.pk for u in row["excluded_agents"])
    row["updated_at"] = Ticket.objects.values_list("updated_at", flat=True).get(pk=pk)
    return row


def event_trail(ticket_or_id: Ticket | int) -> list[tuple[str, str, str]]:
    """``(kind, from_state, to_state)`` of a ticket's events, oldest first."""
    from tickets.models import TicketEvent

    pk = ticket_or_id.pk if isinstance(ticket_or_id, Ticket) else ticket_or_id
    return list(TicketEvent.objects.filter(ticket_id=pk).order_by("id")
                .values_list("kind", "from_state", "to_state"))


def fresh(ticket: Ticket) -> Ticket:
    """The ticket as stored now."""
    return Ticket.objects.get(pk=ticket.pk)


def agent_load(user: User) -> int:
    """The agent's stored number of active tickets."""
    return Agent.objects.get(user=user).active_count
