"""The Django admin: pages answer, tickets are read-only, every state change
is an action that goes through the services (events written, rules kept)."""
import pytest
from django.urls import reverse

from agents.models import Agent, User
from tests.factories import event_trail
from tickets.models import Ticket, TicketState

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(team):
    user = User.objects.create_superuser("root", "root@x.io", "pw-long-enough-1")
    user.teams.add(team)
    return user


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize("model", ["ticket", "tickettype", "ticketevent", "notification",
                                   "delivery", "idempotencykey"])
def test_ticket_app_lists_answer(admin_client, ticket, model):
    assert admin_client.get(reverse(f"admin:tickets_{model}_changelist")).status_code == 200


@pytest.mark.parametrize("model", ["team", "user", "agent"])
def test_people_lists_answer(admin_client, agent_user, model):
    assert admin_client.get(reverse(f"admin:agents_{model}_changelist")).status_code == 200


def test_a_ticket_page_shows_its_timeline_and_cannot_be_edited(admin_client, ticket):
    url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    assert "created" in page.content.decode()
    before = Ticket.objects.get(pk=ticket.pk).title
    admin_client.post(url, {"title": "changed by hand"})
    assert Ticket.objects.get(pk=ticket.pk).title == before


def _act(client, action, ids, **extra):
    return client.post(reverse("admin:tickets_ticket_changelist"),
                       {"action": action, "_selected_action": [str(i) for i in ids], **extra},
                       follow=True)


def test_cancel_action_goes_through_the_service(admin_client, ticket, admin_user):
    _act(admin_client, "cancel_tickets", [ticket.pk])
    ticket = Ticket.objects.get(pk=ticket.pk)
    assert ticket.state == TicketState.CANCELLED
    cancelled = [e for e in event_trail(ticket) if e[0] == "cancelled"]
    assert cancelled == [("cancelled", TicketState.POOLED, TicketState.CANCELLED)]


def test_cancel_action_refuses_a_closed_ticket_with_a_message(admin_client, assigned_ticket,
                                                              agent_user):
    from tickets.services.work import ticket_resolve

    ticket_resolve(ticket_id=assigned_ticket.pk, by=agent_user, result="done")
    page = _act(admin_client, "cancel_tickets", [assigned_ticket.pk])
    assert Ticket.objects.get(pk=assigned_ticket.pk).state == TicketState.RESOLVED
    assert "Cannot cancel" in page.content.decode()


def test_assign_action_respects_a_lock_unless_forced(admin_client, assigned_ticket, agent_user,
                                                     other_agent_user):
    from tickets.services.work import ticket_lock_acquire

    ticket_lock_acquire(ticket_id=assigned_ticket.pk, by=agent_user, minutes=5)
    _act(admin_client, "assign_to_agent", [assigned_ticket.pk], agent=other_agent_user.username)
    assert Ticket.objects.get(pk=assigned_ticket.pk).assignee == agent_user
    _act(admin_client, "assign_to_agent", [assigned_ticket.pk], agent=other_agent_user.username,
         force="on")
    assert Ticket.objects.get(pk=assigned_ticket.pk).assignee == other_agent_user


def test_capacity_changes_through_the_service_and_keep_the_load(admin_client, agent_user):
    agent = Agent.objects.get(user=agent_user)
    Agent.objects.filter(pk=agent.pk).update(active_count=2)
    url = reverse("admin:agents_agent_change", args=[agent.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data["capacity"] = 9
    response = admin_client.post(url, data)
    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.capacity, agent.active_count) == (9, 2)


def test_retry_action_sends_a_failed_delivery_again(admin_client, ticket):
    from tickets.delivery_models import Delivery

    failed = Delivery.objects.create(ticket=ticket, channel="webhook", recipient="http://x.test/",
                                     event="created", status="failed", attempts=5,
                                     next_attempt_at=None)
    sent = Delivery.objects.create(ticket=ticket, channel="webhook", recipient="http://x.test/",
                                   event="pooled", status="sent", attempts=1)
    page = admin_client.post(reverse("admin:tickets_delivery_changelist"),
                             {"action": "retry_failed",
                              "_selected_action": [str(failed.pk), str(sent.pk)]}, follow=True)
    failed.refresh_from_db()
    sent.refresh_from_db()
    assert (failed.status, failed.attempts) == ("pending", 0)
    assert sent.status == "sent"
    assert "Only a failed delivery can be retried" in page.content.decode()


def test_a_staff_supervisor_sees_only_their_teams_rows(client, supervisor, ticket, ticket_type,
                                                       other_team, requester):
    from django.contrib.auth.models import Permission

    from tests.factories import TicketTypeFactory
    from tickets.services.creation import ticket_create

    outside_type = TicketTypeFactory(team=other_team)
    outside, _ = ticket_create(by=requester, type_slug=outside_type.slug, title="elsewhere",
                               data={})
    supervisor.is_staff = True
    supervisor.save(update_fields=["is_staff"])
    supervisor.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_ticket", "view_ticketevent", "view_feedback", "view_delivery"]))
    client.force_login(supervisor)
    events = client.get(reverse("admin:tickets_ticketevent_changelist"))
    shown = {row.ticket_id for row in events.context["cl"].result_list}
    assert shown == {ticket.pk}
    tickets = client.get(reverse("admin:tickets_ticket_changelist"))
    assert {t.pk for t in tickets.context["cl"].result_list} == {ticket.pk}
    assert outside.pk not in {t.pk for t in tickets.context["cl"].result_list}
