"""The KPI dashboard renders its charts in a real browser, on the demo's
three weeks of history (``orderly_demo``, played through the services);
an agent's own KPI page too. Screenshots go to tests/browser/artifacts/."""
from __future__ import annotations

import os
import subprocess

import pytest

from agents.management.commands.orderly_demo import PASSWORD as DEMO_PASSWORD
from tests.browser.conftest import PYTHON, ROOT
from tests.browser.test_story import _shot

pytestmark = pytest.mark.browser

CHARTS = ["chart-volume", "chart-in-time", "chart-backlog", "chart-ratings", "chart-per-group"]


@pytest.fixture(scope="module")
def demo(server):
    """The demo data (with 10 days of history) in the server's database."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "helpdesk.settings",
                "ORDERLY_VAR_DIR": str(server.tmp / "var")})
    with (server.tmp / "demo.log").open("ab") as out:
        done = subprocess.run([PYTHON, "manage.py", "orderly_demo", "--quiet-logins",
                               "--history-days", "10"], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=180)
    assert done.returncode == 0, server.logs()
    return server


def _login(browser, server, username):
    page = browser.new_context(base_url=server.base_url,
                               viewport={"width": 1400, "height": 900}).new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return page


def test_dashboard_renders_every_chart_with_data(demo, browser, artifacts):
    from playwright.sync_api import expect

    page = _login(browser, demo, "admin")
    page.goto("/supervise/kpi/?period=30&group_by=agent")
    expect(page.get_by_role("heading", name="KPIs")).to_be_visible()
    for chart in CHARTS:
        svg = page.locator(f"#{chart} svg")
        expect(svg).to_be_visible()
        box = svg.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 100, chart
    # Data drawn, not just axes: bars for the volumes and the ratings, a line
    # for the in-time rate and the backlog.
    assert page.locator("#chart-volume svg .bar").count() >= 2 * 10
    assert page.locator("#chart-ratings svg .bar").count() == 5
    assert page.locator("#chart-in-time svg path.line").count() >= 1
    assert page.locator("#chart-backlog svg path.line").count() >= 1
    assert page.locator("#kpi-table tbody tr").count() >= 5
    _shot(page, artifacts, "kpi-dashboard-30-days")

    page.get_by_role("link", name="Per team").click()
    expect(page.locator("#kpi-table tbody tr").first).to_be_visible()
    assert page.locator("#chart-per-group svg .bar").count() == 2
    _shot(page, artifacts, "kpi-dashboard-per-team")


def test_agent_sees_their_own_kpis(demo, browser, artifacts):
    from playwright.sync_api import expect

    page = _login(browser, demo, "alice")
    page.get_by_role("link", name="My KPIs").click()
    expect(page.get_by_role("heading", name="My KPIs")).to_be_visible()
    resolved = page.locator('[data-kpi="resolved"] dd')
    assert int(resolved.inner_text()) > 0
    _shot(page, artifacts, "kpi-agent-own")
