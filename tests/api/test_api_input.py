"""Bad input gets a clear 4xx and stores nothing; sessions expire; logins are rate-limited;
the first-run rule; health, metrics and audit verification."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from apikit import PASSWORD, Site, console_login, make_gov, png, serve
from openlfr.api import ApiSettings, create_app
from openlfr.governance import OrgKind, organisations
from openlfr.governance.credentials import token_digest
from openlfr.store.models import ApiToken, AuditEvent, Camera, LedgerEntry, SharedImage


def _counts(site: Site) -> tuple[int, int]:
    with site.gov.transaction() as ctx:
        return (ctx.session.execute(select(func.count()).select_from(SharedImage)).scalar_one(),
                ctx.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one())


def _meta(site: Site) -> dict[str, str]:
    return {"agreement_id": str(site.agreement_id), "category": "wanted_by_court", "warrant_ref": "WA-2029-00123",
            "reason": "warrant 9", "subject_ref": "S-99", "image_date": "2026-01-01"}


@pytest.mark.parametrize("case", ["oversized", "not_an_image", "corrupt_png", "empty", "json_body", "bad_field"])
def test_bad_uploads_are_refused_and_store_nothing(site: Site, case: str) -> None:
    before = _counts(site)
    with site.client("met") as c:
        if case == "oversized":  # the test server allows 200,000 bytes
            r = c.post("/api/images", data=_meta(site), files={"file": ("big.png", png(1, 400), "image/png")})
            expected = 413
        elif case == "not_an_image":
            r = c.post("/api/images", data=_meta(site), files={"file": ("x.png", b"GIF89a not a face", "image/png")})
            expected = 415
        elif case == "corrupt_png":
            r = c.post("/api/images", data=_meta(site),
                       files={"file": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image/png")})
            expected = 422
        elif case == "empty":
            r = c.post("/api/images", data=_meta(site), files={"file": ("x.png", b"", "image/png")})
            expected = 422
        elif case == "json_body":
            r = c.post("/api/images", json=_meta(site))
            expected = 422
        else:
            r = c.post("/api/images", data=_meta(site) | {"image_date": "yesterday"},
                       files={"file": ("x.png", png(5), "image/png")})
            expected = 422
    assert r.status_code == expected, r.text
    assert r.json()["detail"] and "Traceback" not in r.text
    assert _counts(site) == before


def test_good_upload_is_stored_and_on_the_ledger(site: Site) -> None:
    before = _counts(site)
    with site.client("met") as c:
        r = c.post("/api/images", data=_meta(site) | {"subject_ref": "S-GOOD-1"},
                   files={"file": ("ok.png", png(77), "image/png")})
        assert r.status_code == 201, r.text
        ledger = c.get("/api/ledger").json()
    assert _counts(site) == (before[0] + 1, before[1] + 1)
    assert any(row["subject_ref"] == "S-GOOD-1" and row["status"] == "live" for row in ledger)


def test_wrong_json_and_unknown_fields_are_422(site: Site) -> None:
    def cameras() -> int:
        with site.gov.transaction() as ctx:
            return ctx.session.execute(select(func.count()).select_from(Camera)).scalar_one()

    before = cameras()
    with site.client("admin") as c:
        r = c.post("/api/cameras", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        r = c.post("/api/cameras", json={"name": "c", "location": "x", "secret": 1})
        assert r.status_code == 422 and "secret" in r.json()["detail"]
    # a logged-in caller's refused input is in the audit log under their name, like any refusal
    with site.gov.transaction() as ctx:
        rows = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == "http.input.refused")
                                   .order_by(AuditEvent.seq)).scalars().all()
    assert [(r.object_id, "secret" in r.details) for r in rows][-2:] == [
        ("POST /api/cameras", False), ("POST /api/cameras", True)]
    assert all(r.actor == "admin" for r in rows[-2:])
    assert cameras() == before  # nothing stored by the refused requests


def test_expired_and_revoked_sessions_are_401(site: Site) -> None:
    with site.client() as c:
        token = c.post("/api/auth/token", json={"name": "dpo", "password": PASSWORD}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=site.url, headers=headers) as c:
        assert c.get("/api/auth/me").status_code == 200
        with site.gov.transaction() as ctx:
            ctx.session.execute(update(ApiToken).where(ApiToken.token_sha256 == token_digest(token))
                                .values(expires_at=ctx.now() - timedelta(seconds=1)))
        r = c.get("/api/auth/me")
        assert r.status_code == 401 and "expired" in r.json()["detail"]
    with site.client() as c:
        token = c.post("/api/auth/token", json={"name": "dpo", "password": PASSWORD}).json()["token"]
    with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.post("/api/auth/logout").status_code == 204
        assert c.get("/api/auth/me").status_code == 401
    # an expired console cookie sends the browser back to the login page
    with httpx.Client(base_url=site.url) as c:
        console_login(c, "dpo")
        with site.gov.transaction() as ctx:
            ctx.session.execute(update(ApiToken).where(ApiToken.kind == "session")
                                .values(expires_at=ctx.now() - timedelta(seconds=1)))
        r = c.get("/console/auditor")
        assert r.status_code == 303 and r.headers["location"] == "/login"


def test_passwords_are_argon2_and_tokens_hashed(site: Site) -> None:
    from openlfr.store.models import Credential
    with site.gov.transaction() as ctx:
        hashes = ctx.session.execute(select(Credential.password_hash)).scalars().all()
        stored = ctx.session.execute(select(ApiToken.token_sha256)).scalars().all()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert not set(site.tokens.values()) & set(stored)


def _host_admin(gov, name: str) -> None:  # noqa: ANN001
    with gov.transaction() as ctx:
        organisations.create_host_admin(ctx, "Estate Ltd", OrgKind.SITE_OPERATOR, name, PASSWORD, "test-setup")


def test_login_rate_limit(tmp_path) -> None:
    gov = make_gov(tmp_path)
    _host_admin(gov, "boss")
    app = create_app(gov, settings=ApiSettings(login_attempts=3, login_window_seconds=60))
    with serve(app) as url, httpx.Client(base_url=url) as c:
        codes = [c.post("/api/auth/token", json={"name": "boss", "password": "wrong-password"}).status_code
                 for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        r = c.post("/api/auth/token", json={"name": "boss", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # even the right password waits
        assert 'openlfr_logins_total{outcome="throttled"} 2.0' in c.get("/metrics").text
    gov.close()


def test_two_hundred_concurrent_guesses_check_at_most_the_limit(db_url: str, tmp_path) -> None:
    """200 wrong passwords for one name at once over real HTTP (SQLite and PostgreSQL): the
    attempts are counted before the password is checked, so at most the limit are checked;
    another user logs in fine meanwhile, and so does the target from another place."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta as td

    from apikit import KEY, fake_template
    from openlfr.governance import Governance, Role, login, users
    from openlfr.governance.schemas import UserCreate
    from openlfr.store.models import AuditEvent

    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, template_fn=fake_template, migrate=False)
    _host_admin(gov, "boss")
    admin = login.log_in(gov, "boss", PASSWORD, "cli", td(hours=1), "setup")[0]
    with gov.transaction() as ctx:
        users.create_user(ctx, admin, UserCreate(name="colleague", role=Role.OPERATOR_ADMIN), PASSWORD)
    app = create_app(gov, settings=ApiSettings(login_attempts=5, login_window_seconds=60))
    with serve(app) as url:
        def guess(i: int) -> int:
            with httpx.Client(base_url=url, timeout=60) as c:
                return c.post("/api/auth/token", json={"name": "boss", "password": f"guess-{i}"}).status_code

        with ThreadPoolExecutor(32) as pool:
            codes = list(pool.map(guess, range(200)))
            with httpx.Client(base_url=url, timeout=30) as c:  # a different user, meanwhile
                other = c.post("/api/auth/token", json={"name": "colleague", "password": PASSWORD})
        assert other.status_code == 200, other.text
        assert set(codes) <= {401, 429} and codes.count(401) <= 5 and codes.count(429) >= 195, codes.count(401)
    with gov.transaction() as ctx:
        checked = ctx.session.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "auth.login.failed", AuditEvent.actor == "unverified:boss")).scalar_one()
    assert checked <= 5
    # the same user, from another place, is not locked out by guesses made elsewhere
    assert login.log_in(gov, "boss", PASSWORD, "bearer", td(hours=1), "10.1.2.3") is not None
    gov.close()


