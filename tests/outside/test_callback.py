"""The callback flow (DESIGN.md 1.2, API.md "Webhooks out") against a real local
HTTP endpoint: what it is sent, how its answers move the ticket, and that no
ticket is ever left in ``callback``.

Attempts are driven by calling the services (``callback_attempt``) and the
sweep task function directly, and the clock is moved past ``callback_next_at``
instead of sleeping (STYLE.md 18).
"""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.factories import TicketFactory, TicketTypeFactory, fresh
from tests.outside.conftest import SECRET
from tickets.models import Notification, Ticket, TicketEvent, TicketState
from tickets.services.callback import callback_attempt, callback_due_ids

ATTEMPTS = 3
BACKOFF = 5


@pytest.fixture
def callback_type(team, endpoint):
    return TicketTypeFactory(
        slug="refund-check", team=team, time_limit_minutes=60,
        channels=["portal", "email"], callback_url=endpoint.url("/orderly"), secret=SECRET,
        callback_attempts=ATTEMPTS, callback_backoff_seconds=BACKOFF, callback_timeout_seconds=1,
    )


@pytest.fixture
def cb_ticket(clock, callback_type, requester, sent_tasks):
    ticket = TicketFactory(ticket_type=callback_type, requester=requester, title="Refund 42")
    assert ticket.state == TicketState.CALLBACK
    return ticket


def kinds(ticket: Ticket) -> list[str]:
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("id")
                .values_list("kind", flat=True))


def run_until_left_callback(ticket: Ticket, clock, max_rounds: int = 20) -> list[str | None]:
    """Attempt, and whenever nothing is due, move the clock to the next attempt."""
    outcomes = []
    for _ in range(max_rounds):
        current = fresh(ticket)
        if current.state != TicketState.CALLBACK:
            return outcomes
        if current.callback_next_at and current.callback_next_at > clock.now():
            clock.move_to(current.callback_next_at)
        outcomes.append(callback_attempt(ticket_id=ticket.pk))
    raise AssertionError(f"ticket still in callback after {max_rounds} rounds: {outcomes}")


# -- what the endpoint receives -------------------------------------------------------


def test_callback_posts_the_signed_ticket_as_json(cb_ticket, endpoint):
    endpoint.answer(200, {"outcome": "needs_agent"})

    callback_attempt(ticket_id=cb_ticket.pk)

    [request] = endpoint.received
    assert request.method == "POST" and request.path == "/orderly"
    assert request.headers["Content-Type"] == "application/json"
    assert request.signature_valid(SECRET)
    assert not request.signature_valid("another-secret")
    body = request.json()
    assert list(body) == ["ticket"]
    assert body["ticket"]["id"] == cb_ticket.pk
    assert body["ticket"]["state"] == "callback"
    assert body["ticket"]["type"] == "refund-check"
    assert body["ticket"]["title"] == "Refund 42"
    # The secret itself never travels.
    assert SECRET.encode() not in request.body


def test_a_ticket_whose_type_has_no_secret_is_sent_unsigned(cb_ticket, callback_type, endpoint):
    callback_type.secret = ""
    callback_type.save(update_fields=["secret"])
    endpoint.answer(200, {"outcome": "needs_agent"})

    callback_attempt(ticket_id=cb_ticket.pk)

    assert "X-Orderly-Signature" not in endpoint.received[0].headers


# -- the answers ---------------------------------------------------------------------


def test_resolved_answer_resolves_without_an_agent(cb_ticket, endpoint, requester):
    endpoint.answer(200, {"outcome": "resolved", "result": "Refund sent to your card."})

    assert callback_attempt(ticket_id=cb_ticket.pk) == "resolved"

    ticket = fresh(cb_ticket)
    assert ticket.state == TicketState.RESOLVED
    assert ticket.result == "Refund sent to your card."
    assert ticket.sla_started_at is None and ticket.due_at is None
    assert ticket.assignee_id is None and ticket.assigned_at is None
    assert ticket.in_time is True
    assert ticket.resolved_at is not None and ticket.feedback_due_at is not None
    assert ticket.callback_next_at is None and ticket.callback_attempts == 1
    assert kinds(ticket) == ["created", "callback_started", "callback_resolved", "notified"]
    event = TicketEvent.objects.get(ticket=ticket, kind="callback_resolved")
    assert event.from_state == "callback" and event.to_state == "resolved"
    assert event.details["result"] == "Refund sent to your card."
    [note] = Notification.objects.filter(ticket=ticket)
    assert note.user == requester and "Refund sent to your card." in note.message
    # The type has the email channel: the requester is told by email too.
    assert list(ticket.deliveries.values_list("channel", "recipient", "event")) == [
        ("email", requester.email, "resolved")]


