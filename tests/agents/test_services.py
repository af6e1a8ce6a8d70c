"""Availability and provisioning (DESIGN.md 1.3, 1.9, 3)."""
from __future__ import annotations

import pytest

from agents.models import Agent, Team, User
from agents.services import agent_set_status, team_create, user_provision
from tickets import tasks
from tickets.errors import PermissionDenied, ValidationFailed
from tickets.models import Ticket, TicketState

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


def agent_row(user) -> Agent:
    return Agent.objects.get(user=user)


# -- availability -------------------------------------------------------------------------------------


def test_going_online_nudges_the_dispatcher_after_commit(
    ticket, team, django_capture_on_commit_callbacks, sent_tasks, clock
):
    from tests.factories import AgentUserFactory

    user = AgentUserFactory(teams=[team], agent__status=Agent.Status.OFFLINE)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        agent = agent_set_status(by=user, status="online")
    assert sent_tasks == []
    for callback in callbacks:
        callback()
    assert sent_tasks == [("tickets.dispatch", {})]
    assert agent.status == Agent.Status.ONLINE and agent.status_changed_at == clock.now()

    assert tasks.dispatch_task() == 1      # what the nudge runs
    assert Ticket.objects.get(pk=ticket.pk).assignee == user


@pytest.mark.parametrize("status", ["away", "offline"])
def test_leaving_online_nudges_nothing(agent_user, status, django_capture_on_commit_callbacks,
                                       sent_tasks, clock):
    clock.shift(minutes=3)
    with django_capture_on_commit_callbacks(execute=True):
        agent = agent_set_status(by=agent_user, status=status)
    assert sent_tasks == []
    assert agent_row(agent_user).status == status
    assert agent.status_changed_at == clock.now()


def test_setting_the_same_status_changes_nothing(agent_user, clock):
    since = agent_row(agent_user).status_changed_at
    clock.shift(minutes=5)
    agent_set_status(by=agent_user, status="online")
    assert agent_row(agent_user).status_changed_at == since


def test_away_to_offline_keeps_the_time_online_was_left(agent_user, clock):
    agent_set_status(by=agent_user, status="away")
    left = clock.now()
    clock.shift(minutes=4)
    agent_set_status(by=agent_user, status="offline")
    row = agent_row(agent_user)
    assert row.status == Agent.Status.OFFLINE and row.status_changed_at == left


@pytest.mark.parametrize("status", ["busy", "", None, "ONLINE"])
def test_unknown_status_is_refused(agent_user, status):
    with pytest.raises(ValidationFailed) as exc:
        agent_set_status(by=agent_user, status=status)
    assert list(exc.value.fields) == ["status"]


@pytest.mark.parametrize("persona", ["requester", "supervisor", "integration"])
def test_only_agents_have_a_status(request, persona):
    with pytest.raises(PermissionDenied):
        agent_set_status(by=request.getfixturevalue(persona), status="online")


def test_agent_without_a_row_gets_one(team):
    user = User.objects.create(username="late", role=User.Role.AGENT)
    agent = agent_set_status(by=user, status="online")
    assert agent.user == user and agent.status == "online"


def test_going_away_keeps_tickets_until_the_grace_ends(assigned_ticket, agent_user, clock):
    agent_set_status(by=agent_user, status="away")
    assert tasks.away_reclaim_sweep_task() == 0
    assert Ticket.objects.get(pk=assigned_ticket.pk).state == TicketState.ASSIGNED


# -- provisioning ---------------------------------------------------------------------------------------


def test_team_create(db):
    assert team_create(name="Claims").name == "Claims"


@pytest.mark.parametrize("name", ["", "  ", None, "x" * 101, "Refunds"])
def test_team_create_refuses_bad_or_taken_names(team, name):
    with pytest.raises(ValidationFailed):
        team_create(name=name)
    assert Team.objects.count() == 1


def test_provision_agent_with_teams_capacity_and_token(team):
    user, token = user_provision(username="newagent", password="a-long-passphrase-42",
                                 email="n@example.com", role="agent", teams=["Refunds"],
                                 capacity=3)
    assert user.role == "agent" and list(user.teams.all()) == [team]
    assert user.check_password("a-long-passphrase-42")
    agent = agent_row(user)
    assert agent.capacity == 3 and agent.status == Agent.Status.OFFLINE
    assert token and user.auth_token.key == token


def test_provision_agent_capacity_defaults_to_5(team):
    user, _ = user_provision(username="cap", password="a-long-passphrase-42", role="agent")
    assert agent_row(user).capacity == 5


@pytest.mark.parametrize("role", ["requester", "supervisor", "integration"])
def test_provision_non_agents_get_no_agent_row(db, role):
    user, _ = user_provision(username=f"u-{role}", password="a-long-passphrase-42", role=role)
    assert user.role == role and not Agent.objects.filter(user=user).exists()


@pytest.mark.parametrize("kwargs, field", [
    ({"username": "alice"}, "username"),
    ({"username": ""}, "username"),
    ({"password": ""}, "password"),
    ({"password": "123"}, "password"),
    ({"email": "nope"}, "email"),
    ({"role": "admin"}, "role"),
    ({"teams": ["Nowhere"]}, "teams"),
    ({"teams": "Refunds"}, "teams"),
    ({"capacity": -1}, "capacity"),
    ({"capacity": "3"}, "capacity"),
])
def test_provision_refuses_bad_input(requester, team, kwargs, field):
    args = {"username": "fresh", "password": "a-long-passphrase-42", "role": "agent"}
    args.update(kwargs)
    before = User.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        user_provision(**args)
    assert field in exc.value.fields
    assert User.objects.count() == before


# -- capacity ---------------------------------------------------------------------------------------


def test_raising_capacity_nudges_the_dispatcher_lowering_takes_nothing_away(
    agent_user, django_capture_on_commit_callbacks, sent_tasks
):
    from agents.services import agent_set_capacity

    agent = agent_row(agent_user)
    Agent.objects.filter(pk=agent.pk).update(active_count=3, capacity=3)
    with django_capture_on_commit_callbacks(execute=True):
        agent_set_capacity(agent_id=agent.pk, capacity=5)
    assert sent_tasks == [("tickets.dispatch", {})]
    with django_capture_on_commit_callbacks(execute=True):
        lowered = agent_set_capacity(agent_id=agent.pk, capacity=1)
    assert sent_tasks == [("tickets.dispatch", {})]      # no nudge for less room
    assert (lowered.capacity, lowered.active_count) == (1, 3)


@pytest.mark.parametrize("bad", [-1, 1001, "5", None, True, 2.5])
def test_capacity_must_be_a_whole_number_in_range(agent_user, bad):
    from agents.services import agent_set_capacity

    agent = agent_row(agent_user)
    before = agent.capacity
    with pytest.raises(ValidationFailed) as caught:
        agent_set_capacity(agent_id=agent.pk, capacity=bad)
    assert "capacity" in caught.value.fields
    assert agent_row(agent_user).capacity == before
