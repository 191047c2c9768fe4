"""The reviewer's alert queue in the console: thumbnails, candidate, state, filters, pages, the
live row, the alert page; the thumbnail only for those who may see the alert."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from apikit import LABELS, Site, console_login, organisation
from openlfr.governance import OrgKind, Role
from openlfr.store.models import AuditEvent

OTHER = "Harbour Quays Ltd"  # a site operator with a reviewer who reviews none of the site's deployments


@contextmanager
def browser(site: Site, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, name).status_code == 303
        yield c


@pytest.fixture(scope="module")
def alerts(site: Site) -> list[int]:
    """Three alerts of the site's deployment (oldest first), and a reviewer of another organisation."""
    organisation(site.gov, OTHER, OrgKind.SITE_OPERATOR, "harbour-admin",
                 staff={"harbour-reviewer": (Role.REVIEWER, None)})
    return [site.raise_alert(entry=i % 2, score=0.7 + i / 100, announce=False) for i in range(3)]


def _audits(site: Site, action: str) -> int:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.action == action)).scalar_one()


def test_queue_rows_show_thumbnail_candidate_and_state(site: Site, alerts: list[int]) -> None:
    with browser(site, "reviewer") as c:
        page = c.get("/console/reviewer")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        newest = alerts[-1]
        row = page.text.split(f'data-alert="{newest}"', 1)[1].split("</tr>", 1)[0]
        assert f'src="/console/alerts/{newest}/thumb"' in row
        assert LABELS[0] in row  # the candidate's label (the newest alert is of entry 0)
        assert "north-gate" in row and "0.720" in row
        assert "pending · 0 of 2 confirmations" in row
        # the live stream inserts the same row
        live = c.get(f"/console/alerts/{newest}/row")
        assert live.status_code == 200 and f'src="/console/alerts/{newest}/thumb"' in live.text
        assert "pending · 0 of 2 confirmations" in live.text and "north-gate" in live.text
        # the alert page shows the same details
        one = c.get(f"/console/alerts/{newest}").text
        assert "0 of 2 confirmations" in one and LABELS[0] in one and "north-gate" in one


def test_queue_filters_and_pages(site: Site, alerts: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    from openlfr.api import console_alerts

    with browser(site, "reviewer") as c:
        verified = c.get("/console/reviewer", params={"state": "true"}).text
        assert not any(f'data-alert="{a}"' in verified for a in alerts)
        opened = c.get("/console/reviewer", params={"state": "open", "camera": site.camera_id,
                                                    "deployment": site.deployment_id}).text
        assert all(f'data-alert="{a}"' in opened for a in alerts)
        assert c.get("/console/reviewer", params={"deployment": 999999}).text.count("data-alert=") == 0
        assert c.get("/console/reviewer", params={"until": "2000-01-01"}).text.count("data-alert=") == 0
        # bad input: one line in the page, not JSON
        bad = c.get("/console/reviewer", params={"since": "yesterday"})
        assert bad.status_code == 200 and "invalid input: since" in bad.text
        assert "text/html" in bad.headers["content-type"]
        # server-side pages, newest first, keeping the filters
        monkeypatch.setattr(console_alerts, "PER_PAGE", 2)
        first = c.get("/console/reviewer", params={"state": "open"}).text
        assert first.count("data-alert=") == 2 and f'data-alert="{alerts[-1]}"' in first
        assert "state=open&amp;page=2" in first and 'data-live="0"' in first  # filtered: no live insertions
        last = c.get("/console/reviewer", params={"state": "open", "page": 2}).text
        assert last.count("data-alert=") >= 1 and f'data-alert="{alerts[-1]}"' not in last


def test_thumbnail_only_for_who_may_see_the_alert(site: Site, alerts: list[int]) -> None:
    alert = alerts[0]
    with browser(site, "reviewer") as c:
        before = _audits(site, "alert.view_crop")
        r = c.get(f"/console/alerts/{alert}/thumb")
        assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"] == "no-store"
        img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and max(img.shape[:2]) <= 96
        assert _audits(site, "alert.view_crop") == before + 1  # each view audited
    refused_before = _audits(site, "alert.view_crop.refused")
    with browser(site, "harbour-reviewer") as c:
        r = c.get(f"/console/alerts/{alert}/thumb")
        assert r.status_code == 403 and not r.headers["content-type"].startswith("image/")
        assert _audits(site, "alert.view_crop.refused") == refused_before + 1
        row = c.get(f"/console/alerts/{alert}/row")
        assert row.status_code == 403 and "does not review" in row.text and "north-gate" not in row.text
        page = c.get(f"/console/alerts/{alert}")
        assert page.status_code == 403 and "does not review" in page.text and LABELS[0] not in page.text
        assert f'data-alert="{alert}"' not in c.get("/console/reviewer").text
    with httpx.Client(base_url=site.url) as public:
        r = public.get(f"/console/alerts/{alert}/thumb")
        assert r.status_code in (303, 401) and not r.headers.get("content-type", "").startswith("image/")