def test_needs_agent_answer_pools_the_ticket_with_the_note(cb_ticket, endpoint, clock, requester,
                                                           sent_tasks):
    endpoint.answer(200, {"outcome": "needs_agent", "note": "Amount above the auto limit."})

    assert callback_attempt(ticket_id=cb_ticket.pk) == "needs_agent"

    ticket = fresh(cb_ticket)
    assert ticket.state == TicketState.POOLED
    assert ticket.sla_started_at == clock.now()
    assert ticket.due_at == clock.now() + timedelta(minutes=60)
    assert ticket.round == 1 and ticket.assignee_id is None
    assert kinds(ticket) == ["created", "callback_started", "callback_needs_agent", "pooled",
                             "notified"]
    event = TicketEvent.objects.get(ticket=ticket, kind="callback_needs_agent")
    assert event.details["note"] == "Amount above the auto limit."
    assert event.to_state == "pooled"
    [note] = Notification.objects.filter(ticket=ticket, user=requester)
    assert "Amount above the auto limit." in note.message


def test_needs_agent_without_a_note_is_fine(cb_ticket, endpoint):
    endpoint.answer(200, {"outcome": "needs_agent"})

    assert callback_attempt(ticket_id=cb_ticket.pk) == "needs_agent"

    assert fresh(cb_ticket).state == TicketState.POOLED
    assert TicketEvent.objects.get(ticket=cb_ticket, kind="callback_needs_agent").details["note"] == ""


FAILURES = {
    "server_error": dict(status=500, body={"error": "boom"}),
    "not_found": dict(status=404, body={"outcome": "resolved", "result": "ignored"}),
    "bad_json": dict(status=200, raw=b"{not json"),
    "json_not_an_object": dict(status=200, body=["resolved"]),
    "unknown_outcome": dict(status=200, body={"outcome": "maybe"}),
    "resolved_without_result": dict(status=200, body={"outcome": "resolved"}),
    "empty_body": dict(status=200, raw=b""),
    "huge_body": dict(status=200, raw=b'{"outcome": "resolved", "result": "' + b"x" * 100_000
                      + b'"}'),
}


@pytest.mark.parametrize("failure", FAILURES, ids=list(FAILURES))
def test_every_failed_attempt_counts_and_the_last_pools_with_callback_failed(
        failure, cb_ticket, endpoint, clock, sent_tasks, requester,
        django_capture_on_commit_callbacks):
    endpoint.always(**FAILURES[failure])
    start = clock.now()

    # Attempt 1 fails: the ticket waits for attempt 2 after the base delay.
    with django_capture_on_commit_callbacks(execute=True):
        assert callback_attempt(ticket_id=cb_ticket.pk) == "failed"
    ticket = fresh(cb_ticket)
    assert ticket.state == TicketState.CALLBACK and ticket.callback_attempts == 1
    assert ticket.callback_next_at == start + timedelta(seconds=BACKOFF)
    # Not due yet: nothing is sent.
    assert callback_attempt(ticket_id=cb_ticket.pk) is None
    assert len(endpoint.posts()) == 1
    # A nudge was scheduled for when it is due.
    assert ("tickets.callback", {"ticket_id": cb_ticket.pk}) in sent_tasks

    # Attempt 2 after 5 s fails; attempt 3 waits twice as long.
    clock.shift(seconds=BACKOFF)
    assert callback_attempt(ticket_id=cb_ticket.pk) == "failed"
    ticket = fresh(cb_ticket)
    assert ticket.callback_attempts == 2
    assert ticket.callback_next_at == clock.now() + timedelta(seconds=2 * BACKOFF)

    # Attempt 3 is the last: to the pool with callback_failed.
    clock.shift(seconds=2 * BACKOFF)
    assert callback_attempt(ticket_id=cb_ticket.pk) == "failed"
    ticket = fresh(cb_ticket)
    assert ticket.state == TicketState.POOLED
    assert ticket.callback_attempts == ATTEMPTS and ticket.callback_next_at is None
    assert ticket.due_at == clock.now() + timedelta(minutes=60)
    assert len(endpoint.posts()) == ATTEMPTS
    assert kinds(ticket) == ["created", "callback_started", "callback_failed", "pooled", "notified"]
    failed = TicketEvent.objects.get(ticket=ticket, kind="callback_failed")
    assert failed.details["attempt"] == ATTEMPTS and failed.details["error"]
    assert Notification.objects.filter(ticket=ticket, user=requester,
                                       kind="callback_failed").count() == 1
    # Nothing more happens however often the task is run again.
    clock.shift(hours=1)
    assert callback_attempt(ticket_id=cb_ticket.pk) is None
    assert len(endpoint.posts()) == ATTEMPTS


