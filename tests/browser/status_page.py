"""The status page (/ui/) in headless Chromium, driven by Playwright: it lists the connectors with their
states, shows a failing task's trace, filters, pauses and deletes through its buttons, and never asks for one
connector at a time. Run by tests/tests/status_page.rs, which checks the outcome over REST.

    python status_page.py BASE_URL SOURCE FAILING DELETABLE TOTAL
prints one JSON object: what the page requested and how long the first full render took.
Screenshots go into $CONNECT_TEST_SCREENSHOTS when it is set.
"""
import json
import os
import shutil
import sys
import time
from urllib.parse import urlparse

from playwright.sync_api import expect, sync_playwright

base, source, failing, deletable, total = sys.argv[1:6]
total = int(total)
shots = os.environ.get("CONNECT_TEST_SCREENSHOTS")
chromium = os.environ.get("CONNECT_TEST_CHROMIUM") or shutil.which("chromium")
assert chromium, "no chromium on PATH (Debian: apt-get install chromium)"

with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1500, "height": 950})
    gets, problems = [], []
    page.on("request", lambda r: gets.append(urlparse(r.url)) if r.method == "GET" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    # A Content-Security-Policy violation is a console error too.
    # (The refused call this test makes on purpose is logged by the browser as a failed load: not a problem.)
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text} at {m.location.get('url')}")
            if m.type == "error" and "/resume" not in (m.location.get("url") or "") else None)

    started = time.monotonic()
    page.goto(base + "/ui/")
    rows = page.locator("tr.connector")
    expect(rows).to_have_count(total, timeout=30_000)
    render_ms = round((time.monotonic() - started) * 1000)

    def row(name):
        return page.locator(f'tr.connector[data-name="{name}"]')

    expect(row(source).locator(".state-cell")).to_contain_text("RUNNING", timeout=30_000)
    # The failing sink: the connector runs, its only task has failed.
    expect(row(failing).locator(".state-cell")).to_contain_text("failed", timeout=60_000)
    expect(row(failing)).to_contain_text("1 failed")
    expect(page.locator("#count-connectors")).to_have_text(str(total))
    expect(page.locator("#count-failed-tasks")).to_have_text("1")
    expect(page.locator("#tile-failed-tasks")).to_have_class("tile alert")

    # The failing task's trace, unfolded from the connector's detail row.
    row(failing).locator("button.toggle").click()
    detail = page.locator(f'tr.detail[data-name="{failing}"]')
    expect(detail).to_be_visible()
    task = detail.locator('tr.task[data-task="0"]')
    expect(task).to_contain_text("FAILED")
    task.locator("details.trace summary").click()
    expect(task.locator("pre.trace")).to_contain_text("Couldn't find or create file", timeout=10_000)
    # A secret in the config shows as its placeholder, a literal one not at all.
    expect(detail.locator("td.config-value", has_text="${env:CONNECT_RS_UI_SECRET}")).to_have_count(1)
    expect(detail.locator("td.config-value.secret")).to_have_count(1)
    expect(detail).not_to_contain_text("hunter2")
    expect(detail).not_to_contain_text("hunter3")  # a password inside a URL's query
    # The trace stays unfolded across refreshes.
    page.wait_for_timeout(2500)
    expect(task.locator("pre.trace")).to_be_visible()
    if shots:
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.path.join(shots, "status-page-failed-task.png"), full_page=False)

    # Filters: by name, then by state.
    page.fill("#filter-name", source)
    expect(page.locator("tr.connector:not([hidden])")).to_have_count(1)
    page.fill("#filter-name", "")
    page.select_option("#filter-state", "FAILED")
    expect(page.locator("tr.connector:not([hidden])")).to_have_count(1)
    expect(page.locator("tr.connector:not([hidden])")).to_have_attribute("data-name", failing)
    page.select_option("#filter-state", "")
    expect(page.locator("tr.connector:not([hidden])")).to_have_count(total)

    # Pause from the page: visible feedback, the row follows (REST is checked by the Rust side).
    row(source).locator('button[data-action="pause"]').click()
    expect(page.locator("#feedback")).to_contain_text(f"Paused {source}")
    expect(row(source).locator(".state-cell")).to_contain_text("PAUSED", timeout=15_000)
    expect(row(source).locator('button[data-action="resume"]')).to_be_enabled()

    # The records-per-second sparkline, once two samples (5 s apart) are in.
    expect(row(deletable).locator("svg.spark polyline")).to_have_count(1, timeout=20_000)
    if shots:
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.path.join(shots, "status-page.png"), full_page=False)

    # Delete asks first: dismissed, nothing happens; accepted, the connector goes.
    page.once("dialog", lambda d: d.dismiss())
    row(deletable).locator('button[data-action="delete"]').click()
    page.wait_for_timeout(500)
    expect(row(deletable)).to_have_count(1)
    page.once("dialog", lambda d: d.accept())
    row(deletable).locator('button[data-action="delete"]').click()
    expect(page.locator("#feedback")).to_contain_text(f"Deleted {deletable}")
    expect(row(deletable)).to_have_count(0, timeout=10_000)

    # An action the API refuses says why: resuming a deleted connector (the row is gone, so call it the way
    # the button does, by the page's own function).
    page.evaluate(f"resume({json.dumps(deletable)})")
    expect(page.locator("#feedback")).to_contain_text("failed")
    expect(page.locator("#feedback")).to_have_class("error")

    api_gets = [u for u in gets if not u.path.startswith("/ui")]
    per_connector = [u.path for u in api_gets if u.path.startswith("/connectors/")]
    lists = [u for u in api_gets if u.path == "/connectors"]
    browser.close()

assert not problems, problems
assert not per_connector, f"the page asked for single connectors: {per_connector[:5]}"
assert lists and all("expand=status" in u.query and "expand=info" in u.query and "expand=metrics" in u.query for u in lists), lists
print(json.dumps({"list_calls": len(lists), "render_ms": render_ms}))