def test_host_admin_only_once_then_logs_in_as_admin(tmp_path) -> None:
    from openlfr.errors import OpenLFRError
    gov = make_gov(tmp_path)
    _host_admin(gov, "boss")
    with pytest.raises(OpenLFRError, match="already has users"):
        _host_admin(gov, "boss2")
    app = create_app(gov)
    with serve(app) as url, httpx.Client(base_url=url) as c:
        token = c.post("/api/auth/token", json={"name": "boss", "password": PASSWORD}).json()["token"]
        me = c.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["role"] == "admin" and me["organisation"] == "Estate Ltd" and me["organisation_kind"] == "site_operator"
    gov.close()


def test_health_metrics_and_audit(site: Site) -> None:
    with site.client() as c:
        h = c.get("/health").json()
        assert h["status"] == "ok" and h["audit_events"] > 0
        assert "openlfr_http_requests_total" in c.get("/metrics").text
    with site.client("dpo") as c:
        v = c.post("/api/audit/verify").json()
        assert v["ok"] and v["count"] == v["head_seq"] > 0
        export = c.get("/api/audit/export")
        assert export.status_code == 200
        lines = export.text.splitlines()
        assert '"format": "openlfr-audit/1"' in lines[0] and len(lines) >= v["count"] + 1


def test_camera_addresses_at_the_api_door(site: Site) -> None:
    """Refused at registration through the API as through the services: schemes other than
    rtsp/rtsps/http/https, and hosts outside the networks the estate's admin allowed."""
    with site.client("admin") as c:
        for url, why in [("tcp://10.20.0.5:9000", "scheme 'tcp'"), ("http://127.0.0.1:8000/internal/admin", "network")]:
            r = c.post("/api/cameras", json={"name": "api-cam-bad", "location": "gate", "stream_url": url})
            assert r.status_code == 422 and why in r.json()["detail"], r.text
        r = c.put("/api/camera-networks", json={"networks": ["10.30.0.0/16"]})
        assert r.status_code == 200 and r.json() == {"networks": ["10.30.0.0/16"]}
        r = c.post("/api/cameras", json={"name": "api-cam-ok", "location": "gate", "stream_url": "rtsp://10.30.1.2/s"})
        assert r.status_code == 201, r.text
        r = c.put("/api/camera-networks", json={"networks": ["not-a-network"]})
        assert r.status_code == 422
    with site.client("met") as c:
        assert c.put("/api/camera-networks", json={"networks": ["0.0.0.0/0"]}).status_code == 403


