"""Deliveries for supervisors: list (their teams' tickets) and retry."""
from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from agents.models import User
from tickets.api.serializers import iso
from tickets.api.views import (
    ApiView,
    _decode_cursor,
    _encode_cursor,
    _next_url,
    _page_size,
    body_of,
    errors,
)
from tickets.delivery_models import Delivery
from tickets.errors import PermissionDenied, ValidationFailed
from tickets.models import Ticket
from tickets.selectors import ticket_visibility_q
from tickets.services.deliveries import delivery_retry


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ticket = serializers.IntegerField()
    channel = serializers.ChoiceField(choices=["email", "webhook"])
    recipient = serializers.CharField()
    event = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "sent", "failed"])
    attempts = serializers.IntegerField()
    last_error = serializers.CharField(allow_blank=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)


class DeliveryPageSerializer(serializers.Serializer):
    results = DeliverySerializer(many=True)
    next = serializers.URLField(allow_null=True)


def delivery_payload(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "ticket": delivery.ticket_id,
        "channel": delivery.channel,
        "recipient": delivery.recipient,
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "created_at": iso(delivery.created_at),
        "sent_at": iso(delivery.sent_at),
    }


def _supervisor(user: User) -> None:
    if not user.is_authenticated or user.role != User.Role.SUPERVISOR:
        raise PermissionDenied("Only supervisors see deliveries.")


class DeliveryListView(ApiView):
    @extend_schema(
        operation_id="deliveries_list",
        parameters=[
            OpenApiParameter("status", str, enum=["pending", "sent", "failed"]),
            OpenApiParameter("ticket", int),
            OpenApiParameter("cursor", str),
        ],
        responses={200: DeliveryPageSerializer, **errors(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        _supervisor(request.user)
        params = request.query_params
        visible = ticket_visibility_q(request.user)
        qs = Delivery.objects.filter(ticket__in=Ticket.objects.filter(visible).values("id"))
        fields: dict[str, list[str]] = {}
        if "status" in params:
            if params["status"] not in Delivery.Status.values:
                fields["status"] = ["Must be one of: pending, sent, failed."]
            else:
                qs = qs.filter(status=params["status"])
        if "ticket" in params:
            try:
                qs = qs.filter(ticket_id=int(params["ticket"]))
            except ValueError:
                fields["ticket"] = ["Must be a ticket id."]
        if fields:
            raise ValidationFailed(fields)
        raw = params.get("cursor")
        if raw:
            _, last = _decode_cursor(raw)
            qs = qs.filter(id__lt=last)
        size = _page_size()
        rows = list(qs.order_by("-id")[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        cursor = _encode_cursor([0, rows[-1].pk]) if more and rows else None
        return Response({"results": [delivery_payload(d) for d in rows],
                         "next": _next_url(request, cursor)})


class DeliveryRetryView(ApiView):
    @extend_schema(operation_id="deliveries_retry", request=None,
                   responses={200: DeliverySerializer, **errors(400, 401, 403, 404, 409, 413)})
    def post(self, request: Request, pk: int) -> Response:
        # Like every other POST: a body, if one is sent, must be a JSON object
        # (malformed JSON is 400 parse_error, not silently ignored).
        _supervisor(request.user)
        body_of(request)
        delivery = delivery_retry(delivery_id=pk, by=request.user)
        return Response(delivery_payload(delivery))
