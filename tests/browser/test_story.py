"""Issue 5's story in a real browser against the real processes (web, Celery
worker, beat): create, live queue, lock refused then taken, comment, resolve,
reject, back with a higher priority, accept with a rating; the supervisor
watches on the pool and the board. Screenshots of every main page, also at
phone width (375 px), go to tests/browser/artifacts/."""
from __future__ import annotations

import re

import pytest

from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.browser

LIVE = 30_000  # ms: dispatch runs in the worker, nudged on commit or by the 2 s sweep


def _login(browser, server, username, **context_kwargs):
    context = browser.new_context(base_url=server.base_url, **context_kwargs)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    return page


def _shot(page, artifacts, name):
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def test_the_whole_story(server, browser, artifacts):
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    try:
        _story(server, browser, artifacts, expect)
    except Exception:
        print(server.logs())
        raise


def _story(server, browser, artifacts, expect):
    # Sign-in page (anonymous).
    anon = browser.new_context(base_url=server.base_url).new_page()
    anon.goto("/")
    expect(anon).to_have_url(re.compile(r"/accounts/login/"))
    _shot(anon, artifacts, "01-login")

    # Everyone signs in and lands on their own page.
    agent = _login(browser, server, "alex")
    expect(agent).to_have_url(re.compile(r"/work/$"))
    expect(agent.get_by_role("heading", name="My queue")).to_be_visible()
    expect(agent.get_by_role("button", name="Online")).to_have_attribute("aria-pressed", "true")
    _shot(agent, artifacts, "02-agent-queue-empty")

    sup = _login(browser, server, "sara")
    expect(sup).to_have_url(re.compile(r"/supervise/$"))
    rita = _login(browser, server, "rita")
    expect(rita).to_have_url(re.compile(r"/portal/$"))
    _shot(rita, artifacts, "03-portal-list-empty")

    # The requester creates a work order: type, then the type's own fields.
    rita.get_by_role("link", name="New work order").first.click()
    _shot(rita, artifacts, "04-portal-type-pick")
    rita.get_by_role("link", name="New Refund request").click()
    expect(rita.locator("#time-limit")).to_contain_text("60 minutes")
    rita.get_by_label("Title").fill("Broken kettle")
    rita.get_by_label("Amount").fill("12.50")
    rita.get_by_role("button", name="Create work order").click()
    # Per-field errors: the required reference and reason are missing.
    expect(rita.locator("#id_order_ref")).to_have_class(re.compile("is-invalid"))
    expect(rita.locator("#id_reason")).to_have_class(re.compile("is-invalid"))
    _shot(rita, artifacts, "05-portal-create-errors")
    rita.get_by_label("Order reference").fill("A-1001")
    rita.get_by_label("Reason").select_option("damaged")
    rita.get_by_label("Description").fill("It arrived in pieces.")
    rita.get_by_role("button", name="Create work order").click()
    expect(rita).to_have_url(re.compile(r"/portal/tickets/\d+/$"))
    ticket_id = int(re.search(r"/portal/tickets/(\d+)/", rita.url).group(1))
    expect(rita.locator(".alert-success")).to_contain_text(f"#{ticket_id} is created")
    _shot(rita, artifacts, "06-portal-detail-new")

    # The agent sees it appear in the queue without reloading, marked new, with
    # a live countdown to its due time.
    row = agent.locator(f"#queue-row-{ticket_id}")
    expect(row).to_be_visible(timeout=LIVE)
    expect(row).to_have_class(re.compile("queue-new"))
    expect(row.get_by_text("New", exact=True)).to_be_visible()
    expect(row.locator("[data-countdown]")).to_have_text(re.compile(r"due in \d+m \d\ds"))
    _shot(agent, artifacts, "07-agent-queue-new-ticket")

    # The supervisor sees it assigned on the pool (all open) and on the board.
    sup.goto("/supervise/?state=open")
    expect(sup.locator(f"#pool-row-{ticket_id}")).to_contain_text("alex")
    _shot(sup, artifacts, "08-supervisor-pool")
    sup.goto("/supervise/board/")
    expect(sup.locator("#board-agent-alex")).to_contain_text("1 / 5")
    _shot(sup, artifacts, "09-supervisor-board")

    # The agent opens it: a lock longer than the time left is refused with the
    # rule's message; one within the limit is taken.
    row.get_by_role("link", name="Broken kettle").click()
    expect(agent.get_by_role("heading", name=f"#{ticket_id} Broken kettle")).to_be_visible()
    expect(agent.locator("#lock-form")).to_contain_text("The longest lock allowed now is")
    agent.get_by_label("Lock for (minutes)").fill("61")
    agent.get_by_role("button", name="Lock", exact=True).click()
    expect(agent.locator("#lock-form")).to_contain_text(
        "The lock is longer than the time left until the ticket is due")
    expect(agent.locator("#lock-form")).to_contain_text(re.compile(r"longest lock allowed now is (59|60) minute"))
    _shot(agent, artifacts, "10-agent-lock-refused")
    agent.get_by_label("Lock for (minutes)").fill("15")
    agent.get_by_role("button", name="Lock", exact=True).click()
    expect(agent.locator(".alert-success")).to_contain_text("The ticket is locked.")
    expect(agent.locator("#lock-state [data-countdown]")).to_have_text(re.compile(r"lock ends in 1[45]m"))

    # Comment to the requester, an internal note, then resolve.
    agent.get_by_role("textbox", name=re.compile("^Comment to the requester")).fill("We are sending the refund now.")
    agent.get_by_role("button", name="Send comment").click()
    expect(agent.locator(".alert-success")).to_contain_text("Comment sent")
    agent.get_by_label("Internal note (agents only)").fill("Checked with the warehouse: INTERNAL-ONLY")
    agent.get_by_role("button", name="Add note").click()
    expect(agent.locator(".tl-note")).to_contain_text("INTERNAL-ONLY")
    _shot(agent, artifacts, "11-agent-ticket-locked")
    agent.get_by_label("Result for the requester").fill("Refunded 12.50 to your card.")
    agent.get_by_role("button", name="Resolve").click()
    expect(agent.locator("#ticket-state")).to_contain_text("Resolved")
    _shot(agent, artifacts, "12-agent-ticket-resolved")
    agent.goto("/work/")  # back on the queue: the next arrival is marked new

    # The requester sees the result and the comment (never the note), and the
    # inbox count; then rejects.
    rita.reload()
    expect(rita.locator("#result")).to_contain_text("Refunded 12.50 to your card.")
    expect(rita.get_by_text("We are sending the refund now.")).to_be_visible()
    expect(rita.get_by_text("INTERNAL-ONLY")).to_have_count(0)
    expect(rita.locator("#unread-count")).not_to_have_text("0")
    _shot(rita, artifacts, "13-portal-detail-resolved")
    rita.get_by_role("link", name=re.compile("Inbox")).click()
    expect(rita.locator("#inbox")).to_contain_text("was resolved")
    _shot(rita, artifacts, "14-inbox")
    rita.get_by_role("button", name="Mark all read").click()
    expect(rita.locator("#unread-count")).to_have_text("0")
    rita.goto(f"/portal/tickets/{ticket_id}/")
    rita.get_by_label("Reject: it is not done").check()
    rita.get_by_label("Rating (1 = poor, 5 = excellent)").select_option("2")
    rita.get_by_label("Comment (required to reject)").fill("Only half of it arrived.")
    rita.get_by_role("button", name="Send my answer").click()
    expect(rita.locator(".alert-success")).to_contain_text("reopened")

    # It comes back to an agent with a higher priority, live in the queue.
    row = agent.locator(f"#queue-row-{ticket_id}")
    expect(row).to_be_visible(timeout=LIVE)
    expect(row).to_have_class(re.compile("queue-new"))
    expect(row.locator(".badge.prio-3")).to_have_text("High")
    _shot(agent, artifacts, "15-agent-queue-reopened")
    sup.goto("/supervise/?state=open&sort=priority")
    expect(sup.locator(f"#pool-row-{ticket_id}")).to_contain_text("High")

    row.get_by_role("link", name="Broken kettle").click()
    agent.get_by_label("Result for the requester").fill("The other half is refunded too.")
    agent.get_by_role("button", name="Resolve").click()
    expect(agent.locator("#ticket-state")).to_contain_text("Resolved")

    # The requester accepts with a rating.
    rita.reload()
    expect(rita.locator("#result")).to_contain_text("The other half is refunded too.")
    rita.get_by_label("Accept the result").check()
    rita.get_by_label("Rating (1 = poor, 5 = excellent)").select_option("5")
    rita.get_by_role("button", name="Send my answer").click()
    expect(rita.locator(".alert-success")).to_contain_text("closed")
    expect(rita.locator("#ticket-state")).to_contain_text("Closed")
    expect(rita.locator(".tl-accepted")).to_contain_text("Rating: 5/5")
    expect(rita.locator("#feedback-form")).to_have_count(0)
    _shot(rita, artifacts, "16-portal-detail-closed")
    rita.goto("/portal/")
    _shot(rita, artifacts, "17-portal-list")

    sup.goto("/supervise/board/")
    expect(sup.locator("#board-agent-alex")).to_contain_text("0 / 5")
    sup.goto(f"/work/tickets/{ticket_id}/")
    expect(sup.locator(".tl-note")).to_contain_text("INTERNAL-ONLY")
    _shot(sup, artifacts, "18-supervisor-ticket")
    agent.goto("/work/pool/")
    _shot(agent, artifacts, "19-agent-pool")
    sup.get_by_role("link", name="Deliveries").click()
    expect(sup.get_by_role("heading", name="Deliveries")).to_be_visible()
    _shot(sup, artifacts, "21-supervisor-deliveries")
    sup.get_by_role("link", name="KPIs").click()
    expect(sup.get_by_role("heading", name="KPIs")).to_be_visible()
    _shot(sup, artifacts, "22-supervisor-kpis")

    # Phone width: every main page readable at 375 px, no sideways scrolling.
    phone = {"viewport": {"width": 375, "height": 812}}
    pages = {
        "rita": ["/portal/", f"/portal/tickets/{ticket_id}/", "/portal/new/refund/",
                 "/notifications/"],
        "alex": ["/work/", "/work/pool/", f"/work/tickets/{ticket_id}/"],
        "sara": ["/supervise/", "/supervise/board/", f"/work/tickets/{ticket_id}/",
                 "/supervise/deliveries/"],
    }
    for username, urls in pages.items():
        mobile = _login(browser, server, username, **phone)
        for url in urls:
            mobile.goto(url)
            width = mobile.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{url} as {username} is {width}px wide"
            slug = url.strip("/").replace("/", "-") or "home"
            _shot(mobile, artifacts, f"phone-{username}-{slug}")
        mobile.context.close()


def test_reading_and_posting_without_javascript(server, browser, artifacts):
    from playwright.sync_api import expect

    page = _login(browser, server, "rita", java_script_enabled=False)
    page.goto("/portal/new/refund/")
    page.get_by_label("Title").fill("No-JS order")
    page.get_by_label("Order reference").fill("NJ-1")
    page.get_by_label("Amount").fill("3")
    page.get_by_label("Reason").select_option("late")
    page.get_by_role("button", name="Create work order").click()
    expect(page).to_have_url(re.compile(r"/portal/tickets/\d+/$"))
    page.get_by_label("Your comment").fill("Written without JavaScript")
    page.get_by_role("button", name="Send comment").click()
    expect(page.get_by_text("Written without JavaScript")).to_be_visible()
    page.get_by_role("button", name="Cancel work order").click()
    expect(page.locator("#ticket-state")).to_contain_text("Cancelled")
    _shot(page, artifacts, "20-portal-no-js")