def test_a_timeout_is_a_failed_attempt(cb_ticket, endpoint, clock):
    # The endpoint answers after 2 s; the type's timeout is 1 s.
    endpoint.always(200, {"outcome": "resolved", "result": "too late"}, delay=2.0)

    outcomes = run_until_left_callback(cb_ticket, clock)

    assert outcomes == ["failed"] * ATTEMPTS
    ticket = fresh(cb_ticket)
    assert ticket.state == TicketState.POOLED and ticket.result is None
    failed = TicketEvent.objects.get(ticket=ticket, kind="callback_failed")
    assert "Timeout" in failed.details["error"]


def test_success_after_failures_resolves(cb_ticket, endpoint, clock):
    endpoint.answer(503)
    endpoint.answer(200, raw=b"<html>maintenance</html>")
    endpoint.answer(200, {"outcome": "resolved", "result": "Done on the third try."})

    assert run_until_left_callback(cb_ticket, clock) == ["failed", "failed", "resolved"]

    ticket = fresh(cb_ticket)
    assert ticket.state == TicketState.RESOLVED and ticket.in_time is True
    assert ticket.due_at is None and ticket.callback_attempts == 3
    assert kinds(ticket).count("callback_resolved") == 1
    assert "callback_failed" not in kinds(ticket)


# -- safety of the outgoing request ----------------------------------------------------


def test_redirects_are_not_followed(cb_ticket, endpoint, clock):
    endpoint.always(302, raw=b"", headers={"Location": endpoint.url("/elsewhere")})

    assert callback_attempt(ticket_id=cb_ticket.pk) == "failed"

    assert [r.path for r in endpoint.received] == ["/orderly"]
    assert fresh(cb_ticket).state == TicketState.CALLBACK
    run_until_left_callback(cb_ticket, clock)
    assert {r.path for r in endpoint.received} == {"/orderly"}
    assert "302" in TicketEvent.objects.get(ticket=cb_ticket, kind="callback_failed").details["error"]


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/orderly",
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/",
    "http:///no-host",
])
def test_non_http_urls_are_refused_without_a_request(url, cb_ticket, callback_type, endpoint,
                                                     clock):
    callback_type.callback_url = url
    callback_type.save(update_fields=["callback_url"])

    run_until_left_callback(cb_ticket, clock)

    assert endpoint.received == []
    error = TicketEvent.objects.get(ticket=cb_ticket, kind="callback_failed").details["error"]
    assert error.startswith("refused")
    assert fresh(cb_ticket).state == TicketState.POOLED


def test_allowed_hosts_are_enforced(cb_ticket, endpoint, clock, settings):
    settings.ORDERLY_OUTBOUND_ALLOWED_HOSTS = ["callbacks.example.com"]

    assert callback_attempt(ticket_id=cb_ticket.pk) == "failed"

    assert endpoint.received == []
    assert fresh(cb_ticket).callback_attempts == 1


def test_an_allowed_host_is_called(cb_ticket, endpoint, settings):
    settings.ORDERLY_OUTBOUND_ALLOWED_HOSTS = ["callbacks.example.com", "127.0.0.1"]
    endpoint.answer(200, {"outcome": "resolved", "result": "ok"})

    assert callback_attempt(ticket_id=cb_ticket.pk) == "resolved"
    assert len(endpoint.received) == 1


# -- nothing stuck, nothing twice -------------------------------------------------------


def test_an_attempt_is_not_run_for_a_ticket_that_left_callback(cb_ticket, endpoint, requester,
                                                               sent_tasks):
    from tickets.services.work import ticket_cancel

    ticket_cancel(ticket_id=cb_ticket.pk, by=requester)

    assert callback_attempt(ticket_id=cb_ticket.pk) is None
    assert endpoint.received == []
    assert fresh(cb_ticket).state == TicketState.CANCELLED


