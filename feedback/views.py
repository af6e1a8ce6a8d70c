"""The customer portal: a requester's own work orders, from creation to verdict."""
from __future__ import annotations

from django import forms as django_forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.models import User
from feedback.forms import (
    FeedbackForm,
    PortalCancelForm,
    PortalCommentForm,
    StateFilterForm,
    TicketCreateForm,
)
from feedback.services import ticket_feedback
from tickets import errors
from tickets.models import OPEN_STATES, Ticket, TicketEvent, TicketState, TicketType
from tickets.selectors import ticket_events_for_user, ticket_list_qs, ticket_type_list
from tickets.services.creation import ticket_create
from tickets.services.work import ticket_cancel, ticket_comment
from tickets.views import (
    error_status,
    form_add_service_error,
    mark_late,
    paginate,
    role_required,
    ticket_or_404,
)

requester_only = role_required(User.Role.REQUESTER)

# Timeline entries a requester is shown (never notes; bookkeeping left out).
PUBLIC_KINDS = {
    TicketEvent.Kind.CREATED, TicketEvent.Kind.CALLBACK_RESOLVED,
    TicketEvent.Kind.CALLBACK_NEEDS_AGENT, TicketEvent.Kind.CALLBACK_FAILED,
    TicketEvent.Kind.ASSIGNED, TicketEvent.Kind.RESOLVED, TicketEvent.Kind.ACCEPTED,
    TicketEvent.Kind.REJECTED, TicketEvent.Kind.AUTO_CLOSED, TicketEvent.Kind.CANCELLED,
    TicketEvent.Kind.COMMENT,
}


@require_GET
@requester_only
def portal_list(request: HttpRequest) -> HttpResponse:
    filter_form = StateFilterForm(request.GET or None)
    qs = ticket_list_qs(user=request.user).order_by("-id")
    state = filter_form.cleaned_data.get("state") if filter_form.is_valid() else ""
    if state == "open":
        qs = qs.filter(state__in=OPEN_STATES)
    elif state:
        qs = qs.filter(state=state)
    page = paginate(request, qs)
    mark_late(page.object_list)
    return render(request, "portal/list.html", {"page": page, "filter_form": filter_form})


@require_GET
@requester_only
def portal_new(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/type_pick.html", {"types": ticket_type_list()})


def _type_or_404(slug: str) -> TicketType:
    try:
        return ticket_type_list().get(slug=slug)
    except TicketType.DoesNotExist:
        raise Http404("No such work-order type.") from None


@require_http_methods(["GET", "POST"])
@requester_only
def portal_create(request: HttpRequest, slug: str) -> HttpResponse:
    ticket_type = _type_or_404(slug)
    form = TicketCreateForm(request.POST or None, ticket_type=ticket_type)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                ticket, _ = ticket_create(by=request.user, **form.service_kwargs())
            except errors.OrderlyError as exc:
                status = error_status(exc)
                form_add_service_error(form, exc)
            else:
                messages.success(request, f"Work order #{ticket.pk} is created.")
                return redirect("portal:detail", pk=ticket.pk)
    return render(request, "portal/create.html", {"form": form, "ticket_type": ticket_type},
                  status=status)


def _detail_page(request: HttpRequest, ticket: Ticket, *,
                 bound: dict[str, django_forms.Form] | None = None,
                 status: int = 200) -> HttpResponse:
    events = [e for e in ticket_events_for_user(user=request.user, ticket=ticket)
              if e.kind in PUBLIC_KINDS]
    forms = {
        "comment": PortalCommentForm(prefix="comment"),
        "cancel": PortalCancelForm(prefix="cancel"),
        "feedback": FeedbackForm(prefix="feedback"),
    }
    offered = {"comment": ticket.is_open, "cancel": ticket.is_open,
               "feedback": ticket.state == TicketState.RESOLVED}
    for name, form in (bound or {}).items():
        if not offered.get(name):
            # The form is not on the page (the ticket moved on): say why.
            for msgs in form.errors.values():
                for msg in msgs:
                    messages.error(request, msg)
    forms.update(bound or {})
    data_rows = [(f.label or f.name, ticket.data.get(f.name))
                 for f in ticket.ticket_type.fields.all() if f.name in ticket.data]
    mark_late([ticket], timezone.now())
    return render(request, "portal/detail.html", {
        "ticket": ticket,
        "events": events,
        "data_rows": data_rows,
        "forms": forms,
        "can_comment": offered["comment"],
        "can_cancel": offered["cancel"],
        "can_feedback": offered["feedback"],
    }, status=status)


@require_GET
@requester_only
def portal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, ticket_or_404(request, pk))


def _portal_action(request: HttpRequest, pk: int, name: str, form_class, call, success: str):
    ticket = ticket_or_404(request, pk)
    form = form_class(request.POST, prefix=name)
    if not form.is_valid():
        return _detail_page(request, ticket, bound={name: form}, status=400)
    try:
        call(ticket, form)
    except errors.OrderlyError as exc:
        status = error_status(exc)
        form_add_service_error(form, exc)
        return _detail_page(request, ticket_or_404(request, pk), bound={name: form}, status=status)
    messages.success(request, success)
    return redirect("portal:detail", pk=ticket.pk)


@require_POST
@requester_only
def portal_comment(request: HttpRequest, pk: int) -> HttpResponse:
    return _portal_action(
        request, pk, "comment", PortalCommentForm,
        lambda t, f: ticket_comment(ticket_id=t.pk, by=request.user, body=f.cleaned_data["body"]),
        "Your comment is sent.",
    )


@require_POST
@requester_only
def portal_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _portal_action(
        request, pk, "cancel", PortalCancelForm,
        lambda t, f: ticket_cancel(ticket_id=t.pk, by=request.user,
                                   reason=f.cleaned_data["reason"] or None),
        "Your work order is cancelled.",
    )


@require_POST
@requester_only
def portal_feedback(request: HttpRequest, pk: int) -> HttpResponse:
    def call(ticket: Ticket, form: FeedbackForm) -> None:
        ticket_feedback(ticket_id=ticket.pk, by=request.user, **form.service_kwargs())

    verdict = request.POST.get("feedback-verdict")
    success = ("Thank you: the work order is closed." if verdict == "accept"
               else "The work order is reopened and goes back to an agent with a higher priority.")
    return _portal_action(request, pk, "feedback", FeedbackForm, call, success)
