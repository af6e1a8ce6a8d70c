"""``GET /api/v1/kpi/`` (API.md "KPIs"): supervisors' KPI rows, JSON or CSV.

The definitions live in ``agents/kpi.py``; this view only validates the query,
picks the viewer's scope and renders.
"""
from __future__ import annotations

import csv
import io
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import kpi
from agents.models import User
from tickets.api.serializers import ErrorSerializer
from tickets.errors import PermissionDenied, ValidationFailed

FORMATS = ("json", "csv")


class KpiRowSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="Username, team name or type slug.")
    assigned = serializers.IntegerField()
    resolved = serializers.IntegerField()
    in_time_rate = serializers.FloatField(allow_null=True, min_value=0, max_value=1)
    breaches = serializers.IntegerField()
    handovers = serializers.IntegerField()
    reopen_rate = serializers.FloatField(allow_null=True, min_value=0, max_value=1)
    mean_resolve_minutes = serializers.FloatField(allow_null=True)
    p90_resolve_minutes = serializers.FloatField(allow_null=True)
    mean_handle_minutes = serializers.FloatField(allow_null=True)
    mean_rating = serializers.FloatField(allow_null=True, min_value=1, max_value=5)
    satisfied_rate = serializers.FloatField(allow_null=True, min_value=0, max_value=1)
    open = serializers.IntegerField()
    overdue = serializers.IntegerField()


class KpiSerializer(serializers.Serializer):
    rows = KpiRowSerializer(many=True)


class _FormatIsAQueryParameter(DefaultContentNegotiation):
    """``?format=csv`` is this view's own parameter, not DRF's renderer
    override (which would answer 404 for a format without a renderer)."""

    class settings:  # noqa: N801 - stands in for rest_framework.settings.api_settings
        URL_FORMAT_OVERRIDE = None


def kpi_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV: a header of ``ROW_KEYS``, empty cells for nulls."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(kpi.ROW_KEYS)
    for row in rows:
        writer.writerow(["" if row[k] is None else row[k] for k in kpi.ROW_KEYS])
    return out.getvalue()


def kpi_csv_response(rows: list[dict[str, Any]], *, period: kpi.Period, group_by: str) -> HttpResponse:
    response = HttpResponse(kpi_csv(rows), content_type="text/csv; charset=utf-8")
    name = f"kpi-{group_by}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class KpiView(APIView):
    content_negotiation_class = _FormatIsAQueryParameter

    @extend_schema(
        operation_id="kpi_list",
        summary="KPI rows per agent, team or type over a period (supervisors)",
        parameters=[
            OpenApiParameter("group_by", OpenApiTypes.STR, enum=list(kpi.GROUPINGS),
                             description="Default: agent."),
            OpenApiParameter("from", OpenApiTypes.DATE,
                             description="First day, included (server TIME_ZONE). "
                                         "Default: 29 days before `to`."),
            OpenApiParameter("to", OpenApiTypes.DATE,
                             description="Last day, included. Default: today."),
            OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS),
                             description="csv: text/csv with a header row of the row keys."),
        ],
        responses={
            (200, "application/json"): KpiSerializer,
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV rows"),
            400: OpenApiResponse(ErrorSerializer, description="Invalid query"),
            401: OpenApiResponse(ErrorSerializer, description="Not authenticated"),
            403: OpenApiResponse(ErrorSerializer, description="Not a supervisor"),
        },
    )
    def get(self, request: Request) -> Response | HttpResponse:
        user: User = request.user
        if user.role != User.Role.SUPERVISOR:
            raise PermissionDenied("Only supervisors see KPIs.")
        params = request.query_params
        fields: dict[str, list[str]] = {}
        fmt = params.get("format") or "json"
        if fmt not in FORMATS:
            fields["format"] = [f"Must be one of: {', '.join(FORMATS)}."]
        group_by = period = None
        try:
            group_by = kpi.kpi_group_by_parse(params.get("group_by"))
        except ValidationFailed as exc:
            fields.update(exc.fields)
        try:
            period = kpi.kpi_period_parse(first=params.get("from"), last=params.get("to"))
        except ValidationFailed as exc:
            fields.update(exc.fields)
        if fields:
            raise ValidationFailed(fields)
        rows = kpi.kpi_rows(period=period, group_by=group_by, team_ids=kpi.kpi_team_ids(user=user))
        if fmt == "csv":
            return kpi_csv_response(rows, period=period, group_by=group_by)
        return Response({"rows": rows})
