"""The whole lifecycle by clicking (test client): every step posts a form and
follows the redirect, exactly as a browser without JavaScript would."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from agents.models import Agent
from tickets.models import Notification, Ticket, TicketState

pytestmark = pytest.mark.django_db


def _ticket_id(response) -> int:
    return int(re.search(r"/portal/tickets/(\d+)/", response.redirect_chain[-1][0]).group(1))


def test_requester_to_agent_and_back(login, requester, agent_user, supervisor, form_type, clock):
    alice, agnes, sue = login(requester), login(agent_user), login(supervisor)

    # The requester picks a type and fills in its own fields.
    page = alice.get(reverse("portal:new"))
    assert b"Refund request" in page.content and b"90 minutes" in page.content
    form = alice.get(reverse("portal:create", args=[form_type.slug]))
    assert b"Time limit" in form.content and b"Order reference" in form.content
    created = alice.post(reverse("portal:create", args=[form_type.slug]), {
        "title": "Broken kettle", "description": "Arrived broken", "order_ref": "A-1",
        "amount": "12.50", "reason": "damaged", "bought_on": "2026-02-01", "contact": "",
    }, follow=True)
    assert created.status_code == 200
    pk = _ticket_id(created)
    ticket = Ticket.objects.get(pk=pk)
    assert ticket.data == {"order_ref": "A-1", "amount": 12.5, "reason": "damaged",
                           "bought_on": "2026-02-01"}
    assert b"Pooled" in created.content

    # The supervisor sees it in the pool.
    assert f"pool-row-{pk}".encode() in sue.get(reverse("supervise:pool")).content
    # The agent goes online and takes it.
    agnes.post(reverse("work:status"), {"status": "online"})
    assert Agent.objects.get(user=agent_user).status == "online"
    taken = agnes.post(reverse("work:pull"), follow=True)
    assert taken.redirect_chain[-1][0] == reverse("work:ticket", args=[pk])
    queue = agnes.get(reverse("work:queue"))
    assert f"queue-row-{pk}".encode() in queue.content

    # Too long a lock is refused with the rule's message; a short one is taken.
    refused = agnes.post(reverse("work:action", args=[pk, "lock"]), {"lock-minutes": "91"})
    assert refused.status_code == 409
    assert b"the longest lock allowed now is 90 minute(s)" in refused.content
    locked = agnes.post(reverse("work:action", args=[pk, "lock"]), {"lock-minutes": "30"},
                        follow=True)
    assert b"The ticket is locked." in locked.content
    assert Ticket.objects.get(pk=pk).locked_until is not None

    # A comment to the requester and an internal note.
    agnes.post(reverse("work:action", args=[pk, "comment"]), {"comment-body": "Refund on its way"})
    agnes.post(reverse("work:action", args=[pk, "note"]), {"note-body": "SECRET-NOTE"})
    staff_page = agnes.get(reverse("work:ticket", args=[pk]))
    assert b"SECRET-NOTE" in staff_page.content and b"agents only" in staff_page.content
    resolved = agnes.post(reverse("work:action", args=[pk, "resolve"]),
                          {"resolve-result": "Refunded 12.50"}, follow=True)
    assert b"Resolved" in resolved.content
    assert Ticket.objects.get(pk=pk).state == TicketState.RESOLVED

    # The requester sees the result and the comment, never the note, and rejects.
    detail = alice.get(reverse("portal:detail", args=[pk]))
    assert b"Refunded 12.50" in detail.content and b"Refund on its way" in detail.content
    assert b"SECRET-NOTE" not in detail.content
    assert b"feedback-form" in detail.content
    assert alice.get(reverse("notifications")).status_code == 200
    assert Notification.objects.filter(user=requester, read=False).exists()
    rejected = alice.post(reverse("portal:feedback", args=[pk]), {
        "feedback-verdict": "reject", "feedback-rating": "2", "feedback-comment": "Only half",
    }, follow=True)
    assert b"reopened" in rejected.content
    ticket = Ticket.objects.get(pk=pk)
    assert ticket.state == TicketState.POOLED and ticket.priority == 3

    # Back to an agent with the higher priority; resolved again; accepted with a rating.
    agnes.post(reverse("work:pull"))
    agnes.post(reverse("work:action", args=[pk, "resolve"]), {"resolve-result": "All of it"})
    accepted = alice.post(reverse("portal:feedback", args=[pk]), {
        "feedback-verdict": "accept", "feedback-rating": "5", "feedback-comment": "",
    }, follow=True)
    assert b"closed" in accepted.content
    ticket = Ticket.objects.get(pk=pk)
    assert ticket.state == TicketState.CLOSED and ticket.rating == 5
    # Closed: no comment box, no cancel, no feedback form any more.
    detail = alice.get(reverse("portal:detail", args=[pk]))
    for marker in (b"comment-form", b"cancel-form", b"feedback-form"):
        assert marker not in detail.content


def test_requester_cancels_an_open_ticket(login, requester, ticket):
    response = login(requester).post(reverse("portal:cancel", args=[ticket.pk]),
                                     {"cancel-reason": "Not needed"}, follow=True)
    assert b"cancelled" in response.content
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.CANCELLED


def test_requester_comment_reaches_the_assignee(login, requester, assigned_ticket, agent_user):
    response = login(requester).post(reverse("portal:comment", args=[assigned_ticket.pk]),
                                     {"comment-body": "Any news?"}, follow=True)
    assert b"Any news?" in response.content
    inbox = login(agent_user).get(reverse("notifications"))
    assert b"Any news?" in inbox.content


def test_supervisor_force_reassigns_force_unlocks_and_cancels(login, supervisor, agent_user,
                                                              other_agent_user, assigned_ticket):
    pk = assigned_ticket.pk
    login(agent_user).post(reverse("work:action", args=[pk, "lock"]), {"lock-minutes": "10"})
    sue = login(supervisor)
    page = sue.get(reverse("work:ticket", args=[pk]))
    assert b"assign-form" in page.content and b"Force-unlock" in page.content
    refused = sue.post(reverse("work:action", args=[pk, "assign"]),
                       {"assign-agent": other_agent_user.username})
    assert refused.status_code == 409 and b"use force" in refused.content
    sue.post(reverse("work:action", args=[pk, "assign"]),
             {"assign-agent": other_agent_user.username, "assign-force": "on"})
    assert Ticket.objects.get(pk=pk).assignee == other_agent_user
    login(other_agent_user).post(reverse("work:action", args=[pk, "lock"]), {"lock-minutes": "5"})
    sue.post(reverse("work:action", args=[pk, "unlock"]))
    assert Ticket.objects.get(pk=pk).locked_until is None
    sue.post(reverse("work:action", args=[pk, "cancel"]), {"cancel-reason": "Duplicate"})
    assert Ticket.objects.get(pk=pk).state == TicketState.CANCELLED


def test_actions_not_allowed_in_the_state_are_not_offered(login, agent_user, assigned_ticket,
                                                          other_agent_user):
    mine = login(agent_user).get(reverse("work:ticket", args=[assigned_ticket.pk])).content
    for marker in (b"lock-form", b"resolve-form", b"handover-form", b"comment-form",
                   b"note-form"):
        assert marker in mine
    assert b"unlock-form" not in mine and b"assign-form" not in mine
    theirs = login(other_agent_user).get(reverse("work:ticket", args=[assigned_ticket.pk])).content
    for marker in (b"lock-form", b"resolve-form", b"handover-form"):
        assert marker not in theirs


def test_handover_sends_the_ticket_back_to_the_pool(login, agent_user, assigned_ticket):
    response = login(agent_user).post(
        reverse("work:action", args=[assigned_ticket.pk, "handover"]),
        {"handover-reason": "Out of my depth"}, follow=True)
    assert b"Handed over" in response.content
    assert Ticket.objects.get(pk=assigned_ticket.pk).state == TicketState.POOLED


def test_pull_while_offline_shows_the_rule(login, agent_user):
    Agent.objects.filter(user=agent_user).update(status="offline")
    response = login(agent_user).post(reverse("work:pull"), follow=True)
    assert b"Set your status to online" in response.content


def test_queue_marks_new_assignments_since_the_page_was_opened(login, agent_user, ticket_type,
                                                               requester, clock):
    from tests.factories import TicketFactory

    agnes = login(agent_user)
    agnes.get(reverse("work:queue"))  # opened: everything so far is seen
    clock.shift(minutes=1)
    ticket = TicketFactory(ticket_type=ticket_type, requester=requester, state="assigned",
                           assignee=agent_user)
    partial = agnes.get(reverse("work:queue"), headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert "<html" not in body and 'hx-trigger="every 5s"' in body
    assert re.search(rf'id="queue-row-{ticket.pk}"[^>]*queue-new', body)
    assert "data-countdown" in body
    # Reopening the full page marks it seen.
    clock.shift(minutes=1)
    agnes.get(reverse("work:queue"))
    again = agnes.get(reverse("work:queue"), headers={"HX-Request": "true"}).content.decode()
    assert not re.search(rf'id="queue-row-{ticket.pk}"[^>]*queue-new', again)


def test_notifications_mark_read_and_header_count(login, requester):
    Notification.objects.create(user=requester, kind="x", message="first")
    second = Notification.objects.create(user=requester, kind="x", message="second")
    alice = login(requester)
    assert b'id="unread-count"' in alice.get(reverse("portal:list")).content
    assert re.search(rb'id="unread-count"[^>]*>2<', alice.get(reverse("portal:list")).content)
    alice.post(reverse("notification_read", args=[second.pk]))
    assert re.search(rb'id="unread-count"[^>]*>1<', alice.get(reverse("portal:list")).content)
    alice.post(reverse("notifications_read_all"))
    assert not Notification.objects.filter(user=requester, read=False).exists()


def test_every_form_carries_a_csrf_token(login, agent_user, supervisor, requester,
                                        assigned_ticket, ticket_type):
    pages = [
        (login(agent_user), reverse("work:ticket", args=[assigned_ticket.pk])),
        (login(agent_user), reverse("work:queue")),
        (login(supervisor), reverse("work:ticket", args=[assigned_ticket.pk])),
        (login(requester), reverse("portal:detail", args=[assigned_ticket.pk])),
        (login(requester), reverse("portal:create", args=[ticket_type.slug])),
        (login(requester), reverse("notifications")),
        (login(None), reverse("login")),
        (login(None), reverse("signup")),
    ]
    for client, url in pages:
        html = client.get(url).content.decode()
        posts = re.findall(r'<form[^>]*method="post"[^>]*>(.*?)</form>', html, re.S)
        assert posts, url
        for body in posts:
            assert "csrfmiddlewaretoken" in body, url


def test_every_control_has_a_label(login, agent_user, assigned_ticket):
    html = login(agent_user).get(reverse("work:ticket", args=[assigned_ticket.pk])).content.decode()
    for control_id in re.findall(r'<(?:input|textarea|select)[^>]*\sid="([^"]+)"', html):
        assert f'for="{control_id}"' in html, control_id
