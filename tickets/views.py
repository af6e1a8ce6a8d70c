"""The ticket page of the workbench (agents and supervisors) and the inbox.

Views are thin (STYLE.md 13): access helper, bind the form, call the
service, redirect or render. Domain errors become form errors or messages.
This module also holds the small helpers every web module shares.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms as django_forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from agents.models import Agent, User
from tickets import errors
from tickets.forms import (
    AssignForm,
    CancelForm,
    CommentForm,
    HandoverForm,
    LockForm,
    NoteForm,
    ResolveForm,
)
from tickets.models import Notification, Ticket, TicketState
from tickets.selectors import notification_list, ticket_events_for_user, ticket_get_for_user
from tickets.services.dispatch import ticket_assign
from tickets.services.notifications import notification_mark_all_read, notification_mark_read
from tickets.services.work import (
    lock_max_minutes,
    ticket_cancel,
    ticket_comment,
    ticket_handover,
    ticket_lock_acquire,
    ticket_note,
    ticket_resolve,
    ticket_unlock,
)

# -- helpers shared by the web modules -------------------------------------------


def role_required(*roles: str) -> Callable:
    """Sign-in required; a signed-in user of another role gets 403."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.user.role not in roles:
                raise DjangoPermissionDenied("This page is not for your role.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def ticket_or_404(request: HttpRequest, ticket_id: int) -> Ticket:
    """The access helper: a ticket the user may see, else 404 (DESIGN.md 3)."""
    try:
        return ticket_get_for_user(user=request.user, ticket_id=ticket_id)
    except errors.NotFound:
        raise Http404("No such ticket.") from None


def form_add_service_error(form: django_forms.Form, exc: errors.OrderlyError) -> None:
    """Put a service's refusal on the form.

    ``ValidationFailed.fields`` keys name the service's inputs; ``data.<name>``
    is the dynamic field ``<name>``. Keys the form has no field for, and every
    other refusal, become non-field errors.
    """
    fields = getattr(exc, "fields", None) or exc.extra.get("fields")
    if isinstance(fields, dict) and fields:
        for key, msgs in fields.items():
            name = key.split(".", 1)[1] if key.startswith("data.") else key
            target = name if name in form.fields else None
            for msg in msgs:
                form.add_error(target, msg if target else f"{name}: {msg}")
        return
    form.add_error(None, exc.detail)


def error_status(exc: errors.OrderlyError) -> int:
    if isinstance(exc, errors.NotFound):
        raise Http404(exc.detail)
    if isinstance(exc, errors.PermissionDenied):
        raise DjangoPermissionDenied(exc.detail)
    return exc.status


def paginate(request: HttpRequest, qs, per_page: int | None = None) -> Page:
    return Paginator(qs, per_page or settings.ORDERLY_PAGE_SIZE).get_page(request.GET.get("page"))


def mark_late(tickets, now=None) -> None:
    """Set ``late`` on each ticket: its current round ran past due (or a
    resolution came late). Pure presentation: no query."""
    now = now or timezone.now()
    for ticket in tickets:
        ticket.late = bool(
            ticket.round_breached
            or (ticket.is_open and ticket.due_at is not None and ticket.due_at <= now)
            or ticket.in_time is False
        )


def safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def ticket_url_for(user: User, ticket_id: int) -> str:
    if user.role in (User.Role.AGENT, User.Role.SUPERVISOR):
        return reverse("work:ticket", args=[ticket_id])
    return reverse("portal:detail", args=[ticket_id])


# -- the ticket page (agents and supervisors) ----------------------------------


def _data_rows(ticket: Ticket) -> list[tuple[str, Any]]:
    definitions = list(ticket.ticket_type.fields.all())
    rows = [(f.label or f.name, ticket.data.get(f.name)) for f in definitions]
    known = {f.name for f in definitions}
    rows += [(name, value) for name, value in ticket.data.items() if name not in known]
    return rows


def _allowed(user: User, ticket: Ticket, now) -> dict[str, bool]:
    """Which actions to offer; the services remain the authority."""
    mine = user.is_agent and ticket.assignee_id == user.pk
    assigned = ticket.state == TicketState.ASSIGNED
    locked = ticket.lock_in_force(now)
    return {
        "lock": mine and assigned,
        "unlock": locked and (mine or user.is_supervisor),
        "handover": mine and assigned,
        "resolve": mine and assigned,
        "comment": ticket.is_open,
        "note": True,
        "assign": user.is_supervisor and ticket.state in (TicketState.POOLED, TicketState.ASSIGNED),
        "cancel": user.is_supervisor and ticket.is_open,
    }


def _team_agents(ticket: Ticket):
    return (
        Agent.objects.filter(user__teams=ticket.team_id, user__is_active=True)
        .select_related("user")
        .order_by("user__username")
    )


def _ticket_page(
    request: HttpRequest, ticket: Ticket, *, bound: dict[str, django_forms.Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    now = timezone.now()
    can = _allowed(user, ticket, now)
    max_minutes = lock_max_minutes(ticket, now) if can["lock"] else None
    agents = list(_team_agents(ticket)) if can["assign"] else []
    forms = {
        "lock": LockForm(max_minutes=max_minutes, prefix="lock"),
        "handover": HandoverForm(prefix="handover"),
        "resolve": ResolveForm(prefix="resolve"),
        "comment": CommentForm(prefix="comment"),
        "note": NoteForm(prefix="note"),
        "assign": AssignForm(agents=agents, prefix="assign"),
        "cancel": CancelForm(prefix="cancel"),
    }
    for action, form in (bound or {}).items():
        if not can.get(action):
            # The form is not on the page any more (the ticket moved on, or the
            # action is not this user's): its errors go to the messages.
            for msgs in form.errors.values():
                for msg in msgs:
                    messages.error(request, msg)
    forms.update(bound or {})
    events = list(ticket_events_for_user(user=user, ticket=ticket))
    context = {
        "ticket": ticket,
        "events": events,
        "data_rows": _data_rows(ticket),
        "can": can,
        "forms": forms,
        "max_minutes": max_minutes,
        "lock_in_force": ticket.lock_in_force(now),
    }
    mark_late([ticket], now)
    return render(request, "work/ticket.html", context, status=status)


@require_GET
@role_required(User.Role.AGENT, User.Role.SUPERVISOR)
def ticket_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ticket = ticket_or_404(request, pk)
    return _ticket_page(request, ticket)


def _lock(request, ticket, form):
    return ticket_lock_acquire(ticket_id=ticket.pk, by=request.user,
                               minutes=form.cleaned_data["minutes"])


# action -> (form class, service call, success message, roles)
_ACTIONS: dict[str, tuple[type[django_forms.Form] | None, Callable, str, tuple[str, ...]]] = {
    "lock": (LockForm, _lock, "The ticket is locked.", (User.Role.AGENT,)),
    "unlock": (None, lambda r, t, f: ticket_unlock(ticket_id=t.pk, by=r.user),
               "The lock is released.", (User.Role.AGENT, User.Role.SUPERVISOR)),
    "handover": (HandoverForm,
                 lambda r, t, f: ticket_handover(ticket_id=t.pk, by=r.user,
                                                 reason=f.cleaned_data["reason"]),
                 "Handed over: the ticket is back in the pool.", (User.Role.AGENT,)),
    "resolve": (ResolveForm,
                lambda r, t, f: ticket_resolve(ticket_id=t.pk, by=r.user,
                                               result=f.cleaned_data["result"]),
                "Resolved: the result was sent to the requester.", (User.Role.AGENT,)),
    "comment": (CommentForm,
                lambda r, t, f: ticket_comment(ticket_id=t.pk, by=r.user,
                                               body=f.cleaned_data["body"]),
                "Comment sent to the requester.", (User.Role.AGENT, User.Role.SUPERVISOR)),
    "note": (NoteForm,
             lambda r, t, f: ticket_note(ticket_id=t.pk, by=r.user, body=f.cleaned_data["body"]),
             "Internal note added.", (User.Role.AGENT, User.Role.SUPERVISOR)),
    "assign": (AssignForm,
               lambda r, t, f: ticket_assign(ticket_id=t.pk, by=r.user,
                                             agent_username=f.cleaned_data["agent"],
                                             force=f.cleaned_data["force"]),
               "The ticket is assigned.", (User.Role.SUPERVISOR,)),
    "cancel": (CancelForm,
               lambda r, t, f: ticket_cancel(ticket_id=t.pk, by=r.user,
                                             reason=f.cleaned_data["reason"] or None),
               "The ticket is cancelled.", (User.Role.SUPERVISOR,)),
}


@require_POST
@role_required(User.Role.AGENT, User.Role.SUPERVISOR)
def ticket_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    if action not in _ACTIONS:
        raise Http404("No such action.")
    form_class, call, success, roles = _ACTIONS[action]
    if request.user.role not in roles:
        raise DjangoPermissionDenied("Your role may not do this.")
    ticket = ticket_or_404(request, pk)
    form = None
    if form_class is not None:
        extra: dict[str, Any] = {}
        if form_class is AssignForm:
            extra["agents"] = _team_agents(ticket)
        if form_class is LockForm:
            extra["max_minutes"] = lock_max_minutes(ticket, timezone.now())
        form = form_class(request.POST, prefix=action, **extra)
        if not form.is_valid():
            return _ticket_page(request, ticket, bound={action: form}, status=400)
    try:
        call(request, ticket, form)
    except errors.OrderlyError as exc:
        status = error_status(exc)
        if form is None:
            messages.error(request, exc.detail)
            return redirect("work:ticket", pk=ticket.pk)
        if isinstance(exc, errors.LockExceedsTimeLeft):
            form.add_error("minutes", exc.detail)
        else:
            form_add_service_error(form, exc)
        ticket = ticket_or_404(request, pk)
        return _ticket_page(request, ticket, bound={action: form}, status=status)
    messages.success(request, success)
    return redirect("work:ticket", pk=ticket.pk)


# -- notifications ---------------------------------------------------------------


@require_GET
@login_required
def notification_inbox(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "all")
    qs = notification_list(user=request.user, unread=True if show == "unread" else None)
    page = paginate(request, qs)
    for note in page.object_list:
        note.url = ticket_url_for(request.user, note.ticket_id) if note.ticket_id else None
    return render(request, "notifications/list.html", {"page": page, "show": show})


@require_POST
@login_required
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    if not Notification.objects.filter(user=request.user, pk=pk).exists():
        raise Http404("No such notification.")
    try:
        notification_mark_read(user=request.user, notification_id=pk)
    except errors.NotFound:
        raise Http404("No such notification.") from None
    return redirect(safe_next(request, reverse("notifications")))


@require_POST
@login_required
def notification_read_all(request: HttpRequest) -> HttpResponse:
    count = notification_mark_all_read(user=request.user)
    messages.success(request, f"{count} notification(s) marked read.")
    return redirect(safe_next(request, reverse("notifications")))


__all__ = [
    "form_add_service_error",
    "mark_late",
    "paginate",
    "role_required",
    "safe_next",
    "ticket_or_404",
]


# -- deliveries (supervisors) ------------------------------------------------------


def _deliveries_qs(user: User, status: str | None):
    """Deliveries of the tickets the supervisor sees, newest first."""
    from tickets.delivery_models import Delivery
    from tickets.selectors import ticket_visibility_q

    qs = (
        Delivery.objects.filter(
            ticket_id__in=Ticket.objects.filter(ticket_visibility_q(user)).values("id")
        )
        .select_related("ticket")
        .defer("payload")
        .order_by("-id")
    )
    if status in Delivery.Status.values:
        qs = qs.filter(status=status)
    return qs


@require_GET
@role_required(User.Role.SUPERVISOR)
def delivery_list(request: HttpRequest) -> HttpResponse:
    from tickets.delivery_models import Delivery

    status = request.GET.get("status") or ""
    page = paginate(request, _deliveries_qs(request.user, status))
    return render(request, "supervise/deliveries.html", {
        "page": page, "status": status, "statuses": Delivery.Status.choices,
    })


@require_POST
@role_required(User.Role.SUPERVISOR)
def delivery_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    from tickets.services.deliveries import delivery_retry

    try:
        delivery_retry(delivery_id=pk, by=request.user)
    except errors.OrderlyError as exc:
        error_status(exc)  # 404 / 403 raise; conflicts become a message
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"Delivery {pk} is queued to be sent again.")
    return redirect(safe_next(request, reverse("supervise:deliveries")))
