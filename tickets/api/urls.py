from django.urls import include, path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView

from agents.api import KpiView
from tickets.api import deliveries, views



class IdConverter:
    """A positive id that fits a signed 64-bit column; longer digit runs are
    no path at all (404), never an overflow in the database driver."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

v1 = [
    path("auth/token/", views.TokenView.as_view()),
    path("health/", views.HealthView.as_view()),
    path("teams/", views.TeamCreateView.as_view()),
    path("users/", views.UserCreateView.as_view()),
    path("ticket-types/", views.TicketTypeListView.as_view()),
    path("ticket-types/<slug:slug>/", views.TicketTypeDetailView.as_view()),
    path("tickets/", views.TicketListView.as_view()),
    path("tickets/<id:pk>/", views.TicketDetailView.as_view()),
    path("tickets/<id:pk>/lock/", views.LockView.as_view()),
    path("tickets/<id:pk>/unlock/", views.UnlockView.as_view()),
    path("tickets/<id:pk>/handover/", views.HandoverView.as_view()),
    path("tickets/<id:pk>/resolve/", views.ResolveView.as_view()),
    path("tickets/<id:pk>/feedback/", views.FeedbackView.as_view()),
    path("tickets/<id:pk>/cancel/", views.CancelView.as_view()),
    path("tickets/<id:pk>/assign/", views.AssignView.as_view()),
    path("tickets/<id:pk>/notes/", views.NoteView.as_view()),
    path("tickets/<id:pk>/comments/", views.CommentView.as_view()),
    path("agents/me/", views.AgentMeView.as_view()),
    path("agents/me/next/", views.PullNextView.as_view()),
    path("notifications/", views.NotificationListView.as_view()),
    path("notifications/read-all/", views.NotificationReadAllView.as_view()),
    path("notifications/<id:pk>/read/", views.NotificationReadView.as_view()),
    path("deliveries/", deliveries.DeliveryListView.as_view()),
    path("kpi/", KpiView.as_view()),
    path("deliveries/<id:pk>/retry/", deliveries.DeliveryRetryView.as_view()),
]

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
         name="schema"),
    path("v1/", include(v1)),
    re_path(r"^(?P<rest>.*)$", views.api_not_found),
]