def test_security_headers_signed_messages_and_secure_cookies(site: Site) -> None:
    with site.client() as c:
        page = c.get("/login")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert c.get("/api/public/transparency").headers["cache-control"] == "no-store"
        assert "no-store" not in c.get("/static/console.css").headers.get("cache-control", "")
        # a crafted link cannot make the console say anything
        crafted = c.get("/login", params={"error": "Session expired: call 0800 123 456 with your password"})
        assert "0800 123 456" not in crafted.text
    # messages the server itself writes are shown: a share form sent without a file
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, "met").status_code == 303
        csrf = c.get("/api/auth/me").json()["csrf_token"]
        r = c.post("/console/images", data={"csrf_token": csrf, "agreement_id": "1"}, files={"x": ("a", b"b")},
                   follow_redirects=True)
        assert "choose an image file" in r.text
    # the console's cookies are Secure unless it is reached on loopback over plain HTTP
    for host, secure in (("127.0.0.1", False), ("lfr.estate.example", True)):
        with httpx.Client(base_url=site.url, timeout=10, headers={"Host": host}) as c:
            r = c.get("/login")
            cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and "openlfr_login_csrf" in v)
            assert ("Secure" in cookie) is secure, cookie


def test_weak_passwords_are_refused_at_every_door(site: Site) -> None:
    with site.client("estate-admin") as c:
        for weak in ("password1234", "estateltd2030", "qwertyuiop123", "weak-one-2030"):
            r = c.post("/api/users", json={"name": "weak-one", "role": "reviewer", "password": weak})
            assert r.status_code == 422 and "password" in r.json()["detail"], (weak, r.text)
        r = c.post("/api/users", json={"name": "strong-one", "role": "reviewer",
                                       "password": "lantern orbit gravel cactus"})
        assert r.status_code == 201, r.text


def test_the_image_gate_at_the_console_door(site: Site) -> None:
    """The console's share form refuses what the API refuses, with the same words, and stores nothing."""
    before = _counts(site)
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, "met").status_code == 303
        csrf = c.get("/api/auth/me").json()["csrf_token"]
        fields = {"csrf_token": csrf, **_meta(site)}
        for body, words in ((b"GIF89a" + bytes(100), "only JPEG or PNG"),
                            (b"\x89PNG\r\n\x1a\n" + bytes(100), "not an image")):
            r = c.post("/console/images", data=fields, files={"file": ("x.png", body, "image/png")},
                       follow_redirects=True)
            assert words in r.text, (str(r.url), [h.headers.get("location") for h in r.history])
    assert _counts(site) == before


def test_audit_verify_through_the_api_compares_the_store(site: Site) -> None:
    with site.client("dpo") as c:
        r = c.post("/api/audit/verify")
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["store_problems"] == []
    assert "store matches the audit log" in r.json()["detail"]
