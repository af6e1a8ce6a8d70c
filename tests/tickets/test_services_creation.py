"""ticket_create (DESIGN.md 1.1, 1.3 first round, 2 idempotency)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tickets.errors import PermissionDenied, UnknownType, ValidationFailed
from tickets.models import IdempotencyKey, Ticket, TicketEvent, TicketState
from tickets.services.creation import ticket_create
from tests.factories import TicketTypeFactory, event_trail

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clock")]


@pytest.fixture
def form_type(team):
    """A type with one field of every kind."""
    return TicketTypeFactory(
        slug="booking-change", team=team, default_priority=3, time_limit_minutes=90,
        fields=[
            {"name": "reference", "kind": "text", "required": True},
            {"name": "note", "kind": "text", "max_length": 10},
            {"name": "amount", "kind": "number"},
            {"name": "travel_date", "kind": "date"},
            {"name": "cabin", "kind": "choice", "choices": ["economy", "business"]},
            {"name": "contact", "kind": "email"},
        ],
    )


def create(by, ticket_type, **kwargs):
    kwargs.setdefault("title", "Change my booking")
    kwargs.setdefault("data", {"reference": "ABC123"})
    return ticket_create(by=by, type_slug=ticket_type.slug, **kwargs)


def counts():
    return Ticket.objects.count(), TicketEvent.objects.count(), IdempotencyKey.objects.count()


def refused(by, ticket_type, **kwargs) -> dict[str, list[str]]:
    """Create must fail validation and store nothing; returns the field errors."""
    before = counts()
    with pytest.raises(ValidationFailed) as exc:
        create(by, ticket_type, **kwargs)
    assert counts() == before
    assert all(isinstance(m, list) and all(isinstance(s, str) for s in m)
               for m in exc.value.fields.values())
    return exc.value.fields


# -- success ----------------------------------------------------------------------


def test_create_pools_ticket_and_starts_first_round(requester, form_type, clock):
    ticket, created = create(requester, form_type, description="Please move it.")

    assert created is True
    assert ticket.state == TicketState.POOLED
    assert ticket.requester == requester and ticket.created_by == requester
    assert ticket.team_id == form_type.team_id
    assert ticket.round == 1
    assert ticket.sla_started_at == clock.now()
    assert ticket.due_at == clock.now() + timedelta(minutes=90)
    assert ticket.assignee is None and ticket.in_time is None and ticket.breached_at is None
    assert event_trail(ticket) == [("created", "", "pooled"), ("pooled", "", "pooled")]


def test_create_priority_defaults_to_the_types(requester, form_type):
    ticket, _ = create(requester, form_type)
    assert ticket.priority == 3


def test_create_takes_explicit_priority(requester, form_type):
    ticket, _ = create(requester, form_type, priority=5)
    assert ticket.priority == 5


@pytest.mark.parametrize("priority", [0, 6, "3", 2.0, True])
def test_create_refuses_priority_outside_1_to_5(requester, form_type, priority):
    assert "priority" in refused(requester, form_type, priority=priority)


def test_create_stores_cleaned_data(requester, form_type):
    ticket, _ = create(requester, form_type, data={
        "reference": "ABC123", "note": "x" * 10, "amount": "12", "travel_date": "2026-02-28",
        "cabin": "business", "contact": "a@example.com",
    })
    ticket.refresh_from_db()
    assert ticket.data == {
        "reference": "ABC123", "note": "x" * 10, "amount": 12, "travel_date": "2026-02-28",
        "cabin": "business", "contact": "a@example.com",
    }


def test_create_on_commit_nudges_the_dispatcher(
    requester, form_type, django_capture_on_commit_callbacks, sent_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        create(requester, form_type)
    assert [name for name, _ in sent_tasks] == ["tickets.dispatch"]


def test_dispatch_nudges_in_a_burst_are_folded_but_the_last_commit_is_followed(
    requester, form_type, django_capture_on_commit_callbacks, sent_tasks, settings, monkeypatch
):
    from tickets.services import common

    settings.ORDERLY_DISPATCH_NUDGE_COALESCE_MS = 100
    now = [1000.0]
    monkeypatch.setattr(common.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(common, "_last_dispatch_nudge", float("-inf"))
    monkeypatch.setattr(common, "_delayed_dispatch_at", float("-inf"))
    countdowns = []
    real_nudge = common.nudge
    monkeypatch.setattr(common, "nudge", lambda task, countdown=None, **kw: (
        countdowns.append(countdown), real_nudge(task, countdown=countdown, **kw)))
    for _ in range(3):  # within 100 ms: one now, one for the window's end
        with django_capture_on_commit_callbacks(execute=True):
            create(requester, form_type)
        now[0] += 0.02
    assert [name for name, _ in sent_tasks] == ["tickets.dispatch"] * 2
    assert countdowns[0] is None and countdowns[1] == pytest.approx(0.08)
    now[0] += 0.1  # the window has passed: the next creation nudges again, at once
    with django_capture_on_commit_callbacks(execute=True):
        create(requester, form_type)
    assert [name for name, _ in sent_tasks] == ["tickets.dispatch"] * 3
    assert countdowns[2] is None
    assert Ticket.objects.filter(state=TicketState.POOLED).count() == 4


def test_create_nudges_nothing_before_commit(
    requester, form_type, django_capture_on_commit_callbacks, sent_tasks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        create(requester, form_type)
    assert sent_tasks == []
    assert len(callbacks) == 1


def test_create_of_callback_type_waits_in_callback_without_a_round(
    requester, team, django_capture_on_commit_callbacks, sent_tasks
):
    ttype = TicketTypeFactory(team=team, callback=True)
    with django_capture_on_commit_callbacks(execute=True):
        ticket, _ = create(requester, ttype, data={})
    assert ticket.state == TicketState.CALLBACK
    assert ticket.due_at is None and ticket.sla_started_at is None and ticket.round == 0
    assert event_trail(ticket) == [
        ("created", "", "callback"), ("callback_started", "callback", "callback")
    ]
    assert sent_tasks == [("tickets.callback", {"ticket_id": ticket.pk})]


# -- title and description -----------------------------------------------------------


@pytest.mark.parametrize("title", ["x", "x" * 200])
def test_create_accepts_title_of_1_to_200_characters(requester, form_type, title):
    ticket, _ = create(requester, form_type, title=title)
    assert ticket.title == title


@pytest.mark.parametrize("title", ["", "   ", None, "x" * 201, 42])
def test_create_refuses_bad_title(requester, form_type, title):
    assert list(refused(requester, form_type, title=title)) == ["title"]


def test_create_refuses_description_over_20000(requester, form_type):
    assert list(refused(requester, form_type, description="x" * 20_001)) == ["description"]
    ticket, _ = create(requester, form_type, description="x" * 20_000)
    assert len(ticket.description) == 20_000


# -- the type's own fields --------------------------------------------------------------


def test_create_refuses_missing_required_field(requester, form_type):
    fields = refused(requester, form_type, data={})
    assert fields == {"data.reference": ["This field is required."]}


def test_create_refuses_blank_required_field(requester, form_type):
    assert "data.reference" in refused(requester, form_type, data={"reference": "  "})


def test_create_refuses_unknown_field(requester, form_type):
    fields = refused(requester, form_type, data={"reference": "A", "colour": "red"})
    assert list(fields) == ["data.colour"]


def test_create_refuses_data_that_is_not_an_object(requester, form_type):
    assert "data" in refused(requester, form_type, data=["reference"])


@pytest.mark.parametrize(
    "value, ok",
    [("x" * 1000, True), ("x" * 1001, False), (12, False)],
)
def test_text_field_max_length_defaults_to_1000(requester, team, value, ok):
    ttype = TicketTypeFactory(team=team, fields=[{"name": "story", "kind": "text"}])
    if ok:
        ticket, _ = create(requester, ttype, data={"story": value})
        assert ticket.data == {"story": value}
    else:
        assert list(refused(requester, ttype, data={"story": value})) == ["data.story"]


def test_text_field_own_max_length(requester, form_type):
    fields = refused(requester, form_type, data={"reference": "A", "note": "x" * 11})
    assert fields == {"data.note": ["At most 10 characters."]}


@pytest.mark.parametrize("value, stored", [(3, 3), (2.5, 2.5), ("7", 7), ("7.5", 7.5), (-1, -1)])
def test_number_field_accepts_numbers(requester, form_type, value, stored):
    ticket, _ = create(requester, form_type, data={"reference": "A", "amount": value})
    assert ticket.data["amount"] == stored


@pytest.mark.parametrize("value", ["abc", True, [1], {"n": 1}, "nan", "inf",
                                   float("nan"), float("inf")])
def test_number_field_refuses_non_numbers(requester, form_type, value):
    assert list(refused(requester, form_type, data={"reference": "A", "amount": value})) == [
        "data.amount"
    ]


@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-30", "tomorrow", 20260101])
def test_date_field_refuses_bad_dates(requester, form_type, value):
    fields = refused(requester, form_type, data={"reference": "A", "travel_date": value})
    assert fields == {"data.travel_date": ["Must be a date (YYYY-MM-DD)."]}


def test_date_field_accepts_iso_date(requester, form_type):
    ticket, _ = create(requester, form_type, data={"reference": "A", "travel_date": "2028-02-29"})
    assert ticket.data["travel_date"] == "2028-02-29"


@pytest.mark.parametrize("value", ["first", "Economy", 1])
def test_choice_field_refuses_values_outside_choices(requester, form_type, value):
    fields = refused(requester, form_type, data={"reference": "A", "cabin": value})
    assert list(fields) == ["data.cabin"]


@pytest.mark.parametrize("value", ["not-an-email", "a@", 5])
def test_email_field_refuses_bad_addresses(requester, form_type, value):
    fields = refused(requester, form_type, data={"reference": "A", "contact": value})
    assert list(fields) == ["data.contact"]


def test_create_reports_every_bad_field_at_once(requester, form_type):
    fields = refused(requester, form_type, title="", data={
        "amount": "x", "cabin": "first", "contact": "nope", "travel_date": "x", "extra": 1,
    })
    assert set(fields) == {
        "title", "data.reference", "data.amount", "data.cabin", "data.contact",
        "data.travel_date", "data.extra",
    }


def test_create_refuses_unknown_type_and_stores_nothing(requester, form_type):
    before = counts()
    with pytest.raises(UnknownType):
        ticket_create(by=requester, type_slug="no-such-type", title="x")
    assert counts() == before


def test_create_requires_a_type(requester):
    with pytest.raises(ValidationFailed) as exc:
        ticket_create(by=requester, type_slug="", title="x")
    assert list(exc.value.fields) == ["type"]


# -- who may create, and for whom -----------------------------------------------------------


def test_integration_creates_on_behalf_of_a_requester(integration, requester, form_type):
    ticket, _ = create(integration, form_type, requester_username=requester.username)
    assert ticket.requester == requester
    assert ticket.created_by == integration


@pytest.mark.parametrize("username", [None, "", "nobody"])
def test_integration_must_name_an_existing_requester(integration, form_type, username):
    assert list(refused(integration, form_type, requester_username=username)) == ["requester"]


def test_integration_may_not_name_a_non_requester(integration, agent_user, form_type):
    assert "requester" in refused(integration, form_type, requester_username=agent_user.username)


def test_requester_may_not_name_a_requester(requester, other_requester, form_type):
    fields = refused(requester, form_type, requester_username=other_requester.username)
    assert list(fields) == ["requester"]


@pytest.mark.parametrize("persona", ["agent_user", "supervisor"])
def test_staff_may_not_create(request, persona, form_type):
    before = counts()
    with pytest.raises(PermissionDenied):
        create(request.getfixturevalue(persona), form_type)
    assert counts() == before


# -- idempotency ------------------------------------------------------------------------------


def test_idempotency_key_returns_the_first_ticket(requester, form_type):
    first, created = create(requester, form_type, idempotency_key="k-1")
    before = counts()
    again, created_again = create(requester, form_type, idempotency_key="k-1", title="Other")

    assert created is True and created_again is False
    assert again.pk == first.pk and again.title == "Change my booking"
    assert counts() == before


def test_idempotency_key_is_per_user(requester, other_requester, form_type):
    first, _ = create(requester, form_type, idempotency_key="same")
    second, created = create(other_requester, form_type, idempotency_key="same")
    assert created is True and second.pk != first.pk


def test_different_idempotency_keys_create_two_tickets(requester, form_type):
    first, _ = create(requester, form_type, idempotency_key="a")
    second, _ = create(requester, form_type, idempotency_key="b")
    assert first.pk != second.pk


def test_refused_create_does_not_burn_the_idempotency_key(requester, form_type):
    refused(requester, form_type, data={}, idempotency_key="k")
    ticket, created = create(requester, form_type, idempotency_key="k")
    assert created is True and ticket.pk
