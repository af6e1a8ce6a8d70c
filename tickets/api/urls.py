from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from tickets.api import deliveries, views

v1 = [
    path("auth/token/", views.TokenView.as_view()),
    path("health/", views.HealthView.as_view()),
    path("teams/", views.TeamCreateView.as_view()),
    path("users/", views.UserCreateView.as_view()),
    path("ticket-types/", views.TicketTypeListView.as_view()),
    path("ticket-types/<slug:slug>/", views.TicketTypeDetailView.as_view()),
    path("tickets/", views.TicketListView.as_view()),
    path("tickets/<int:pk>/", views.TicketDetailView.as_view()),
    path("tickets/<int:pk>/lock/", views.LockView.as_view()),
    path("tickets/<int:pk>/unlock/", views.UnlockView.as_view()),
    path("tickets/<int:pk>/handover/", views.HandoverView.as_view()),
    path("tickets/<int:pk>/resolve/", views.ResolveView.as_view()),
    path("tickets/<int:pk>/feedback/", views.FeedbackView.as_view()),
    path("tickets/<int:pk>/cancel/", views.CancelView.as_view()),
    path("tickets/<int:pk>/assign/", views.AssignView.as_view()),
    path("tickets/<int:pk>/notes/", views.NoteView.as_view()),
    path("tickets/<int:pk>/comments/", views.CommentView.as_view()),
    path("agents/me/", views.AgentMeView.as_view()),
    path("agents/me/next/", views.PullNextView.as_view()),
    path("notifications/", views.NotificationListView.as_view()),
    path("notifications/read-all/", views.NotificationReadAllView.as_view()),
    path("notifications/<int:pk>/read/", views.NotificationReadView.as_view()),
    path("deliveries/", deliveries.DeliveryListView.as_view()),
    path("deliveries/<int:pk>/retry/", deliveries.DeliveryRetryView.as_view()),
]

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
         name="schema"),
    path("v1/", include(v1)),
    re_path(r"^(?P<rest>.*)$", views.api_not_found),
]
