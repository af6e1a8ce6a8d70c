"""Sign-up, the landing page per role, the agent workbench (availability,
queue, take next, pool) and the supervisor's pool and team board."""
from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.contrib import messages
from django.contrib.auth import login
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.forms import PoolFilterForm, PreferencesForm, SignupForm, StatusForm
from agents.models import Agent, Team, User
from agents.services import agent_set_status, user_provision, user_set_time_zone
from tickets import errors
from tickets.models import OPEN_STATES, Ticket, TicketEvent, TicketState, TicketType
from tickets.selectors import ticket_list_qs
from tickets.services.dispatch import POOL_ORDER, ticket_pull_next
from tickets.views import form_add_service_error, mark_late, paginate, role_required, safe_next

QUEUE_SEEN_KEY = "queue_seen_at"


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Each role's landing page."""
    user = request.user
    if not user.is_authenticated:
        return redirect("login")
    if user.role == User.Role.AGENT:
        return redirect("work:queue")
    if user.role == User.Role.SUPERVISOR:
        return redirect("supervise:pool")
    if user.role == User.Role.REQUESTER:
        return redirect("portal:list")
    return render(request, "home_other.html")


def ticket_link(request: HttpRequest, pk: int) -> HttpResponse:
    """The link in emails: each role's page of the ticket (sign-in first)."""
    user = request.user
    if not user.is_authenticated:
        return redirect(f"{reverse('login')}?next={request.path}")
    if user.role == User.Role.REQUESTER:
        return redirect("portal:detail", pk=pk)
    if user.role in (User.Role.AGENT, User.Role.SUPERVISOR):
        return redirect("work:ticket", pk=pk)
    return redirect("home")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """A new requester account (agents and supervisors are provisioned)."""
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        cd = form.cleaned_data
        try:
            user, _token = user_provision(username=cd["username"], password=cd["password"],
                                          email=cd["email"] or "", role=User.Role.REQUESTER)
        except errors.ValidationFailed as exc:
            form_add_service_error(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome, {user.username}: your account is ready.")
            return redirect("home")
    status = 400 if form.is_bound else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """Each signed-in user picks the time zone their pages show."""
    if not request.user.is_authenticated:
        return redirect(f"{reverse('login')}?next={request.path}")
    form = PreferencesForm(request.POST or None,
                           initial={"time_zone": request.user.time_zone})
    if request.method == "POST" and form.is_valid():
        try:
            user_set_time_zone(user=request.user, time_zone=form.cleaned_data["time_zone"])
        except errors.ValidationFailed as exc:
            form_add_service_error(form, exc)
        else:
            messages.success(request, "Your preferences are saved.")
            return redirect("preferences")
    status = 400 if form.is_bound else 200
    return render(request, "registration/preferences.html", {"form": form}, status=status)


# -- workbench ---------------------------------------------------------------------


@require_POST
@role_required(User.Role.AGENT)
def agent_status(request: HttpRequest) -> HttpResponse:
    form = StatusForm(request.POST)
    back = safe_next(request, reverse("work:queue"))
    if not form.is_valid():
        messages.error(request, "Choose online, away or offline.")
        return redirect(back)
    try:
        agent = agent_set_status(by=request.user, status=form.cleaned_data["status"])
    except errors.OrderlyError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"You are {agent.get_status_display().lower()}.")
    return redirect(back)


def _queue_qs(user: User):
    return (
        ticket_list_qs(user=user)
        .prefetch_related(None)
        .filter(assignee=user, state=TicketState.ASSIGNED)
        .order_by(*POOL_ORDER)
    )


@require_GET
@role_required(User.Role.AGENT)
def queue(request: HttpRequest) -> HttpResponse:
    """My assigned tickets; htmx polls the same view for the partial.

    Tickets assigned since the agent last opened this page are marked new: the
    full page records the time, the polled partial does not.
    """
    now = timezone.now()
    seen_raw = request.session.get(QUEUE_SEEN_KEY)
    seen = datetime.fromisoformat(seen_raw) if seen_raw else now
    if not request.htmx:
        request.session[QUEUE_SEEN_KEY] = now.isoformat()
    page = paginate(request, _queue_qs(request.user))
    mark_late(page.object_list, now)
    for ticket in page.object_list:
        ticket.is_new = bool(ticket.assigned_at and ticket.assigned_at > seen)
    context = {"page": page, "seen": seen}
    if request.htmx:
        return render(request, "work/partials/_queue.html", context)
    return render(request, "work/queue.html", context)


@require_POST
@role_required(User.Role.AGENT)
def pull(request: HttpRequest) -> HttpResponse:
    try:
        ticket = ticket_pull_next(by=request.user)
    except errors.OrderlyError as exc:
        messages.error(request, exc.detail)
        return redirect(safe_next(request, reverse("work:queue")))
    if ticket is None:
        messages.info(request, "Nothing to take: the pool has no ticket for you, or you are full.")
        return redirect(safe_next(request, reverse("work:queue")))
    messages.success(request, f"You took #{ticket.pk}.")
    return redirect("work:ticket", pk=ticket.pk)


