"""Effectiveness reports as pages: a deployment's (staff who may see it; the public for a public
deployment) with human labels and inline plots, and the open-set evaluation reports with theirs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from apikit import LABELS, SUBJECT_REFS, Site, console_login, organisation
from openlfr.governance import OrgKind, Role

RAW_FIELDS = ("false_alerts_per_1000_faces_searched", "verified_true", "observed_false_alert_rate_ci95",
              "predicted_vs_observed", "people_passes")


@pytest.fixture(scope="module")
def outsider(site: Site) -> str:
    """An operator admin of an organisation with no deployment."""
    organisation(site.gov, "Pier Walk Ltd", OrgKind.SITE_OPERATOR, "pier-admin",
                 staff={"pier-ops": (Role.OPERATOR_ADMIN, None)})
    return "pier-ops"


@contextmanager
def _client(site: Site, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, name).status_code == 303
        yield c


def test_deployment_report_page(site: Site) -> None:
    site.raise_alert(announce=False)
    with site.client() as public:
        figures = public.get(f"/api/public/deployments/{site.deployment_id}/report").json()
    with _client(site, "admin") as c:
        listing = c.get("/console/reports").text
        assert f'href="/console/deployments/{site.deployment_id}/report"' in listing
        page = c.get(f"/console/deployments/{site.deployment_id}/report")
    assert page.status_code == 200
    for words in ("Faces searched", "People passes", "False alerts per 1,000 faces searched",
                  "Observed false-alert rate", "95% interval", "What happened after verified alerts", "arrested"):
        assert words in page.text, words
    assert not any(raw in page.text for raw in RAW_FIELDS)
    assert page.text.count("<svg") >= 1 and 'id="verdict"' in page.text
    assert f'<div class="value">{figures["alerts"]:,}</div><div class="label">Alerts</div>' in page.text
    assert figures["predicted_vs_observed"] in page.text


def test_public_report_is_the_same_page_without_names(site: Site) -> None:
    with site.client() as public:
        page = public.get(f"/transparency/deployments/{site.deployment_id}/report")
    assert page.status_code == 200 and "Faces searched" in page.text and "<svg" in page.text
    assert not any(raw in page.text for raw in RAW_FIELDS)
    assert not any(s in page.text for s in (*LABELS, *SUBJECT_REFS, site.snapshot_hash))
    assert "Log out" not in page.text  # no console session on a public page


def test_report_refused_to_who_may_not_see_the_deployment(site: Site, outsider: str) -> None:
    with _client(site, outsider) as c:
        assert f'data-deployment="{site.deployment_id}"' not in c.get("/console/reports").text
        page = c.get(f"/console/deployments/{site.deployment_id}/report")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert f"no deployment {site.deployment_id} that {outsider} may see" in page.text
    assert "Faces searched" not in page.text
    with httpx.Client(base_url=site.url) as public:
        assert public.get(f"/console/deployments/{site.deployment_id}/report").status_code in (303, 401)


def test_evaluation_report_with_its_plots(site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openlfr.evaluation import plots

    folder = tmp_path / "lfw-2026-12"
    folder.mkdir()
    plots.cmc_plot({"plain": [0.8, 0.9, 0.95]}, folder / "cmc.png")
    result = {"people": 12, "images": 40, "images_without_face": 1, "pipeline": "mmod+resnet",
              "gains": [{"config": "plain", "rank1": 0.8, "fnir_at_fpir_1pct": 0.25, "fnir_at_fpir_0_1pct": 0.4,
                         "refusal_rate_mated": 0.0}],
              "recommended": {"config": "plain"}, "kept_gains": [],
              "calibration_check": {"plain": {"config": "plain", "pooled": [
                  {"method": "per size", "target_fpir": 0.01, "observed_fpir": 0.012, "ratio": 1.2,
                   "mean_predicted_fnir": 0.25, "mean_observed_fnir": 0.27}]}},
              "plots": {"cmc": "cmc.png", "evil": "../../etc/passwd"}}
    (folder / "report.json").write_text(json.dumps(result))
    monkeypatch.setattr(site.app.state.settings, "evaluation_reports", tmp_path)
    with _client(site, "reviewer") as c:
        assert 'href="/console/evaluation/lfw-2026-12"' in c.get("/console/reports").text
        page = c.get("/console/evaluation/lfw-2026-12")
        assert page.status_code == 200 and "Missed at 1% false alerts" in page.text and "25.0%" in page.text
        assert 'src="/console/evaluation/lfw-2026-12/plots/cmc"' in page.text
        png = c.get("/console/evaluation/lfw-2026-12/plots/cmc")
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")
        assert c.get("/console/evaluation/lfw-2026-12/plots/evil").status_code == 404
        assert c.get("/console/evaluation/..%2F..%2Fetc/plots/cmc").status_code == 404
        missing = c.get("/console/evaluation/nope")
        assert missing.status_code == 404 and "no evaluation report" in missing.text
    with httpx.Client(base_url=site.url) as public:
        assert public.get("/console/evaluation/lfw-2026-12/plots/cmc").status_code in (303, 401)


def test_report_words_and_plots_from_counts() -> None:
    """The page's figures and plots come from the report: intervals, target, upper bound; no NaN."""
    from openlfr.api.console_reports import report_context
    from openlfr.evaluation.deployment_report import summarise

    r = summarise(7, "ended", 0.6, 0.001, 0.12, 2000, ["true", "false", "true", "unsure", None], people_passes=900)
    ctx = report_context(r)
    rates = {label: (value, ci) for label, value, ci, _ in ctx["rates"]}
    assert rates["False alerts per 1,000 faces searched"][0] == "0.5"
    low, high = r.observed_false_alert_rate_ci95
    assert rates["Observed false-alert rate (per face searched)"] == ("0.0005", f"{low:.3g} – {high:.3g}")
    assert rates["Precision (true among settled alerts)"][0] == "66.7%"
    rate_plot = str(ctx["plots"]["rate"])
    assert "target 0.001" in rate_plot and "upper bound 0.0015" in rate_plot and "95% interval" in rate_plot
    assert ">2</text>" in str(ctx["plots"]["alerts"])  # two verified true
    empty = report_context(summarise(8, "live", 0.6, None, None, 0, []))
    shown = str([empty["tiles"], empty["rates"], empty["plots"]]).lower()
    assert "nan" not in shown and empty["plots"]["rate"] == ""
