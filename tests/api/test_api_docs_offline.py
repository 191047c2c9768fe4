"""``/docs`` (Swagger UI) and ``/redoc`` work without internet: the pages name no other host,
and every script, style and icon they reference is served by the app itself (real HTTP). In
chromium, with every request to another host blocked, Swagger UI renders the API's operations."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from apikit import Site

# what a page makes the browser fetch: src/href attributes, and the schema Swagger UI / ReDoc load
REFERENCES = re.compile(r"""(?:\bsrc|\bhref|\bspec-url)\s*=\s*["']([^"']+)["']|\burl:\s*["']([^"']+)["']""")
KINDS = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


def _references(html: str) -> list[str]:
    return [a or b for a, b in REFERENCES.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_use_only_this_server(site: Site, page: str) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as c:
        r = c.get(page, headers={"Accept": "text/html"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", r.text, re.I), "the page names another host"
        refs = _references(r.text)
        # Swagger UI: its script, its style, the icon and the schema; ReDoc: its script, the icon, the schema
        assert len(refs) >= (4 if page == "/docs" else 3), refs
        for ref in refs:
            absolute = urljoin(f"{site.url}{page}", ref)
            assert urlsplit(absolute).netloc == urlsplit(site.url).netloc, ref
            asset = c.get(absolute)
            assert asset.status_code == 200, (ref, asset.status_code)
            suffix = Path(urlsplit(ref).path).suffix
            assert KINDS.get(suffix, "") in asset.headers["content-type"], (ref, asset.headers["content-type"])
            assert len(asset.content) > 1000, ref  # the real bundle, not an empty stand-in


@pytest.mark.parametrize("page,ready", [("/docs", ".opblock-summary-path"),
                                        ("/redoc", "[data-section-id^='operation']")])
def test_docs_render_in_a_browser_cut_off_from_other_hosts(browser, site: Site, page: str,  # type: ignore[no-untyped-def]
                                                           ready: str) -> None:
    context = browser.new_context()
    ours = urlsplit(site.url).netloc
    elsewhere: list[str] = []

    def route(r):  # type: ignore[no-untyped-def]
        if urlsplit(r.request.url).netloc in (ours, ""):
            return r.continue_()
        elsewhere.append(r.request.url)
        return r.abort()

    context.route("**/*", route)
    tab = context.new_page()
    tab.goto(f"{site.url}{page}")
    tab.wait_for_selector(ready, timeout=30_000)
    text = tab.content()
    assert "/api/auth/token" in text and "/api/alerts" in text  # the operations are listed
    assert elsewhere == [], elsewhere
    context.close()
