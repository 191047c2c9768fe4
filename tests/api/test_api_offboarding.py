"""Offboarding reaches everything at once: after an admin deactivates a user, resets their
password or changes their role, that user's console session, API token and an alert stream
they hold open all stop (the stream ends and the next alert is not delivered)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from sqlalchemy import select

from apikit import PASSWORD, Site, console_login
from openlfr.store.models import AuditEvent


class Stream:
    """An alert stream read on its own thread: every line with the time it arrived."""

    def __init__(self, client: httpx.Client) -> None:
        self.client, self.lines, self.error = client, [], None
        self.connected, self.done = threading.Event(), threading.Event()
        self.status = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.connected.wait(10), f"stream did not connect: {self.status} {self.error}"

    def _read(self) -> None:
        try:
            with self.client.stream("GET", "/api/alerts/stream", timeout=httpx.Timeout(10, read=8)) as r:
                self.status = r.status_code
                for line in r.iter_lines():
                    self.lines.append((time.monotonic(), line))
                    if line == ": connected":
                        self.connected.set()
        except Exception as err:  # noqa: BLE001 - reported by the test
            self.error = repr(err)
        finally:
            self.connected.set()
            self.done.set()

    def alert_ids(self) -> list[int]:
        ids, event = [], None
        for _, line in self.lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "alert":
                ids.append(json.loads(line.removeprefix("data: "))["alert_id"])
        return ids

    def wait_for(self, alert_id: int, seconds: float = 10) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if alert_id in self.alert_ids():
                return True
            time.sleep(0.05)
        return False


def _as_admin(site: Site, path: str, body: dict) -> None:
    with site.client("estate-admin") as c:
        r = c.post(path, json=body)
    assert r.status_code in (200, 204), r.text


@pytest.mark.parametrize("change", ["deactivate", "password", "role", "logout"])
def test_offboarding_stops_session_token_and_open_stream(site: Site, change: str) -> None:
    name = f"leaver-{change}"
    with site.client("estate-admin") as c:
        assert c.post("/api/users", json={"name": name, "role": "reviewer", "password": PASSWORD}).status_code == 201
    token = site.login(name)
    with site.bearer(token) as api, httpx.Client(base_url=site.url, timeout=10) as browser:
        assert console_login(browser, name).status_code == 303
        assert browser.get("/console/reviewer").status_code == 200
        streams = [Stream(api), Stream(browser)]  # one on the bearer token, one on the session cookie
        first = site.raise_alert()
        assert all(s.wait_for(first) for s in streams), [s.lines for s in streams]

        if change == "logout":  # the user logs out of each: the token, then the console session
            assert api.post("/api/auth/logout").status_code == 204
            csrf = browser.get("/api/auth/me").json()["csrf_token"]
            assert browser.post("/logout", data={"csrf_token": csrf}).status_code in (200, 303)
        else:
            _as_admin(site, *{"deactivate": (f"/api/users/{name}/deactivate", {"reason": "left the company"}),
                              "password": (f"/api/users/{name}/password", {"password": "a brand new password"}),
                              "role": (f"/api/users/{name}/role", {"role": "auditor"})}[change])
        changed = time.monotonic()
        second = site.raise_alert()  # announced at once: it must not reach the leaver
        for s in streams:
            assert s.done.wait(5), f"the stream is still open: {s.lines}"
            assert s.error is None, s.error
            assert second not in s.alert_ids()
            ended = [t for t, line in s.lines if line == "event: end"]
            assert ended and ended[0] - changed < 2.5
        # the session and the API token are refused from now on
        assert api.get("/api/auth/me").status_code == 401
        assert api.get("/api/alerts").status_code == 401
        r = browser.get("/console/reviewer")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        with site.bearer(token) as again:
            with again.stream("GET", "/api/alerts/stream") as r:
                assert r.status_code == 401
    if change == "logout":
        return  # logging out revokes the credentials used; the account itself is untouched
    if change == "password":
        assert site.login(name, "a brand new password")
    elif change == "role":
        with site.bearer(site.login(name)) as c:
            assert c.get("/api/auth/me").json()["role"] == "auditor"
    else:
        with site.client() as c:
            assert c.post("/api/auth/token", json={"name": name, "password": PASSWORD}).status_code == 401
    with site.gov.transaction() as ctx:
        refused = ctx.session.execute(select(AuditEvent.actor).where(AuditEvent.action == "auth.refused")).scalars()
        assert f"unverified:{name}" in set(refused)
