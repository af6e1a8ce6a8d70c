"""The OpenAPI schema at /api/schema/ against what the server does: schemathesis
generates requests for every operation, sent through the WSGI app as each role
(and anonymously), and checks that no answer is a 5xx and every answer matches
the schema (status code documented, body of the documented shape).

Bounded (a few examples per operation and role) so it finishes in well under
three minutes; part of ``make test-all`` only (``postgres`` marker).
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.postgres

EXAMPLES_PER_OPERATION = 6


@pytest.fixture
def populated(db, clock, sent_tasks, team, requester, agent_user, supervisor, integration):
    """Enough of a world that many generated requests hit real rows."""
    from agents.models import User
    from rest_framework.authtoken.models import Token
    from tests.factories import TicketFactory, TicketTypeFactory
    from tickets.delivery_models import Delivery

    ttype = TicketTypeFactory(slug="refund", team=team, channels=["portal", "email"], fields=[
        {"name": "reference", "kind": "text", "required": True},
        {"name": "amount", "kind": "number"},
    ])
    TicketTypeFactory(slug="auto", team=team, callback_url="http://127.0.0.1:9/x")
    for state in (None, "assigned", "resolved", "closed", "cancelled"):
        TicketFactory(ticket_type=ttype, requester=requester, state=state, assignee=agent_user
                      if state in ("assigned", "resolved", "closed") else None,
                      data={"reference": "R-1"})
    ticket = TicketFactory(ticket_type=ttype, requester=requester, data={"reference": "R-2"})
    Delivery.objects.create(ticket=ticket, channel="webhook", recipient="http://127.0.0.1:9/",
                            event="created", status="failed", attempts=5, last_error="HTTP 500")
    admin = User.objects.create_superuser(username="root", password="Root-pass-7731",
                                          email="root@example.com", role=User.Role.SUPERVISOR)
    users = {"requester": requester, "agent": agent_user, "supervisor": supervisor,
             "integration": integration, "admin": admin}
    return {role: Token.objects.get_or_create(user=user)[0].key for role, user in users.items()}


@pytest.fixture
def keep_test_connection():
    """The WSGI app runs in the test's thread and transaction: like Django's
    test client, do not let request_started/finished close the connection (on
    PostgreSQL that would break the test's transaction)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_every_operation_conforms_to_the_schema_for_every_role(populated, keep_test_connection):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    from django.db import transaction

    from helpdesk.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, [op.label for op in operations]

    failures: list[str] = []
    tried = 0
    for role, token in [*populated.items(), ("anonymous", None)]:
        headers = {"Authorization": f"Token {token}"} if token else {}
        for operation in operations:
            seen: list[str] = []

            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                      derandomize=True, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def run(case):
                # A savepoint per request: a 500 that broke the transaction (on
                # PostgreSQL) is reported, and the next request still runs.
                savepoint = transaction.savepoint()
                response = case.call(headers=headers)
                if response.status_code >= 500:
                    transaction.savepoint_rollback(savepoint)
                else:
                    transaction.savepoint_commit(savepoint)
                seen.append(f"{case.method} {case.formatted_path} -> {response.status_code}")
                case.validate_response(response, checks=[not_a_server_error,
                                                          response_schema_conformance])

            try:
                run()
            except BaseException as exc:  # noqa: BLE001 - collect every finding (ExceptionGroups)
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                message = str(exc).strip().splitlines()
                failures.append(f"[{role}] {operation.label}: {seen[-1:] or ''} "
                                + " | ".join(message[:12]))
            tried += len(seen)
    assert tried > 0
    assert not failures, f"{len(failures)} operation/role pairs failed:\n" + "\n\n".join(failures)
