"""Test-local URLs: the KPI API and dashboard ahead of the project's URLs
(the API's catch-all would answer 404 for /api/v1/kpi/ otherwise)."""
from django.urls import include, path

from agents.api import KpiView
from helpdesk.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("api/v1/kpi/", KpiView.as_view()),
    path("supervise/kpi/", include("agents.kpi_urls")),
    *project_urlpatterns,
]
