"""The KPI dashboard; the project includes it under ``/supervise/kpi/``."""
from django.urls import path

from agents.kpi_views import kpi_dashboard

urlpatterns = [
    path("", kpi_dashboard, name="kpi-dashboard"),
]