# -- pool (agents read it; supervisors filter and sort it) -----------------------------

SORT_ORDERS = {
    "dispatch": POOL_ORDER,
    "due": ("due_at", "id"),
    "age": ("created_at", "id"),
    "priority": ("-priority", "created_at", "id"),
}


def _pool_page(request: HttpRequest, *, supervisor: bool, template: str) -> HttpResponse:
    user = request.user
    teams = list(Team.objects.filter(members=user).order_by("name"))
    types = list(TicketType.objects.filter(team__in=teams).order_by("name"))
    form = PoolFilterForm(request.GET or None, teams=teams, types=types, supervisor=supervisor)
    cd = form.cleaned_data if form.is_valid() else {}
    qs = ticket_list_qs(user=user).prefetch_related(None)
    state = cd.get("state") or TicketState.POOLED
    if state == "open":
        qs = qs.filter(state__in=OPEN_STATES)
    else:
        qs = qs.filter(state=state)
    if cd.get("team"):
        qs = qs.filter(team_id=cd["team"])
    if cd.get("ticket_type"):
        qs = qs.filter(ticket_type_id=cd["ticket_type"])
    if cd.get("breached"):
        qs = qs.filter(breached_at__isnull=False)
    qs = qs.order_by(*SORT_ORDERS.get(cd.get("sort") or "dispatch", POOL_ORDER))
    page = paginate(request, qs)
    now = timezone.now()
    mark_late(page.object_list, now)
    can_pull = False
    if user.role == User.Role.AGENT:
        can_pull = Agent.objects.filter(user=user, status=Agent.Status.ONLINE).exists()
    return render(request, template, {
        "page": page, "filter_form": form, "supervisor": supervisor, "can_pull": can_pull,
        "state": state,
    })


@require_GET
@role_required(User.Role.AGENT)
def pool(request: HttpRequest) -> HttpResponse:
    return _pool_page(request, supervisor=False, template="work/pool.html")


@require_GET
@role_required(User.Role.SUPERVISOR)
def supervise_pool(request: HttpRequest) -> HttpResponse:
    return _pool_page(request, supervisor=True, template="supervise/pool.html")


# -- team board --------------------------------------------------------------------


def _board_agents(team_ids: list[int], now):
    """Agents of these teams with their load, locks held and oldest ticket, in
    one query (subqueries, not joins, so counts do not multiply)."""
    assigned = Ticket.objects.filter(assignee=OuterRef("user_id"), state=TicketState.ASSIGNED)
    oldest = assigned.order_by("created_at", "id")
    locks = (
        Ticket.objects.filter(locked_by=OuterRef("user_id"), locked_until__gt=now)
        .order_by().values("locked_by").annotate(n=Count("id")).values("n")
    )
    agent_ids = User.teams.through.objects.filter(team_id__in=team_ids).values("user_id")
    return (
        Agent.objects.filter(user_id__in=agent_ids, user__is_active=True)
        .select_related("user")
        .annotate(
            locks_held=Coalesce(Subquery(locks, output_field=IntegerField()), Value(0)),
            oldest_id=Subquery(oldest.values("id")[:1]),
            oldest_created_at=Subquery(oldest.values("created_at")[:1]),
        )
        .order_by("user__username")
    )


@require_GET
@role_required(User.Role.SUPERVISOR)
def board(request: HttpRequest) -> HttpResponse:
    user = request.user
    now = timezone.now()
    teams = list(Team.objects.filter(members=user).order_by("name"))
    team_id = request.GET.get("team")
    team_ids = [t.pk for t in teams]
    if team_id and team_id.isdigit() and int(team_id) in team_ids:
        team_ids = [int(team_id)]
    agents = list(_board_agents(team_ids, now))
    start_of_day = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    breaches = Counter(
        details.get("agent")
        for details in TicketEvent.objects.filter(
            kind=TicketEvent.Kind.BREACHED, at__gte=start_of_day, ticket__team_id__in=team_ids
        ).values_list("details", flat=True)
        if isinstance(details, dict)
    )
    for agent in agents:
        agent.breaches_today = breaches.get(agent.user.username, 0)
    pool_counts = dict(
        Ticket.objects.filter(team_id__in=team_ids, state=TicketState.POOLED)
        .order_by().values_list("team_id").annotate(n=Count("id"))
    )
    overdue = Ticket.objects.filter(
        Q(team_id__in=team_ids), Q(state__in=[TicketState.POOLED, TicketState.ASSIGNED]),
        Q(due_at__lte=now),
    ).count()
    summary = [(t, pool_counts.get(t.pk, 0)) for t in teams if t.pk in team_ids]
    return render(request, "supervise/board.html", {
        "agents": agents, "teams": teams, "team_id": team_id, "summary": summary,
        "overdue": overdue, "pool_in_pool_breaches": breaches.get(None, 0),
    })
