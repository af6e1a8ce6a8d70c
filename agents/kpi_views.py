"""The supervisor's KPI dashboard: period picker, KPI table per agent, team
or type (sortable), charts, CSV export. Numbers from ``agents/kpi.py``;
charts drawn server-side by pygal (SVG inline, no JavaScript fetched)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString, mark_safe

from agents import kpi
from agents.api import kpi_csv_response
from agents.models import User
from tickets.errors import ValidationFailed
from tickets.views import role_required

PRESETS = {"today": 1, "7": 7, "30": 30}
COLUMNS = [
    ("key", "Key"), ("assigned", "Assigned"), ("resolved", "Resolved"),
    ("in_time_rate", "In time"), ("breaches", "Breaches"), ("handovers", "Hand-overs"),
    ("reopen_rate", "Reopened"), ("mean_resolve_minutes", "Resolve, mean (min)"),
    ("p90_resolve_minutes", "Resolve, p90 (min)"), ("mean_handle_minutes", "Handle, mean (min)"),
    ("mean_rating", "Rating"), ("satisfied_rate", "Rated 4-5"), ("open", "Open now"),
    ("overdue", "Overdue now"),
]
RATES = {"in_time_rate", "reopen_rate", "satisfied_rate"}


def _period_of(params: Any) -> tuple[str, kpi.Period]:
    preset = params.get("period") or "30"
    if preset in PRESETS:
        today = kpi.kpi_today()
        return preset, kpi.Period(today - timedelta(days=PRESETS[preset] - 1), today)
    if preset != "custom":
        raise ValidationFailed({"period": ["Choose today, 7, 30 or custom."]})
    return preset, kpi.kpi_period_parse(first=params.get("from"), last=params.get("to"))


def _sorted(rows: list[dict[str, Any]], sort: str, descending: bool) -> list[dict[str, Any]]:
    present = [r for r in rows if r[sort] is not None]
    missing = [r for r in rows if r[sort] is None]
    return sorted(present, key=lambda r: r[sort], reverse=descending) + missing


@role_required(User.Role.SUPERVISOR)
def kpi_dashboard(request: HttpRequest) -> HttpResponse:
    params = request.GET
    errors: dict[str, list[str]] = {}
    try:
        group_by = kpi.kpi_group_by_parse(params.get("group_by"))
    except ValidationFailed as exc:
        errors.update(exc.fields)
        group_by = "agent"
    try:
        preset, period = _period_of(params)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        preset, period = "30", _period_of({"period": "30"})[1]
    team_ids = kpi.kpi_team_ids(user=request.user)
    rows = kpi.kpi_rows(period=period, group_by=group_by, team_ids=team_ids)
    if params.get("format") == "csv" and not errors:
        return kpi_csv_response(rows, period=period, group_by=group_by)

    sort = params.get("sort") if params.get("sort") in kpi.ROW_KEYS else "key"
    descending = params.get("dir") == "desc"
    rows = _sorted(rows, sort, descending)
    daily = kpi.kpi_daily(period=period, team_ids=team_ids)
    ratings = kpi.kpi_rating_counts(period=period, team_ids=team_ids)

    base = {"period": preset, "group_by": group_by}
    if preset == "custom":
        base.update({"from": period.first.isoformat(), "to": period.last.isoformat()})
    headers = []
    for key, label in COLUMNS:
        flip = "asc" if sort == key and descending else ("desc" if sort == key else
                                                         ("asc" if key == "key" else "desc"))
        headers.append({
            "key": key, "label": label, "active": sort == key,
            "aria_sort": ("descending" if descending else "ascending") if sort == key else "none",
            "url": "?" + urlencode({**base, "sort": key, "dir": flip}),
        })
    context = {
        "errors": errors,
        "group_by": group_by,
        "groupings": [("agent", "Agent"), ("team", "Team"), ("type", "Type")],
        "preset": preset,
        "presets": [("today", "Today"), ("7", "7 days"), ("30", "30 days"), ("custom", "Custom")],
        "period": period,
        "headers": headers,
        "table": [[(k, _cell(k, row[k])) for k, _ in COLUMNS] for row in rows],
        "csv_url": "?" + urlencode({**base, "format": "csv"}),
        "group_tabs": [(g, label, "?" + urlencode({**base, "group_by": g, "sort": sort,
                                                     "dir": "desc" if descending else "asc"}))
                       for g, label in (("agent", "Agent"), ("team", "Team"), ("type", "Type"))],
        "charts": _charts(daily, ratings, rows, group_by),
        "totals": {
            "created": sum(d["created"] for d in daily),
            "resolved": sum(d["resolved"] for d in daily),
        },
    }
    return render(request, "agents/kpi_dashboard.html", context, status=400 if errors else 200)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key in RATES:
        return f"{value * 100:.0f}%"
    return str(value)


@role_required(User.Role.AGENT)
def kpi_mine(request: HttpRequest) -> HttpResponse:
    """An agent's own KPIs (same definitions as the dashboard, their row only,
    over every team: all of their own work counts)."""
    errors: dict[str, list[str]] = {}
    try:
        preset, period = _period_of(request.GET)
    except ValidationFailed as exc:
        errors.update(exc.fields)
        preset, period = "30", _period_of({"period": "30"})[1]
    username = request.user.username
    rows = kpi.kpi_rows(period=period, group_by="agent", team_ids=None, keys=[username])
    # An agent in no team yet has no row: the same zeros as any quiet agent.
    row = rows[0] if rows else kpi.kpi_row_empty(username)
    context = {
        "errors": errors,
        "preset": preset,
        "presets": [("today", "Today"), ("7", "7 days"), ("30", "30 days"), ("custom", "Custom")],
        "period": period,
        "metrics": [(key, label, _cell(key, row[key])) for key, label in COLUMNS[1:]],
    }
    return render(request, "agents/kpi_mine.html", context, status=400 if errors else 200)


# -- charts (pygal) -----------------------------------------------------------------


def _chart(kind: str, title: str, **config: Any):  # noqa: ANN202 - a pygal chart
    import pygal
    from pygal.style import Style

    style = Style(background="transparent", plot_background="transparent",
                  font_family="system-ui, sans-serif", colors=("#0d6efd", "#198754", "#dc3545",
                                                               "#fd7e14", "#6f42c1"))
    chart_class = {"bar": pygal.Bar, "line": pygal.Line, "hbar": pygal.HorizontalBar}[kind]
    # js=[]: no tooltip script from the internet; the SVG stands alone.
    options = {"width": 800, "height": 320, "legend_at_bottom": True,
               "show_minor_x_labels": False, "truncate_label": -1, **config}
    return chart_class(title=title, style=style, js=[], disable_xml_declaration=True, **options)


def _svg(chart) -> SafeString:  # noqa: ANN001
    return mark_safe(chart.render(is_unicode=True))  # noqa: S308 - pygal escapes labels


def _charts(daily: list[dict[str, Any]], ratings: dict[int, int], rows: list[dict[str, Any]],
            group_by: str) -> list[dict[str, Any]]:
    labels = [d["day"].strftime("%d %b") for d in daily]
    every = max(1, len(labels) // 10)
    common = {"x_labels_major_every": every}

    volume = _chart("bar", "Created and resolved per day", **common)
    volume.x_labels = labels
    volume.add("Created", [d["created"] for d in daily])
    volume.add("Resolved", [d["resolved"] for d in daily])

    in_time = _chart("line", "Resolved in time per day (%)", range=(0, 100), show_legend=False,
                     **common)
    in_time.x_labels = labels
    in_time.add("In time", [None if d["in_time_rate"] is None else round(d["in_time_rate"] * 100)
                            for d in daily])

    backlog = _chart("line", "Open backlog at the end of each day", show_legend=False,
                     fill=True, **common)
    backlog.x_labels = labels
    backlog.add("Open", [d["backlog"] for d in daily])

    rating = _chart("bar", "Ratings given", show_legend=False)
    rating.x_labels = [str(value) for value in ratings]
    rating.add("Ratings", list(ratings.values()))

    charts = [
        {"id": "chart-volume", "title": "Daily volume: created vs resolved", "svg": _svg(volume)},
        {"id": "chart-in-time", "title": "In-time rate per day", "svg": _svg(in_time)},
        {"id": "chart-backlog", "title": "Backlog over time", "svg": _svg(backlog)},
        {"id": "chart-ratings", "title": "Rating distribution", "svg": _svg(rating)},
    ]
    top = sorted((r for r in rows if r["resolved"]), key=lambda r: -r["resolved"])[:15]
    if top:
        per = _chart("hbar", f"Resolved per {group_by}", show_legend=False,
                     height=max(160, 28 * len(top) + 80))
        per.x_labels = [row["key"] for row in reversed(top)]
        per.add("Resolved", [row["resolved"] for row in reversed(top)])
        charts.append({"id": "chart-per-group", "title": f"Resolved per {group_by}",
                       "svg": _svg(per)})
    return charts
