"""Validation: per-field errors from the form and from the service, nothing stored."""
from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from agents.models import User
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def _errors(html: str) -> dict[str, str]:
    """field id -> its error text (crispy-bootstrap5's invalid-feedback)."""
    found = {}
    for m in re.finditer(r'id="error_\d+_(id_[\w-]+)"[^>]*>\s*<strong>(.*?)</strong>', html, re.S):
        found[m.group(1)] = m.group(2).strip()
    return found


def test_create_shows_per_field_errors_and_stores_nothing(login, requester, form_type):
    response = login(requester).post(reverse("portal:create", args=[form_type.slug]), {
        "title": "", "order_ref": "X" * 21, "amount": "", "reason": "nonsense",
        "contact": "not-an-email", "bought_on": "yesterday",
    })
    assert response.status_code == 400
    errors = _errors(response.content.decode())
    assert set(errors) == {"id_title", "id_order_ref", "id_amount", "id_reason", "id_contact",
                           "id_bought_on"}
    assert "required" in errors["id_title"]
    assert Ticket.objects.count() == 0


def test_service_refusal_lands_on_the_dynamic_field(login, requester, form_type):
    # The browser's number input is a hint; the service owns number parsing and
    # its "data.amount" error is shown on the "amount" field.
    response = login(requester).post(reverse("portal:create", args=[form_type.slug]), {
        "title": "T", "order_ref": "A", "amount": "twelve", "reason": "late",
    })
    assert response.status_code == 400
    assert _errors(response.content.decode()) == {"id_amount": "Must be a number."}
    assert Ticket.objects.count() == 0


def test_unknown_type_is_404(login, requester):
    assert login(requester).get(reverse("portal:create", args=["nope"])).status_code == 404


def test_reject_needs_a_comment(login, requester, ticket_type):
    from tests.factories import TicketFactory

    ticket = TicketFactory(ticket_type=ticket_type, requester=requester, state="resolved")
    response = login(requester).post(reverse("portal:feedback", args=[ticket.pk]),
                                     {"feedback-verdict": "reject", "feedback-rating": "1"})
    assert response.status_code == 400
    assert "id_feedback-comment" in _errors(response.content.decode())
    assert Ticket.objects.get(pk=ticket.pk).state == "resolved"


def test_rating_out_of_range_is_refused(login, requester, ticket_type):
    from tests.factories import TicketFactory

    ticket = TicketFactory(ticket_type=ticket_type, requester=requester, state="resolved")
    response = login(requester).post(reverse("portal:feedback", args=[ticket.pk]),
                                     {"feedback-verdict": "accept", "feedback-rating": "9"})
    assert response.status_code == 400
    assert "id_feedback-rating" in _errors(response.content.decode())


def test_feedback_on_an_open_ticket_is_a_conflict_message(login, requester, ticket):
    response = login(requester).post(reverse("portal:feedback", args=[ticket.pk]),
                                     {"feedback-verdict": "accept"})
    assert response.status_code == 409
    assert b"Cannot give feedback on a ticket that is pooled" in response.content


def test_lock_form_shows_the_largest_allowed_and_refuses_zero(login, agent_user, assigned_ticket):
    agnes = login(agent_user)
    page = agnes.get(reverse("work:ticket", args=[assigned_ticket.pk])).content.decode()
    assert "The longest lock allowed now is 59 minute(s)" in page or \
        "The longest lock allowed now is 60 minute(s)" in page
    response = agnes.post(reverse("work:action", args=[assigned_ticket.pk, "lock"]),
                          {"lock-minutes": "0"})
    assert response.status_code == 400
    assert "id_lock-minutes" in _errors(response.content.decode())


def test_empty_resolve_and_comment_are_refused(login, agent_user, assigned_ticket):
    agnes = login(agent_user)
    for action, field in (("resolve", "result"), ("comment", "body"), ("handover", "reason")):
        response = agnes.post(reverse("work:action", args=[assigned_ticket.pk, action]),
                              {f"{action}-{field}": "  "})
        assert response.status_code == 400, action
        assert f"id_{action}-{field}" in _errors(response.content.decode())
    assert Ticket.objects.get(pk=assigned_ticket.pk).state == "assigned"


def test_signup_creates_a_requester_and_signs_in(login, client):
    response = client.post(reverse("signup"), {
        "username": "carol", "email": "carol@example.com",
        "password": "a-long-enough-secret-9", "password_again": "a-long-enough-secret-9",
    }, follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:list")
    user = User.objects.get(username="carol")
    assert user.role == User.Role.REQUESTER and not hasattr(user, "agent")


def test_signup_refusals(client, requester):
    response = client.post(reverse("signup"), {
        "username": requester.username, "password": "password", "password_again": "password",
    })
    assert response.status_code == 400
    assert "already exists" in _errors(response.content.decode())["id_username"]
    weak = client.post(reverse("signup"), {
        "username": "erin", "password": "password", "password_again": "password",
    })
    assert weak.status_code == 400
    assert "too common" in _errors(weak.content.decode())["id_password"]
    mismatch = client.post(reverse("signup"), {
        "username": "dave", "password": "a-long-enough-secret-9", "password_again": "other",
    })
    assert "id_password_again" in _errors(mismatch.content.decode())


def test_login_logout_and_password_reset(client, requester):
    from tests.factories import DEFAULT_PASSWORD

    page = client.get(reverse("login"))
    assert b'for="id_username"' in page.content and b"Forgot your password?" in page.content
    response = client.post(reverse("login"), {"username": requester.username,
                                              "password": DEFAULT_PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:list")
    out = client.post(reverse("logout"), follow=True)
    assert out.redirect_chain[-1][0] == reverse("login")
    client.post(reverse("password_reset"), {"email": requester.email})
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(form.redirect_chain[-1][0], {
        "new_password1": "brand-new-secret-42", "new_password2": "brand-new-secret-42",
    }, follow=True)
    assert b"Your password is set" in done.content
    assert client.login(username=requester.username, password="brand-new-secret-42")