def test_a_stale_answer_does_not_move_the_ticket_twice(cb_ticket, endpoint, clock):
    """Two workers: the first one's answer comes back after the second one's."""
    from tickets.services.callback import callback_apply

    endpoint.answer(200, {"outcome": "needs_agent", "note": "second worker"})
    assert callback_attempt(ticket_id=cb_ticket.pk) == "needs_agent"

    # The first worker's late answer for the same attempt number, and for an older one.
    callback_apply(ticket_id=cb_ticket.pk, attempt=1, outcome="resolved", text="late", error="")
    callback_apply(ticket_id=cb_ticket.pk, attempt=0, outcome="failed", text="", error="late")

    ticket = fresh(cb_ticket)
    assert ticket.state == TicketState.POOLED and ticket.result is None
    assert [k for k in kinds(ticket) if k.startswith("callback_")] == [
        "callback_started", "callback_needs_agent"]


def test_a_lost_worker_is_redriven_by_the_sweep_after_its_lease(cb_ticket, endpoint, clock,
                                                                sent_tasks):
    """A worker claimed the attempt and died (kill -9) before applying it."""
    from tickets.services.callback import _claim
    from tickets.tasks import callback_sweep_task

    assert _claim(cb_ticket.pk) is not None
    assert fresh(cb_ticket).callback_attempts == 1
    # While the lease runs, neither the task nor the sweep starts another attempt.
    assert callback_attempt(ticket_id=cb_ticket.pk) is None
    sent_tasks.clear()
    assert callback_sweep_task() == 0 and sent_tasks == []

    clock.move_to(fresh(cb_ticket).callback_next_at)
    endpoint.answer(200, {"outcome": "resolved", "result": "after the crash"})
    assert callback_sweep_task() == 1
    assert sent_tasks == [("tickets.callback", {"ticket_id": cb_ticket.pk})]
    assert callback_attempt(**sent_tasks[0][1]) == "resolved"
    assert fresh(cb_ticket).state == TicketState.RESOLVED


def test_the_sweep_leaves_no_ticket_in_callback(clock, callback_type, requester, endpoint,
                                                sent_tasks):
    """A burst of callback tickets whose nudges were all lost (no worker ran
    them): the sweep alone, run as beat would, drives each one to its end."""
    from tickets.tasks import callback_sweep_task

    replies = {
        0: [dict(status=200, body={"outcome": "resolved", "result": "auto"})],
        1: [dict(status=200, body={"outcome": "needs_agent", "note": "n"})],
        2: [dict(status=500)] * ATTEMPTS,
    }
    tickets = [TicketFactory(ticket_type=callback_type, requester=requester, title=f"t{i}")
               for i in range(9)]
    # The endpoint answers per ticket: route each request by the ticket id it carries.
    by_ticket = {t.pk: [dict(r) for r in replies[i % 3]] for i, t in enumerate(tickets)}
    endpoint.always(500)

    for _ in range(40):
        due = callback_due_ids()
        if not Ticket.objects.filter(state=TicketState.CALLBACK).exists():
            break
        if not due:
            clock.shift(seconds=1)
            continue
        sent_tasks.clear()
        assert callback_sweep_task() == len(due)
        for name, kwargs in sent_tasks:
            assert name == "tickets.callback"
            script = by_ticket[kwargs["ticket_id"]]
            reply = script.pop(0) if len(script) > 1 else script[0]
            endpoint.answer(**reply)
            callback_attempt(**kwargs)

    assert not Ticket.objects.filter(state=TicketState.CALLBACK).exists()
    for i, ticket in enumerate(tickets):
        trail = kinds(ticket)
        outcomes = [k for k in trail if k in ("callback_resolved", "callback_needs_agent",
                                              "callback_failed")]
        expected = ["callback_resolved", "callback_needs_agent", "callback_failed"][i % 3]
        assert outcomes == [expected], (ticket.pk, trail)
        assert trail.count("pooled") == (0 if i % 3 == 0 else 1)
        assert fresh(ticket).state == (TicketState.RESOLVED if i % 3 == 0 else TicketState.POOLED)
    # Every request the endpoint received carried a valid signature.
    assert endpoint.received and all(r.signature_valid() for r in endpoint.received)
    assert len(endpoint.received) == 3 * (1 + 1 + ATTEMPTS)
