"""The v1 API: thin views that read the body, call a service, render the answer."""
from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import authenticate
from django.db import connection, transaction
from django.db.models import DateTimeField, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, status
from rest_framework.authtoken.models import Token
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.models import Agent, User
from agents.services import agent_set_status, team_create, user_provision
from feedback.services import ticket_feedback
from tickets.api import serializers as s
from tickets.api.throttles import CreateThrottle, SignInThrottle
from tickets.errors import (
    InvalidTransition,
    NotAssignee,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tickets.models import OPEN_STATES, Ticket, TicketState
from tickets.selectors import (
    notification_list,
    ticket_events_for_user,
    ticket_get_for_user,
    ticket_list_qs,
    ticket_type_list,
)
from tickets.services import dispatch, work
from tickets.services.creation import ticket_create
from tickets.services.notifications import notification_mark_all_read, notification_mark_read
from tickets.services.types import ticket_type_create, ticket_type_update

ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Invalid input"),
    401: OpenApiResponse(s.ErrorSerializer, description="Not authenticated"),
    403: OpenApiResponse(s.ErrorSerializer, description="Not allowed for this role"),
    404: OpenApiResponse(s.ErrorSerializer, description="Not found"),
    409: OpenApiResponse(s.ErrorSerializer, description="Not allowed in this state"),
    413: OpenApiResponse(s.ErrorSerializer, description="Body too large"),
    429: OpenApiResponse(s.ErrorSerializer, description="Throttled"),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERRORS[code] for code in codes}


class AnyBodyAsJSONParser(BaseParser):
    """Reads a body of any other media type as JSON.

    The API speaks JSON only; a body it cannot read as JSON (a form, plain
    text) is the client's malformed JSON: 400 ``parse_error``, the code
    API.md lists, rather than a 415 it does not.
    """

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return JSONParser().parse(stream, "application/json", parser_context)


NUL_MESSAGE = "Null characters are not allowed."


