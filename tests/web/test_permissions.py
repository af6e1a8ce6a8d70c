"""Who reaches which page (DESIGN.md 3): anonymous users are sent to sign in,
a role's pages answer 403 to other roles, and a ticket the user may not see
answers 404 -- never 403 -- so ids reveal nothing."""
from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PERSONAS = ["anonymous", "requester", "other_requester", "agent", "outside_agent",
            "supervisor", "outside_supervisor"]
LOGIN = "login"

# page -> expected status per persona (302 = to the sign-in page)
PAGES = {
    "portal:list": dict(anonymous=LOGIN, requester=200, other_requester=200, agent=403,
                        outside_agent=403, supervisor=403, outside_supervisor=403),
    "portal:new": dict(anonymous=LOGIN, requester=200, other_requester=200, agent=403,
                       outside_agent=403, supervisor=403, outside_supervisor=403),
    "portal:create": dict(anonymous=LOGIN, requester=200, other_requester=200, agent=403,
                          outside_agent=403, supervisor=403, outside_supervisor=403),
    "portal:detail": dict(anonymous=LOGIN, requester=200, other_requester=404, agent=403,
                          outside_agent=403, supervisor=403, outside_supervisor=403),
    "work:queue": dict(anonymous=LOGIN, requester=403, other_requester=403, agent=200,
                       outside_agent=200, supervisor=403, outside_supervisor=403),
    "work:pool": dict(anonymous=LOGIN, requester=403, other_requester=403, agent=200,
                      outside_agent=200, supervisor=403, outside_supervisor=403),
    "work:ticket": dict(anonymous=LOGIN, requester=403, other_requester=403, agent=200,
                        outside_agent=404, supervisor=200, outside_supervisor=404),
    "supervise:pool": dict(anonymous=LOGIN, requester=403, other_requester=403, agent=403,
                           outside_agent=403, supervisor=200, outside_supervisor=200),
    "supervise:board": dict(anonymous=LOGIN, requester=403, other_requester=403, agent=403,
                            outside_agent=403, supervisor=200, outside_supervisor=200),
    "supervise:deliveries": dict(anonymous=LOGIN, requester=403, other_requester=403, agent=403,
                                 outside_agent=403, supervisor=200, outside_supervisor=200),
    "notifications": dict(anonymous=LOGIN, requester=200, other_requester=200, agent=200,
                          outside_agent=200, supervisor=200, outside_supervisor=200),
}


def _url(name, assigned_ticket, ticket_type):
    if name in ("portal:detail", "work:ticket"):
        return reverse(name, args=[assigned_ticket.pk])
    if name == "portal:create":
        return reverse(name, args=[ticket_type.slug])
    return reverse(name)


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("page", list(PAGES))
def test_page_permission_matrix(page, persona, personas, login, assigned_ticket, ticket_type):
    client = login(personas[persona])
    url = _url(page, assigned_ticket, ticket_type)
    response = client.get(url)
    expected = PAGES[page][persona]
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    else:
        assert response.status_code == expected, response.content[:500]


@pytest.mark.parametrize("persona,target", [
    ("anonymous", "login"), ("requester", "portal:list"), ("agent", "work:queue"),
    ("supervisor", "supervise:pool"),
])
def test_home_routes_each_role_to_its_landing_page(persona, target, personas, login):
    response = login(personas[persona]).get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == reverse(target)


# POSTs: an action on a ticket the user may not see is 404; on a page of
# another role 403; anonymous to sign in.
PORTAL_POSTS = {
    "portal:comment": {"comment-body": "Hello"},
    "portal:cancel": {"cancel-reason": ""},
    "portal:feedback": {"feedback-verdict": "accept"},
}


@pytest.mark.parametrize("name", list(PORTAL_POSTS))
def test_portal_posts_on_another_requesters_ticket_are_404(name, login, other_requester,
                                                          assigned_ticket):
    response = login(other_requester).post(reverse(name, args=[assigned_ticket.pk]),
                                           PORTAL_POSTS[name])
    assert response.status_code == 404


@pytest.mark.parametrize("name", list(PORTAL_POSTS))
def test_portal_posts_from_staff_are_403_and_anonymous_must_sign_in(name, login, agent_user,
                                                                   assigned_ticket):
    url = reverse(name, args=[assigned_ticket.pk])
    assert login(agent_user).post(url, PORTAL_POSTS[name]).status_code == 403
    response = login(None).post(url, PORTAL_POSTS[name])
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


WORK_POSTS = {
    "lock": {"lock-minutes": "5"},
    "unlock": {},
    "handover": {"handover-reason": "Leaving"},
    "resolve": {"resolve-result": "Done"},
    "comment": {"comment-body": "Hi"},
    "note": {"note-body": "psst"},
}


@pytest.mark.parametrize("action", list(WORK_POSTS))
def test_work_actions_on_another_teams_ticket_are_404(action, login, outside_agent_user,
                                                     assigned_ticket):
    url = reverse("work:action", args=[assigned_ticket.pk, action])
    assert login(outside_agent_user).post(url, WORK_POSTS[action]).status_code == 404


@pytest.mark.parametrize("action", list(WORK_POSTS))
def test_work_actions_are_403_for_requesters(action, login, requester, assigned_ticket):
    url = reverse("work:action", args=[assigned_ticket.pk, action])
    assert login(requester).post(url, WORK_POSTS[action]).status_code == 403


@pytest.mark.parametrize("action", ["lock", "handover", "resolve"])
def test_agent_of_the_team_who_is_not_the_assignee_is_refused(action, login, other_agent_user,
                                                              assigned_ticket):
    url = reverse("work:action", args=[assigned_ticket.pk, action])
    response = login(other_agent_user).post(url, WORK_POSTS[action])
    assert response.status_code == 409
    assert b"Only the agent the ticket is assigned to" in response.content


@pytest.mark.parametrize("action", ["assign", "cancel"])
def test_supervisor_actions_are_403_for_agents(action, login, agent_user, assigned_ticket):
    url = reverse("work:action", args=[assigned_ticket.pk, action])
    assert login(agent_user).post(url, {}).status_code == 403


@pytest.mark.parametrize("action", ["assign", "cancel", "unlock"])
def test_supervisor_actions_on_another_teams_ticket_are_404(action, login, outside_supervisor,
                                                           assigned_ticket):
    url = reverse("work:action", args=[assigned_ticket.pk, action])
    assert login(outside_supervisor).post(url, {}).status_code == 404


def test_unknown_action_is_404(login, agent_user, assigned_ticket):
    url = reverse("work:action", args=[assigned_ticket.pk, "explode"])
    assert login(agent_user).post(url, {}).status_code == 404


def test_get_on_an_action_is_not_allowed(login, agent_user, assigned_ticket):
    url = reverse("work:action", args=[assigned_ticket.pk, "resolve"])
    assert login(agent_user).get(url).status_code == 405


def test_marking_another_users_notification_read_is_404(login, requester, other_requester,
                                                        assigned_ticket):
    from tickets.models import Notification

    note = Notification.objects.create(user=requester, kind="x", message="mine")
    assert login(other_requester).post(reverse("notification_read", args=[note.pk])).status_code == 404
    note.refresh_from_db()
    assert note.read is False


def test_status_switch_is_for_agents_only(login, requester, supervisor):
    for user in (requester, supervisor):
        assert login(user).post(reverse("work:status"), {"status": "online"}).status_code == 403
