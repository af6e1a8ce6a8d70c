"""Email and webhook deliveries (API.md "Deliveries", "Webhooks out"): recorded
with the change they report, sent by the task function (called directly),
retried with a doubling delay, their final failure recorded, listed and
retried by supervisors through the API."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from tests.factories import TicketFactory, TicketTypeFactory, ticket_assign_to
from tests.outside.conftest import SECRET, Api, assert_error
from tickets.delivery_models import Delivery
from tickets.models import TicketEvent
from tickets.services.deliveries import delivery_due_ids, delivery_send
from tickets.services.work import ticket_comment, ticket_note, ticket_resolve
from tickets.tasks import delivery_send_task, delivery_sweep_task


class FailingEmailBackend(BaseEmailBackend):
    """An SMTP server that is down."""

    def send_messages(self, email_messages):
        raise ConnectionRefusedError("SMTP server is down")


@pytest.fixture
def hooked_type(team, endpoint):
    return TicketTypeFactory(
        slug="hooked", team=team, time_limit_minutes=60,
        channels=["portal", "email", "webhook"], webhook_url=endpoint.url("/hook"), secret=SECRET,
    )


@pytest.fixture
def hooked_ticket(clock, hooked_type, requester, sent_tasks):
    return TicketFactory(ticket_type=hooked_type, requester=requester, title="Broken kettle")


def webhooks(ticket) -> list[Delivery]:
    return list(Delivery.objects.filter(ticket=ticket, channel="webhook").order_by("id"))


def emails(ticket) -> list[Delivery]:
    return list(Delivery.objects.filter(ticket=ticket, channel="email").order_by("id"))


def reload(delivery: Delivery) -> Delivery:
    return Delivery.objects.get(pk=delivery.pk)


# -- what is recorded ---------------------------------------------------------------------


def test_each_event_records_one_webhook_except_notes_and_notifications(
        hooked_ticket, agent_user, requester, endpoint):
    ticket_assign_to(hooked_ticket, agent_user)
    ticket_note(ticket_id=hooked_ticket.pk, by=agent_user, body="internal only")
    ticket_comment(ticket_id=hooked_ticket.pk, by=agent_user, body="On it.")
    ticket_resolve(ticket_id=hooked_ticket.pk, by=agent_user, result="Replaced.")

    events = list(TicketEvent.objects.filter(ticket=hooked_ticket).values_list("kind", flat=True))
    assert "note" in events and "notified" in events
    expected = [k for k in events if k not in ("note", "notified")]
    rows = webhooks(hooked_ticket)
    assert [d.event for d in rows] == expected
    assert all(d.recipient == endpoint.url("/hook") and d.status == "pending" for d in rows)
    for d in rows:
        assert set(d.payload) == {"event", "ticket"}
        assert d.payload["event"] == d.event
        assert d.payload["ticket"]["id"] == hooked_ticket.pk
    # The ticket in the payload is the ticket as it was after that change.
    resolved = next(d for d in rows if d.event == "resolved")
    assert resolved.payload["ticket"]["state"] == "resolved"
    assert resolved.payload["ticket"]["result"] == "Replaced."
    # Nothing internal goes out in a webhook of a note: there is none.
    assert not any("internal only" in str(d.payload) for d in rows)


def test_no_webhook_without_the_channel_or_url(team, requester, clock, sent_tasks):
    no_channel = TicketTypeFactory(slug="quiet", team=team, channels=["portal"],
                                   webhook_url="http://127.0.0.1:9/hook")
    no_url = TicketTypeFactory(slug="nourl", team=team, channels=["portal", "webhook"])
    for ttype in (no_channel, no_url):
        ticket = TicketFactory(ticket_type=ttype, requester=requester)
        assert Delivery.objects.filter(ticket=ticket).count() == 0


def test_notifications_record_an_email_per_recipient_when_the_type_has_the_channel(
        hooked_ticket, agent_user, requester):
    ticket_assign_to(hooked_ticket, agent_user)
    ticket_resolve(ticket_id=hooked_ticket.pk, by=agent_user, result="Replaced.")

    [email] = emails(hooked_ticket)
    assert (email.recipient, email.event, email.status) == (requester.email, "resolved", "pending")
    notified = TicketEvent.objects.filter(ticket=hooked_ticket, kind="notified").last()
    assert notified.details["channels"] == ["portal", "email"]


def test_no_email_without_the_channel(team, requester, agent_user, clock, sent_tasks):
    portal_only = TicketTypeFactory(slug="portal-only", team=team, channels=["portal"])
    ticket = TicketFactory(ticket_type=portal_only, requester=requester, state="resolved",
                           assignee=agent_user)
    assert Delivery.objects.filter(ticket=ticket).count() == 0
    notified = TicketEvent.objects.filter(ticket=ticket, kind="notified").last()
    assert notified.details["channels"] == ["portal"]


def test_a_recipient_without_an_address_gets_no_email(hooked_type, agent_user, clock,
                                                      sent_tasks):
    from tests.factories import RequesterFactory

    silent = RequesterFactory(username="silent", email="")
    ticket = TicketFactory(ticket_type=hooked_type, requester=silent, state="resolved",
                           assignee=agent_user)
    assert emails(ticket) == []


def test_deliveries_are_nudged_after_commit_only(hooked_type, requester, clock, sent_tasks,
                                                 django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ticket = TicketFactory(ticket_type=hooked_type, requester=requester)
        assert not any(name == "tickets.delivery_send" for name, _ in sent_tasks)
    for callback in callbacks:
        callback()
    ids = {kwargs["delivery_id"] for name, kwargs in sent_tasks if name == "tickets.delivery_send"}
    assert ids == {d.pk for d in webhooks(ticket)} and ids


# -- sending ----------------------------------------------------------------------------


def test_a_webhook_is_posted_signed_with_event_and_ticket(hooked_ticket, endpoint):
    delivery = webhooks(hooked_ticket)[0]
    assert delivery.event == "created"

    assert delivery_send_task(delivery_id=delivery.pk) == "sent"

    [request] = endpoint.posts("/hook")
    assert request.signature_valid(SECRET)
    body = request.json()
    assert body == delivery.payload
    assert body["event"] == "created" and body["ticket"]["id"] == hooked_ticket.pk
    delivery = reload(delivery)
    assert delivery.status == "sent" and delivery.attempts == 1
    assert delivery.sent_at is not None and delivery.next_attempt_at is None
    assert delivery.last_error == ""
    # Sending again is a no-op: a redelivered task does not post twice.
    assert delivery_send(delivery_id=delivery.pk) is None
    assert len(endpoint.posts("/hook")) == 1


def test_an_email_goes_out_as_text_and_html_with_the_ticket_link(hooked_ticket, agent_user,
                                                                 requester, settings):
    ticket_assign_to(hooked_ticket, agent_user)
    ticket_resolve(ticket_id=hooked_ticket.pk, by=agent_user, result="Replaced the kettle.")
    [delivery] = emails(hooked_ticket)
    mail.outbox.clear()

    assert delivery_send(delivery_id=delivery.pk) == "sent"

    [message] = mail.outbox
    link = f"{settings.ORDERLY_BASE_URL}/t/{hooked_ticket.pk}/"
    assert message.to == [requester.email]
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert f"#{hooked_ticket.pk}" in message.subject and "Broken kettle" in message.subject
    assert link in message.body and "Replaced the kettle." in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert link in html and "Replaced the kettle." in html
    assert reload(delivery).status == "sent"


def test_retry_then_success(hooked_ticket, endpoint, clock, settings, sent_tasks,
                            django_capture_on_commit_callbacks):
    settings.ORDERLY_DELIVERY_BACKOFF_SECONDS = 10
    delivery = webhooks(hooked_ticket)[0]
    endpoint.answer(500)

    sent_tasks.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert delivery_send(delivery_id=delivery.pk) == "retry"
    delivery = reload(delivery)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.last_error == "HTTP 500"
    assert delivery.next_attempt_at == clock.now() + timedelta(seconds=10)
    assert sent_tasks == [("tickets.delivery_send", {"delivery_id": delivery.pk})]
    # Not due yet: a nudge that comes early does nothing.
    assert delivery_send(delivery_id=delivery.pk) is None

    clock.shift(seconds=10)
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    delivery = reload(delivery)
    assert delivery.status == "sent" and delivery.attempts == 2 and delivery.last_error == ""
    assert len(endpoint.posts("/hook")) == 2


def test_final_failure_after_the_configured_attempts_with_doubling_delays(
        hooked_ticket, endpoint, clock, settings):
    settings.ORDERLY_DELIVERY_ATTEMPTS = 4
    settings.ORDERLY_DELIVERY_BACKOFF_SECONDS = 7
    endpoint.always(502)
    delivery = webhooks(hooked_ticket)[0]

    delays = []
    outcomes = []
    for _ in range(4):
        outcomes.append(delivery_send(delivery_id=delivery.pk))
        row = reload(delivery)
        if row.next_attempt_at is not None:
            delays.append((row.next_attempt_at - clock.now()).total_seconds())
            clock.move_to(row.next_attempt_at)

    assert outcomes == ["retry", "retry", "retry", "failed"]
    assert delays == [7, 14, 28]
    delivery = reload(delivery)
    assert delivery.status == "failed" and delivery.attempts == 4
    assert delivery.last_error == "HTTP 502" and delivery.next_attempt_at is None
    assert delivery.sent_at is None
    assert len(endpoint.posts("/hook")) == 4
    # A failed delivery is never picked up again by itself.
    clock.shift(days=1)
    assert delivery.pk not in delivery_due_ids()
    assert delivery_send(delivery_id=delivery.pk) is None


def test_an_email_backend_failure_is_recorded(hooked_ticket, agent_user, clock, settings):
    settings.EMAIL_BACKEND = "tests.outside.test_deliveries.FailingEmailBackend"
    settings.ORDERLY_DELIVERY_ATTEMPTS = 2
    ticket_assign_to(hooked_ticket, agent_user)
    ticket_resolve(ticket_id=hooked_ticket.pk, by=agent_user, result="Replaced.")
    [delivery] = emails(hooked_ticket)

    assert delivery_send(delivery_id=delivery.pk) == "retry"
    clock.move_to(reload(delivery).next_attempt_at)
    assert delivery_send(delivery_id=delivery.pk) == "failed"

    delivery = reload(delivery)
    assert delivery.status == "failed"
    assert "ConnectionRefusedError" in delivery.last_error and "down" in delivery.last_error


def test_webhook_refused_by_the_allow_list_is_a_failed_attempt(hooked_ticket, endpoint, settings):
    settings.ORDERLY_OUTBOUND_ALLOWED_HOSTS = ["hooks.example.com"]
    delivery = webhooks(hooked_ticket)[0]

    assert delivery_send(delivery_id=delivery.pk) == "retry"

    assert endpoint.received == []
    assert reload(delivery).last_error.startswith("refused")


def test_webhook_redirects_are_not_followed(hooked_ticket, endpoint):
    endpoint.always(301, raw=b"", headers={"Location": endpoint.url("/elsewhere")})
    delivery = webhooks(hooked_ticket)[0]

    assert delivery_send(delivery_id=delivery.pk) == "retry"

    assert [r.path for r in endpoint.received] == ["/hook"]
    assert reload(delivery).last_error == "HTTP 301"


def test_the_sweep_picks_up_deliveries_whose_nudges_were_lost(hooked_ticket, endpoint, clock,
                                                             sent_tasks):
    # The nudges of these deliveries never ran (on_commit was not executed).
    pending = webhooks(hooked_ticket)
    assert pending and all(d.status == "pending" for d in pending)

    sent_tasks.clear()
    assert delivery_sweep_task() == len(pending)
    assert sorted(kw["delivery_id"] for _, kw in sent_tasks) == sorted(d.pk for d in pending)
    for name, kwargs in sent_tasks:
        assert name == "tickets.delivery_send"
        assert delivery_send_task(**kwargs) == "sent"
    assert all(reload(d).status == "sent" for d in pending)
    assert len(endpoint.posts("/hook")) == len(pending)
    # Nothing is left for the next sweep.
    sent_tasks.clear()
    assert delivery_sweep_task() == 0 and sent_tasks == []


def test_a_delivery_claimed_by_a_lost_worker_is_resent_after_its_lease(hooked_ticket, endpoint,
                                                                      clock, sent_tasks):
    from tickets.services.deliveries import _claim

    delivery = webhooks(hooked_ticket)[0]
    assert _claim(delivery.pk) is not None  # the worker died right after
    assert delivery.pk not in delivery_due_ids()
    assert delivery_send(delivery_id=delivery.pk) is None

    clock.move_to(reload(delivery).next_attempt_at)
    assert delivery.pk in delivery_due_ids()
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    assert reload(delivery).attempts == 2


# -- the API ----------------------------------------------------------------------------


@pytest.fixture
def failed_delivery(hooked_ticket, endpoint, clock, settings):
    settings.ORDERLY_DELIVERY_ATTEMPTS = 1
    endpoint.answer(500)
    delivery = webhooks(hooked_ticket)[0]
    assert delivery_send(delivery_id=delivery.pk) == "failed"
    return reload(delivery)


def test_supervisors_list_their_teams_deliveries(hooked_ticket, failed_delivery, supervisor):
    api = Api(supervisor)
    response = api.get("/deliveries/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "next"} and body["next"] is None
    ids = [row["id"] for row in body["results"]]
    assert ids == sorted((d.pk for d in Delivery.objects.filter(ticket=hooked_ticket)),
                         reverse=True)
    row = next(r for r in body["results"] if r["id"] == failed_delivery.pk)
    assert row == {
        "id": failed_delivery.pk, "ticket": hooked_ticket.pk, "channel": "webhook",
        "recipient": failed_delivery.recipient, "event": "created", "status": "failed",
        "attempts": 1, "last_error": "HTTP 500", "next_attempt_at": None,
        "created_at": failed_delivery.created_at.isoformat(), "sent_at": None,
    }
    # The payload and the secret are not shown.
    assert SECRET not in response.content.decode()


def test_deliveries_filter_by_status_and_ticket(hooked_ticket, failed_delivery, supervisor,
                                                hooked_type, requester):
    other = TicketFactory(ticket_type=hooked_type, requester=requester)
    api = Api(supervisor)

    failed = api.get("/deliveries/", {"status": "failed"}).json()["results"]
    assert [r["id"] for r in failed] == [failed_delivery.pk]
    pending = api.get("/deliveries/", {"status": "pending"}).json()["results"]
    assert failed_delivery.pk not in [r["id"] for r in pending]
    assert {r["status"] for r in pending} == {"pending"}
    mine = api.get("/deliveries/", {"ticket": other.pk}).json()["results"]
    assert mine and {r["ticket"] for r in mine} == {other.pk}
    both = api.get("/deliveries/", {"ticket": hooked_ticket.pk, "status": "failed"}).json()
    assert [r["id"] for r in both["results"]] == [failed_delivery.pk]


def test_deliveries_list_pages(hooked_ticket, supervisor, settings):
    settings.ORDERLY_PAGE_SIZE = 1
    total = Delivery.objects.filter(ticket=hooked_ticket).count()
    assert total >= 2
    api = Api(supervisor)
    seen, url = [], "/deliveries/"
    while url:
        body = api.get(url).json()
        seen += [r["id"] for r in body["results"]]
        url = body["next"] and body["next"].split("testserver", 1)[1]
    assert seen == sorted(seen, reverse=True) and len(seen) == total


def test_deliveries_of_other_teams_are_not_shown(hooked_ticket, failed_delivery,
                                                 outside_supervisor):
    api = Api(outside_supervisor)
    assert api.get("/deliveries/").json() == {"results": [], "next": None}
    assert api.get("/deliveries/", {"ticket": hooked_ticket.pk}).json() == {"results": [],
                                                                          "next": None}


@pytest.mark.parametrize("who", ["requester", "agent_user", "integration"])
def test_only_supervisors_see_deliveries(who, request, hooked_ticket):
    user = request.getfixturevalue(who)
    assert_error(Api(user).get("/deliveries/"), 403, "permission_denied")


def test_deliveries_need_authentication(db):
    assert_error(Api().get("/deliveries/"), 401, "not_authenticated")


@pytest.mark.parametrize("params,field", [
    ({"status": "lost"}, "status"),
    ({"ticket": "abc"}, "ticket"),
    ({"cursor": "%%%"}, "cursor"),
])
def test_bad_delivery_filters_are_invalid(params, field, supervisor):
    body = assert_error(Api(supervisor).get("/deliveries/", params), 400, "invalid")
    assert field in body["fields"]


def test_retry_sends_a_failed_delivery_again(failed_delivery, supervisor, endpoint, settings,
                                             sent_tasks, django_capture_on_commit_callbacks):
    api = Api(supervisor)
    sent_tasks.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/deliveries/{failed_delivery.pk}/retry/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == failed_delivery.pk
    assert body["status"] == "pending" and body["attempts"] == 0
    assert sent_tasks == [("tickets.delivery_send", {"delivery_id": failed_delivery.pk})]

    assert delivery_send_task(delivery_id=failed_delivery.pk) == "sent"
    delivery = reload(failed_delivery)
    assert delivery.status == "sent" and delivery.attempts == 1 and delivery.last_error == ""
    assert len(endpoint.posts("/hook")) == 2
    # The API shows it sent.
    [row] = [r for r in api.get("/deliveries/", {"status": "sent"}).json()["results"]
             if r["id"] == delivery.pk]
    assert row["sent_at"] is not None


def test_retry_of_a_delivery_that_did_not_fail_is_a_conflict(hooked_ticket, supervisor):
    pending = webhooks(hooked_ticket)[0]
    assert_error(Api(supervisor).post(f"/deliveries/{pending.pk}/retry/"), 409,
                 "invalid_transition")
    assert delivery_send(delivery_id=pending.pk) == "sent"
    assert_error(Api(supervisor).post(f"/deliveries/{pending.pk}/retry/"), 409,
                 "invalid_transition")
    assert reload(pending).status == "sent"


def test_retry_of_another_teams_delivery_is_not_found(failed_delivery, outside_supervisor):
    assert_error(Api(outside_supervisor).post(f"/deliveries/{failed_delivery.pk}/retry/"), 404,
                 "not_found")
    assert reload(failed_delivery).status == "failed"


def test_retry_of_no_such_delivery_is_not_found(supervisor):
    assert_error(Api(supervisor).post("/deliveries/999999/retry/"), 404, "not_found")


@pytest.mark.parametrize("who", ["requester", "agent_user", "integration"])
def test_only_supervisors_retry(who, request, failed_delivery):
    user = request.getfixturevalue(who)
    assert_error(Api(user).post(f"/deliveries/{failed_delivery.pk}/retry/"), 403,
                 "permission_denied")
    assert reload(failed_delivery).status == "failed"