def _has_nul(value: Any) -> bool:
    """PostgreSQL text cannot hold U+0000: a lookup or insert with one is a
    DataError (a 500), so such input is refused up front as bad input."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class ApiView(APIView):
    """Every v1 view: JSON bodies whatever the Content-Type says."""

    parser_classes = [JSONParser, AnyBodyAsJSONParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        bad = sorted(key for key, values in request.query_params.lists()
                     if _has_nul(key) or _has_nul(values))
        if bad:
            raise ValidationFailed({key.replace("\x00", "") or "detail": [NUL_MESSAGE]
                                    for key in bad}, NUL_MESSAGE)


def body_of(request: Request) -> dict[str, Any]:
    """The JSON object of the request (an empty body reads as {})."""
    data = request.data
    if isinstance(data, dict):
        if _has_nul(data):
            raise ValidationFailed({"detail": [NUL_MESSAGE]}, NUL_MESSAGE)
        return data
    if hasattr(data, "dict") and not data:
        return {}
    raise ValidationFailed({"detail": ["Expected a JSON object."]}, "Expected a JSON object.")


def is_admin(user: User) -> bool:
    return bool(user.is_authenticated and user.is_staff and user.is_superuser)


def internal_view(user: User) -> bool:
    return user.role in (User.Role.AGENT, User.Role.SUPERVISOR)


# -- keyset ("cursor") pagination ----------------------------------------------------

_FAR_FUTURE = timezone.datetime(9999, 1, 1, tzinfo=timezone.get_fixed_timezone(0))


def _encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(raw: str) -> list[Any]:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed({"cursor": ["Invalid cursor."]}) from None
    if (not isinstance(values, list) or len(values) != 2 or isinstance(values[1], bool)
            or not isinstance(values[1], int) or not 0 <= values[1] < 2**63):
        raise ValidationFailed({"cursor": ["Invalid cursor."]})
    return values


def _page_size() -> int:
    from django.conf import settings

    return settings.ORDERLY_PAGE_SIZE


def _next_url(request: Request, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    params = request.query_params.copy()
    params["cursor"] = cursor
    return request.build_absolute_uri(request.path) + "?" + urlencode(params, doseq=True)


def paginate_tickets(request: Request, qs, ordering: str):
    """Keyset pagination over a total order that ends with the id."""
    size = _page_size()
    raw = request.query_params.get("cursor")
    if ordering == "due_at":
        qs = qs.annotate(_k=Coalesce("due_at", Value(_FAR_FUTURE, output_field=DateTimeField())))
        qs = qs.order_by("_k", "id")
        if raw:
            k, last = _decode_cursor(raw)
            try:
                k_dt = timezone.datetime.fromisoformat(k)
            except (TypeError, ValueError):
                raise ValidationFailed({"cursor": ["Invalid cursor."]}) from None
            if timezone.is_naive(k_dt):
                raise ValidationFailed({"cursor": ["Invalid cursor."]})
            qs = qs.filter(Q(_k__gt=k_dt) | Q(_k=k_dt, id__gt=last))
        key = lambda t: (t._k.isoformat(), t.pk)  # noqa: E731
    elif ordering == "-priority":
        qs = qs.order_by("-priority", "-id")
        if raw:
            k, last = _decode_cursor(raw)
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= 5:
                raise ValidationFailed({"cursor": ["Invalid cursor."]})
            qs = qs.filter(Q(priority__lt=k) | Q(priority=k, id__lt=last))
        key = lambda t: (t.priority, t.pk)  # noqa: E731
    else:
        qs = qs.order_by("-id")
        if raw:
            _, last = _decode_cursor(raw)
            qs = qs.filter(id__lt=last)
        key = lambda t: (0, t.pk)  # noqa: E731
    rows = list(qs[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    cursor = _encode_cursor(list(key(rows[-1]))) if more and rows else None
    return rows, _next_url(request, cursor)


# -- sign-in and health ---------------------------------------------------------------


class TokenView(ApiView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [SignInThrottle]

    @extend_schema(operation_id="auth_token_create", request=s.TokenRequestSerializer,
                   responses={200: s.TokenSerializer, **errors(400)},
                   auth=[])
    def post(self, request: Request) -> Response:
        body = body_of(request)
        username, password = body.get("username"), body.get("password")
        fields = {}
        if not isinstance(username, str) or not username:
            fields["username"] = ["This field is required."]
        if not isinstance(password, str) or not password:
            fields["password"] = ["This field is required."]
        if fields:
            raise ValidationFailed(fields)
        user = authenticate(request._request, username=username, password=password)
        if user is None or not user.is_active:
            raise ValidationFailed({"detail": ["Unable to sign in with these credentials."]},
                                   "Unable to sign in with these credentials.")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})


def broker_ok() -> bool:
    from helpdesk.celery import app

    url = app.conf.broker_url or ""
    if url.startswith("filesystem://"):
        import os

        options = app.conf.broker_transport_options or {}
        folder = options.get("data_folder_in")
        return bool(folder) and os.path.isdir(folder) and os.access(folder, os.W_OK)
    if url.startswith("memory://"):
        return True
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:  # noqa: BLE001 - any broker failure means "down"
        return False


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except Exception:  # noqa: BLE001 - any database failure means "down"
        return False


class HealthView(ApiView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(operation_id="health_retrieve",
                   responses={200: s.HealthSerializer, 503: s.HealthSerializer}, auth=[])
    def get(self, request: Request) -> Response:
        db, broker = database_ok(), broker_ok()
        body = {"database": "ok" if db else "down", "broker": "ok" if broker else "down"}
        return Response(body, status=200 if db and broker else 503)


# -- provisioning -----------------------------------------------------------------------


def require_admin(user: User) -> None:
    if not is_admin(user):
        raise PermissionDenied("Only admin users may provision.")


class TeamCreateView(ApiView):
    @extend_schema(operation_id="teams_create", request=s.TeamSerializer,
                   responses={201: s.TeamSerializer, **errors(400, 401, 403)})
    def post(self, request: Request) -> Response:
        require_admin(request.user)
        team = team_create(name=body_of(request).get("name"))
        return Response({"name": team.name}, status=status.HTTP_201_CREATED)


class UserCreateView(ApiView):
    @extend_schema(operation_id="users_create", request=s.UserCreateSerializer,
                   responses={201: s.UserCreatedSerializer, **errors(400, 401, 403)})
    def post(self, request: Request) -> Response:
        require_admin(request.user)
        body = body_of(request)
        user, token = user_provision(
            username=body.get("username"),
            password=body.get("password"),
            email=body.get("email", ""),
            role=body.get("role", "requester"),
            teams=body.get("teams"),
            capacity=body.get("capacity"),
        )
        return Response({"username": user.username, "role": user.role, "token": token},
                        status=status.HTTP_201_CREATED)


def _type_values(request: Request, partial: bool) -> dict[str, Any]:
    serializer = s.TicketTypeWriteSerializer(data=body_of(request), partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class TicketTypeListView(ApiView):
    @extend_schema(operation_id="ticket_types_list",
                   responses={200: s.TicketTypeSerializer(many=True), **errors(401)})
    def get(self, request: Request) -> Response:
        return Response([s.ticket_type_payload(t) for t in ticket_type_list()])

    @extend_schema(operation_id="ticket_types_create", request=s.TicketTypeWriteSerializer,
                   responses={201: s.TicketTypeSerializer, **errors(400, 401, 403)})
    def post(self, request: Request) -> Response:
        require_admin(request.user)
        ticket_type = ticket_type_create(values=_type_values(request, partial=False))
        ticket_type = ticket_type_list().get(pk=ticket_type.pk)
        return Response(s.ticket_type_payload(ticket_type), status=status.HTTP_201_CREATED)


class TicketTypeDetailView(ApiView):
    @extend_schema(operation_id="ticket_types_retrieve",
                   responses={200: s.TicketTypeSerializer, **errors(401, 404)})
    def get(self, request: Request, slug: str) -> Response:
        ticket_type = ticket_type_list().filter(slug=slug).first()
        if ticket_type is None:
            raise NotFound("No ticket type with this slug.")
        return Response(s.ticket_type_payload(ticket_type))

    @extend_schema(operation_id="ticket_types_partial_update", request=s.TicketTypeWriteSerializer,
                   responses={200: s.TicketTypeSerializer, **errors(400, 401, 403, 404)})
    def patch(self, request: Request, slug: str) -> Response:
        require_admin(request.user)
        ticket_type_update(slug=slug, values=_type_values(request, partial=True))
        return Response(s.ticket_type_payload(ticket_type_list().get(slug=slug)))


# -- tickets --------------------------------------------------------------------------------

BOOL_WORDS = {"true": True, "1": True, "false": False, "0": False}


def _filtered(request: Request):
    params = request.query_params
    qs = ticket_list_qs(user=request.user)
    fields: dict[str, list[str]] = {}
    if "state" in params:
        if params["state"] not in TicketState.values:
            fields["state"] = [f"Must be one of: {', '.join(TicketState.values)}."]
        else:
            qs = qs.filter(state=params["state"])
    if "type" in params:
        qs = qs.filter(ticket_type__slug=params["type"])
    if "assignee" in params:
        qs = qs.filter(assignee__username=params["assignee"])
    if "priority" in params:
        try:
            priority = int(params["priority"])
            if not 1 <= priority <= 5:
                raise ValueError
            qs = qs.filter(priority=priority)
        except ValueError:
            fields["priority"] = ["Must be a whole number from 1 to 5."]
    if "breached" in params:
        flag = BOOL_WORDS.get(params["breached"].lower())
        if flag is None:
            fields["breached"] = ["Must be true or false."]
        else:
            qs = qs.filter(breached_at__isnull=not flag)
    ordering = params.get("ordering", "-id")
    if ordering not in ("-id", "due_at", "-priority"):
        fields["ordering"] = ["Must be one of: due_at, -priority."]
    if fields:
        raise ValidationFailed(fields)
    return qs, ordering


def render_ticket(request: Request, ticket: Ticket, *, events: bool = False) -> dict[str, Any]:
    payload = s.ticket_payload(ticket, internal=internal_view(request.user))
    if events:
        payload["events"] = [s.event_payload(e)
                             for e in ticket_events_for_user(user=request.user, ticket=ticket)]
    return payload


def reload(request: Request, ticket_id: int, *, events: bool = False) -> Response:
    ticket = ticket_get_for_user(user=request.user, ticket_id=ticket_id)
    return Response(render_ticket(request, ticket, events=events))


def _unused_related_columns() -> tuple[str, ...]:
    """Columns of the joined rows a list page never shows: a page builds 50
    tickets with up to five related objects each, and every column is a
    conversion and an attribute per object (the answer reads only the
    usernames, the type's slug and the team's name)."""
    keep = {"requester": {"id", "username"}, "assignee": {"id", "username"},
            "locked_by": {"id", "username"}, "ticket_type": {"id", "slug", "team"},
            "team": {"id", "name"}}
    return tuple(
        f"{relation}__{field.name}"
        for relation, kept in keep.items()
        for field in Ticket._meta.get_field(relation).related_model._meta.concrete_fields
        if field.name not in kept
    )


_LIST_UNUSED = _unused_related_columns()


class TicketListView(ApiView):
    throttle_classes = [CreateThrottle]

    @extend_schema(
        operation_id="tickets_list",
        parameters=[
            OpenApiParameter("state", str, enum=TicketState.values),
            OpenApiParameter("type", str),
            OpenApiParameter("assignee", str),
            OpenApiParameter("priority", int),
            OpenApiParameter("breached", bool),
            OpenApiParameter("ordering", str, enum=["-id", "due_at", "-priority"]),
            OpenApiParameter("cursor", str),
        ],
        responses={200: s.TicketPageSerializer, **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        qs, ordering = _filtered(request)
        rows, next_url = paginate_tickets(request, qs.defer(*_LIST_UNUSED), ordering)
        internal = internal_view(request.user)
        now = timezone.now()
        return Response({"results": [s.ticket_payload(t, internal=internal, now=now) for t in rows],
                         "next": next_url})

    @extend_schema(
        operation_id="tickets_create",
        request=s.TicketCreateSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={201: s.TicketSerializer, 200: s.TicketSerializer,
                   **errors(400, 401, 403, 413, 429)},
    )
    def post(self, request: Request) -> Response:
        body = body_of(request)
        key = request.headers.get("Idempotency-Key") or None
        if key is not None and len(key) > 255:
            raise ValidationFailed({"Idempotency-Key": ["At most 255 characters."]})
        ticket, created = ticket_create(
            by=request.user,
            type_slug=body.get("type"),
            title=body.get("title"),
            description=body.get("description", ""),
            data=body.get("data"),
            priority=body.get("priority"),
            requester_username=body.get("requester"),
            idempotency_key=key,
        )
        if not created:
            # A replay (idempotency key): the ticket as it is now.
            ticket = ticket_get_for_user(user=request.user, ticket_id=ticket.pk)
            return Response(render_ticket(request, ticket), status=status.HTTP_200_OK)
        # The new ticket is rendered from the objects the service wrote (its
        # type, team and requester are loaded; no assignee, lock or excluded
        # agents yet): the same answer as a re-read, without one.
        return Response(render_ticket(request, ticket), status=status.HTTP_201_CREATED)


class TicketDetailView(ApiView):
    @extend_schema(operation_id="tickets_retrieve",
                   responses={200: s.TicketDetailSerializer, **errors(401, 404)})
    def get(self, request: Request, pk: int) -> Response:
        # The ticket row and its events are two queries: on PostgreSQL read
        # them in one REPEATABLE READ snapshot so a change committed between
        # them can't show a state its events contradict. (On SQLite an
        # atomic block would take the write lock; its reads stay as they are.)
        if connection.vendor != "postgresql" or connection.in_atomic_block:
            return reload(request, pk, events=True)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            return reload(request, pk, events=True)


def _action(request_serializer, operation_id: str, ok=s.TicketSerializer,
            codes=(400, 401, 403, 404, 409)):
    return extend_schema(operation_id=operation_id, request=request_serializer,
                         responses={200: ok, **errors(*codes)})


AGENT, SUPERVISOR, REQUESTER = User.Role.AGENT, User.Role.SUPERVISOR, User.Role.REQUESTER


def checked(request: Request, pk: int, call, *, roles: tuple[str, ...], action: str,
            assignee: bool = False, states: tuple[str, ...] | None = None):
    """Run ``call`` (the service); when it refuses the body, answer instead the
    first check API.md puts before it: role (403), visibility (404), assignee
    (409 ``not_assignee``), state (409 ``invalid_transition``).

    The services check the body as soon as the role is known (so that a bad
    body never takes a row lock); this puts the answer back in the order of
    the contract without a second read on the successful path.
    """
    try:
        return call()
    except ValidationFailed:
        user = request.user
        if user.role not in roles:
            raise PermissionDenied() from None
        ticket = ticket_get_for_user(user=user, ticket_id=pk)
        if assignee and user.role == AGENT and ticket.assignee_id != user.pk:
            raise NotAssignee() from None
        if states is not None and ticket.state not in states:
            raise InvalidTransition(ticket.state, action) from None
        raise


class LockView(ApiView):
    @_action(s.LockSerializer, "tickets_lock")
    def post(self, request: Request, pk: int) -> Response:
        checked(request, pk, lambda: work.ticket_lock_acquire(
            ticket_id=pk, by=request.user, minutes=body_of(request).get("minutes")),
            roles=(AGENT,), action="lock", assignee=True, states=(TicketState.ASSIGNED,))
        return reload(request, pk)


class UnlockView(ApiView):
    @_action(s.EmptySerializer, "tickets_unlock")
    def post(self, request: Request, pk: int) -> Response:
        def call():
            body_of(request)
            return work.ticket_unlock(ticket_id=pk, by=request.user)

        checked(request, pk, call, roles=(AGENT, SUPERVISOR), action="unlock", assignee=True)
        return reload(request, pk)


class HandoverView(ApiView):
    @_action(s.ReasonSerializer, "tickets_handover")
    def post(self, request: Request, pk: int) -> Response:
        checked(request, pk, lambda: work.ticket_handover(
            ticket_id=pk, by=request.user, reason=body_of(request).get("reason")),
            roles=(AGENT,), action="hand over", assignee=True, states=(TicketState.ASSIGNED,))
        return reload(request, pk)


class ResolveView(ApiView):
    @_action(s.ResultSerializer, "tickets_resolve")
    def post(self, request: Request, pk: int) -> Response:
        checked(request, pk, lambda: work.ticket_resolve(
            ticket_id=pk, by=request.user, result=body_of(request).get("result")),
            roles=(AGENT,), action="resolve", assignee=True, states=(TicketState.ASSIGNED,))
        return reload(request, pk)


class FeedbackView(ApiView):
    @_action(s.FeedbackSerializer, "tickets_feedback")
    def post(self, request: Request, pk: int) -> Response:
        def call():
            body = body_of(request)
            return ticket_feedback(ticket_id=pk, by=request.user, accepted=body.get("accepted"),
                                   rating=body.get("rating"), comment=body.get("comment"))

        checked(request, pk, call, roles=(REQUESTER,), action="give feedback on",
                states=(TicketState.RESOLVED,))
        return reload(request, pk)


class CancelView(ApiView):
    @_action(s.OptionalReasonSerializer, "tickets_cancel")
    def post(self, request: Request, pk: int) -> Response:
        checked(request, pk, lambda: work.ticket_cancel(
            ticket_id=pk, by=request.user, reason=body_of(request).get("reason")),
            roles=(REQUESTER, SUPERVISOR), action="cancel", states=tuple(OPEN_STATES))
        return reload(request, pk)


class AssignView(ApiView):
    @_action(s.AssignSerializer, "tickets_assign")
    def post(self, request: Request, pk: int) -> Response:
        def call():
            body = body_of(request)
            force = body.get("force", False)
            if not isinstance(force, bool):
                raise ValidationFailed({"force": ["Must be true or false."]})
            return dispatch.ticket_assign(ticket_id=pk, agent_username=body.get("agent"),
                                          by=request.user, force=force)

        checked(request, pk, call, roles=(SUPERVISOR,), action="assign",
                states=(TicketState.POOLED, TicketState.ASSIGNED))
        return reload(request, pk)


class NoteView(ApiView):
    @extend_schema(operation_id="tickets_notes_create", request=s.BodySerializer,
                   responses={201: s.EventSerializer, **errors(400, 401, 403, 404)})
    def post(self, request: Request, pk: int) -> Response:
        event = checked(request, pk, lambda: work.ticket_note(
            ticket_id=pk, by=request.user, body=body_of(request).get("body")),
            roles=(AGENT, SUPERVISOR), action="add a note to")
        return Response(s.event_payload(event), status=status.HTTP_201_CREATED)


class CommentView(ApiView):
    @extend_schema(operation_id="tickets_comments_create", request=s.BodySerializer,
                   responses={201: s.EventSerializer, **errors(400, 401, 403, 404, 409)})
    def post(self, request: Request, pk: int) -> Response:
        event = checked(request, pk, lambda: work.ticket_comment(
            ticket_id=pk, by=request.user, body=body_of(request).get("body")),
            roles=(REQUESTER, AGENT, SUPERVISOR), action="comment on",
            states=tuple(OPEN_STATES))
        return Response(s.event_payload(event), status=status.HTTP_201_CREATED)


# -- agents ------------------------------------------------------------------------------


def agent_me_payload(user: User, agent: Agent) -> dict[str, Any]:
    return {
        "username": user.username,
        "status": agent.status,
        "capacity": agent.capacity,
        "active": agent.active_count,
        "teams": sorted(user.teams.values_list("name", flat=True)),
    }


class AgentMeView(ApiView):
    def _agent(self, user: User) -> Agent:
        if user.role != User.Role.AGENT:
            raise PermissionDenied("Only agents have an availability.")
        agent, _ = Agent.objects.get_or_create(user=user)
        return agent

    @extend_schema(operation_id="agents_me_retrieve",
                   responses={200: s.AgentMeSerializer, **errors(401, 403)})
    def get(self, request: Request) -> Response:
        return Response(agent_me_payload(request.user, self._agent(request.user)))

    @extend_schema(operation_id="agents_me_partial_update", request=s.AgentStatusSerializer,
                   responses={200: s.AgentMeSerializer, **errors(400, 401, 403)})
    def patch(self, request: Request) -> Response:
        self._agent(request.user)
        agent = agent_set_status(by=request.user, status=body_of(request).get("status"))
        return Response(agent_me_payload(request.user, agent))


class PullNextView(ApiView):
    @extend_schema(operation_id="agents_me_next", request=None,
                   responses={200: s.TicketSerializer,
                              204: OpenApiResponse(description="Nothing eligible"),
                              **errors(401, 403, 409)})
    def post(self, request: Request) -> Response:
        ticket = dispatch.ticket_pull_next(by=request.user)
        if ticket is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return reload(request, ticket.pk)


# -- notifications ------------------------------------------------------------------------


class NotificationListView(ApiView):
    @extend_schema(operation_id="notifications_list",
                   parameters=[OpenApiParameter("unread", bool), OpenApiParameter("cursor", str)],
                   responses={200: s.NotificationPageSerializer, **errors(400, 401)})
    def get(self, request: Request) -> Response:
        unread = None
        if "unread" in request.query_params:
            unread = BOOL_WORDS.get(request.query_params["unread"].lower())
            if unread is None:
                raise ValidationFailed({"unread": ["Must be true or false."]})
        qs = notification_list(user=request.user, unread=unread)
        raw = request.query_params.get("cursor")
        if raw:
            _, last = _decode_cursor(raw)
            qs = qs.filter(id__lt=last)
        size = _page_size()
        rows = list(qs[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        cursor = _encode_cursor([0, rows[-1].pk]) if more and rows else None
        return Response({"results": [s.notification_payload(n) for n in rows],
                         "next": _next_url(request, cursor)})


class NotificationReadView(ApiView):
    @extend_schema(operation_id="notifications_read", request=None,
                   responses={204: OpenApiResponse(description="Marked read"),
                              **errors(401, 404)})
    def post(self, request: Request, pk: int) -> Response:
        notification_mark_read(user=request.user, notification_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class NotificationReadAllView(ApiView):
    @extend_schema(operation_id="notifications_read_all", request=None,
                   responses={204: OpenApiResponse(description="All marked read"),
                              **errors(401)})
    def post(self, request: Request) -> Response:
        notification_mark_all_read(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def api_not_found(request, rest: str = ""):
    """Unknown paths under /api/ answer in the API's error format."""
    from django.http import JsonResponse

    return JsonResponse({"code": "not_found", "detail": "No such endpoint."}, status=404)
