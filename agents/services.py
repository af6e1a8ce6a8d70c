"""Writes about people: availability, provisioning."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from agents.models import Agent, Team, User
from tickets.errors import PermissionDenied, ValidationFailed
from tickets.locks import agents_lock
from tickets.services.common import on_commit_dispatch


@transaction.atomic
def agent_set_status(*, by: User, status: Any) -> Agent:
    """Change the caller's availability; going online nudges the dispatcher."""
    if not by.is_authenticated or by.role != User.Role.AGENT:
        raise PermissionDenied()
    if status not in Agent.Status.values:
        raise ValidationFailed({"status": ["Must be one of: online, away, offline."]})
    agent = agents_lock([by.pk]).get(by.pk) or Agent.objects.create(user=by)
    if agent.status != status:
        # The away grace period counts from leaving ``online`` (DESIGN.md 1.9):
        # moving between away and offline must not restart it.
        if (agent.status == Agent.Status.ONLINE) != (status == Agent.Status.ONLINE):
            agent.status_changed_at = timezone.now()
        agent.status = status
        agent.save(update_fields=["status", "status_changed_at", "updated_at"])
        if status == Agent.Status.ONLINE:
            on_commit_dispatch()
    return agent


@transaction.atomic
def agent_set_capacity(*, agent_id: int, capacity: Any) -> Agent:
    """A supervisor changes how many tickets an agent may hold at once.

    Lowering it below the current load takes nothing away (the agent simply
    gets nothing new until under it); raising it nudges the dispatcher.
    """
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= 1000:
        raise ValidationFailed({"capacity": ["Must be a whole number from 0 to 1000."]})
    agent = Agent.objects.select_for_update().get(pk=agent_id)
    if agent.capacity != capacity:
        raised = capacity > agent.capacity
        agent.capacity = capacity
        agent.save(update_fields=["capacity", "updated_at"])
        if raised:
            on_commit_dispatch()
    return agent


@transaction.atomic
def user_set_time_zone(*, user: User, time_zone: Any) -> User:
    """The zone a user's pages show times in ("" = the server's)."""
    from agents.models import validate_time_zone

    if not isinstance(time_zone, str):
        raise ValidationFailed({"time_zone": ["Must be a time zone name."]})
    try:
        validate_time_zone(time_zone)
    except DjangoValidationError as exc:
        raise ValidationFailed({"time_zone": list(exc.messages)}) from None
    user.time_zone = time_zone
    user.save(update_fields=["time_zone"])
    return user


@transaction.atomic
def team_create(*, name: Any) -> Team:
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed({"name": ["This field is required."]})
    if len(name) > 100:
        raise ValidationFailed({"name": ["At most 100 characters."]})
    if Team.objects.filter(name=name).exists():
        raise ValidationFailed({"name": ["A team with this name already exists."]})
    return Team.objects.create(name=name)


@transaction.atomic
def user_provision(
    *,
    username: Any,
    password: Any,
    email: Any = "",
    role: Any = User.Role.REQUESTER,
    teams: Any = None,
    capacity: Any = None,
    check_password: bool = True,
) -> tuple[User, str]:
    """Create a user with a role (and an Agent for agents); returns it and its API token."""
    fields: dict[str, list[str]] = {}
    if not isinstance(username, str) or not username.strip():
        fields["username"] = ["This field is required."]
    elif len(username) > 150:
        fields["username"] = ["At most 150 characters."]
    elif User.objects.filter(username=username).exists():
        fields["username"] = ["A user with that username already exists."]
    if not isinstance(password, str) or not password:
        fields["password"] = ["This field is required."]
    if email is None:
        email = ""
    if not isinstance(email, str):
        fields["email"] = ["Must be an email address."]
    elif email:
        from django.core.validators import validate_email

        try:
            validate_email(email)
        except DjangoValidationError:
            fields["email"] = ["Enter a valid email address."]
    if role not in User.Role.values:
        fields["role"] = ["Must be one of: requester, agent, supervisor, integration."]
    team_objs: list[Team] = []
    if teams is None:
        teams = []
    if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
        fields["teams"] = ["Must be a list of team names."]
    else:
        team_objs = list(Team.objects.filter(name__in=teams))
        missing = sorted(set(teams) - {t.name for t in team_objs})
        if missing:
            fields["teams"] = [f"No team named {name!r}." for name in missing]
    if capacity is None:
        capacity = 5
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 0 <= capacity <= 1000:
        fields["capacity"] = ["Must be a whole number from 0 to 1000."]
    if check_password and "password" not in fields and "username" not in fields:
        try:
            validate_password(password, User(username=username, email=email or ""))
        except DjangoValidationError as exc:
            fields["password"] = list(exc.messages)
    if fields:
        raise ValidationFailed(fields)
    user = User(username=username, email=email, role=role)
    user.set_password(password)
    user.save()
    if team_objs:
        user.teams.set(team_objs)
    if role == User.Role.AGENT:
        Agent.objects.create(user=user, capacity=capacity)
    token, _ = Token.objects.get_or_create(user=user)
    return user, token.key
