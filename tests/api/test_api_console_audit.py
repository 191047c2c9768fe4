"""The console's audit log: filters, pages, a readable event view; auditors only (the rule is
in :func:`openlfr.governance.audit_log.search`)."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import func, select

from apikit import ESTATE, STAFF, Site, actor, console_login
from openlfr.governance import PermissionDenied
from openlfr.governance.audit_log import AuditQuery, search
from openlfr.store.models import AuditEvent


@pytest.fixture(scope="module")
def dpo(site: Site) -> httpx.Client:
    """The oversight body's auditor, logged in to the console."""
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, "dpo").status_code == 303
        yield c


def _rows(page: str) -> list[tuple[str, str, str]]:
    """(actor, action, details cell) of each event row."""
    return re.findall(r'<tr data-seq="\d+"[^>]*><td>\d+</td><td>[^<]*</td><td>([^<]*)</td>\s*'
                      r'<td class="action"><code>([^<]*)</code></td><td>[^<]*</td>\s*<td>(.*?)</td></tr>',
                      page, re.DOTALL)


def test_events_are_readable_and_paged(site: Site, dpo: httpx.Client) -> None:
    with site.gov.transaction() as ctx:
        total = ctx.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    page = dpo.get("/console/auditor")
    assert page.status_code == 200
    rows = _rows(page.text)
    assert len(rows) == page.text.count("data-seq=") == 25 and total > 25
    assert f"of {total}" in page.text and "page=2" in page.text
    with_details = [cell for *_, cell in rows if "<dl" in cell]
    assert with_details and all("<dt>" in c and "{&#34;" not in c and '{"' not in c for c in with_details)
    second = dpo.get("/console/auditor", params={"page": 2}).text
    assert len(_rows(second)) == second.count("data-seq=") == min(25, total - 25)
    assert not set(re.findall(r'data-seq="(\d+)"', second)) & set(re.findall(r'data-seq="(\d+)"', page.text))


def test_filters(site: Site, dpo: httpx.Client) -> None:
    rows = _rows(dpo.get("/console/auditor", params={"action": "deployment."}).text)
    assert rows and all(a.startswith("deployment.") for _, a, _ in rows)
    rows = _rows(dpo.get("/console/auditor", params={"actor": "officer"}).text)
    assert rows and {who for who, _, _ in rows} == {"officer"}
    estate = {name for name, (_, org, _) in STAFF.items() if org == ESTATE} | {"estate-admin"}
    rows = _rows(dpo.get("/console/auditor", params={"organisation": ESTATE}).text)
    assert rows and {who for who, _, _ in rows} <= estate
    assert _rows(dpo.get("/console/auditor", params={"until": "2000-01-01"}).text) == []
    assert _rows(dpo.get("/console/auditor", params={"since": "2000-01-01", "action": "user.create"}).text)
    bad = dpo.get("/console/auditor", params={"since": "last week"})
    assert bad.status_code == 200 and "invalid input: since" in bad.text and "text/html" in bad.headers["content-type"]
    backwards = dpo.get("/console/auditor", params={"since": "2030-01-02", "until": "2030-01-01"})
    assert "the first day is after the last day" in backwards.text


def test_only_auditors_read_the_log(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, "admin").status_code == 303
        assert c.get("/console/auditor").status_code == 403
    with httpx.Client(base_url=site.url) as public:
        assert public.get("/console/auditor").status_code in (303, 401)
    # the rule is the service's: every door gets it, and the refusal is audited
    reviewer, auditor = actor(site.gov, "reviewer"), actor(site.gov, "dpo")
    with pytest.raises(PermissionDenied, match="audit.read needs role auditor"):
        with site.gov.transaction() as ctx:
            search(ctx, reviewer, AuditQuery())
    with site.gov.transaction() as ctx:
        refused = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == "audit.read.refused")
                                      .order_by(AuditEvent.seq.desc())).scalars().first()
        assert refused is not None and refused.actor == "reviewer"
        rows, total = search(ctx, auditor, AuditQuery(action="audit.read"), 0, 5)
    assert total >= 1 and rows[0].action == "audit.read.refused"
