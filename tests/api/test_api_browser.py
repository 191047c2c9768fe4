"""Browser test: Debian's chromium driven by Playwright against the real server.

Two reviewers log in; a live alert arrives on the first one's queue by Server-Sent Events;
both confirm it on the alert page; the public page then shows one more verified alert.
Screenshots go to ``artifacts/`` (git-ignored). Skips when chromium or Playwright is absent
(``source .ci/browser.sh`` installs both).
"""

from __future__ import annotations

from pathlib import Path

from apikit import LABELS, PASSWORD, Site

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def _login(browser, site: Site, name: str):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1100, "height": 800}).new_page()
    page.goto(f"{site.url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/console/reviewer")
    return page


def _verified(page, site: Site) -> int:  # type: ignore[no-untyped-def]
    page.goto(f"{site.url}/transparency")
    return int(page.locator(f"section[data-deployment='{site.deployment_id}'] dd.verified").inner_text())


def test_reviewers_confirm_live_alert_and_public_page_updates(browser, site: Site) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    public = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    verified_before = _verified(public, site)

    first = _login(browser, site, "reviewer")
    first.wait_for_selector("#live:has-text('Live')")  # the SSE stream is open
    alert_id = site.raise_alert(score=0.83)
    # a generous timeout: CI machines are busy
    row = first.wait_for_selector(f"#queue tr[data-alert='{alert_id}']", timeout=30_000)
    assert "pending" in row.inner_text()
    # the live row has the page's columns: thumbnail, candidate, score, camera, time, state
    assert row.query_selector("td.thumb img") is not None and LABELS[0] in row.inner_text()
    assert "0 of 2 confirmations" in row.inner_text() and "north-gate" in row.inner_text()
    first.screenshot(path=str(ARTIFACTS / "reviewer-queue.png"), full_page=True)

    first.click(f"#queue tr[data-alert='{alert_id}'] a")
    first.wait_for_url(f"{site.url}/console/alerts/{alert_id}")
    first.fill("textarea[name=note]", "same person as the watchlist image")
    first.click("button[value=confirm]")
    first.wait_for_selector("h1 .status-confirmed_once")
    first.screenshot(path=str(ARTIFACTS / "reviewer-alert-confirmed-once.png"), full_page=True)
    assert _verified(public, site) == verified_before  # one reviewer is not enough

    second = _login(browser, site, "reviewer2")
    second.goto(f"{site.url}/console/alerts/{alert_id}")
    second.wait_for_selector("h1 .status-pending")  # decides blind to the first reviewer's decision
    assert "same person as the watchlist image" not in second.content()
    second.fill("textarea[name=note]", "agree")
    second.click("button[value=confirm]")
    second.wait_for_selector("h1 .status-verified")
    second.screenshot(path=str(ARTIFACTS / "reviewer-alert-verified.png"), full_page=True)

    assert _verified(public, site) == verified_before + 1
    public.screenshot(path=str(ARTIFACTS / "public-transparency.png"), full_page=True)
