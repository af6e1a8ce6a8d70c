"""Server-rendered pages: customer portal, agent workbench, supervisor views."""
from django.contrib.auth import views as auth_views
from django.urls import include, path

from agents import kpi_views, views as agent_views
from feedback import views as portal_views
from tickets import views as ticket_views

accounts = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", agent_views.signup, name="signup"),
    path("preferences/", agent_views.preferences, name="preferences"),
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(),
         name="password_reset_done"),
    path("reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(),
         name="password_reset_complete"),
]

portal = ([
    path("", portal_views.portal_list, name="list"),
    path("new/", portal_views.portal_new, name="new"),
    path("new/<slug:slug>/", portal_views.portal_create, name="create"),
    path("tickets/<int:pk>/", portal_views.portal_detail, name="detail"),
    path("tickets/<int:pk>/comment/", portal_views.portal_comment, name="comment"),
    path("tickets/<int:pk>/cancel/", portal_views.portal_cancel, name="cancel"),
    path("tickets/<int:pk>/feedback/", portal_views.portal_feedback, name="feedback"),
], "portal")

work = ([
    path("", agent_views.queue, name="queue"),
    path("status/", agent_views.agent_status, name="status"),
    path("pull/", agent_views.pull, name="pull"),
    path("pool/", agent_views.pool, name="pool"),
    path("kpi/", kpi_views.kpi_mine, name="kpi"),
    path("tickets/<int:pk>/", ticket_views.ticket_detail, name="ticket"),
    path("tickets/<int:pk>/<slug:action>/", ticket_views.ticket_action, name="action"),
], "work")

supervise = ([
    path("", agent_views.supervise_pool, name="pool"),
    path("board/", agent_views.board, name="board"),
    path("deliveries/", ticket_views.delivery_list, name="deliveries"),
    path("deliveries/<int:pk>/retry/", ticket_views.delivery_retry_view, name="delivery_retry"),
], "supervise")

urlpatterns = [
    path("", agent_views.home, name="home"),
    path("t/<int:pk>/", agent_views.ticket_link, name="ticket_link"),
    path("accounts/", include(accounts)),
    path("notifications/", ticket_views.notification_inbox, name="notifications"),
    path("notifications/read-all/", ticket_views.notification_read_all,
         name="notifications_read_all"),
    path("notifications/<int:pk>/read/", ticket_views.notification_read, name="notification_read"),
    path("portal/", include(portal)),
    path("work/", include(work)),
    path("supervise/", include(supervise)),
    # The KPI dashboard (agents/kpi_views.py), name "kpi-dashboard".
    path("supervise/kpi/", include("agents.kpi_urls")),
]
