"""The login limiter at every door (the Python service, ``POST /api/auth/token``, the console's
log-in form, ``openlfr login``), and login failures shown in the console's page.

The limiter (``openlfr.governance.throttle``) counts failures per user name **and** place, with
a lockout that doubles, plus a much higher ceiling per place whatever the names. Here: 3
failures per name and place, 8 per place, in a 60 s window. Time passing is simulated by
moving the stored throttle times back (the lockouts are read from the database)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import typer
from sqlalchemy import delete, select
from typer.testing import CliRunner

from apikit import KEY, PASSWORD, console_login, fake_template, serve
from openlfr.cli import auth as cli_auth
from openlfr.api import ApiSettings, create_app
from openlfr.governance import Governance, OrgKind, Policy, Role, login, organisations, users
from openlfr.governance.errors import Throttled
from openlfr.governance.schemas import UserCreate
from openlfr.store.models import LoginThrottle

LIMIT, WINDOW, CEILING = 3, 60, 8
WRONG = "not the password at all"


@dataclass
class Door:
    """One way in: ``attempt(name, password)`` gives ``("ok" | "wrong" | "locked", wait in s or None)``."""

    name: str
    attempt: Callable[[str, str], tuple[str, float | None]]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Governance, str]]:
    """A store with a host admin and a reviewer, served with the test limits; yields (gov, url)."""
    root = tmp_path_factory.mktemp("login-store")
    gov = Governance(f"sqlite:///{root / 'openlfr.db'}", blob_root=root / "blobs", key=KEY, template_fn=fake_template,
                     policy=Policy(login_attempts=LIMIT, login_window_seconds=WINDOW, login_place_attempts=CEILING))
    with gov.transaction() as ctx:
        organisations.create_host_admin(ctx, "Estate Ltd", OrgKind.SITE_OPERATOR, "boss", PASSWORD, "test-setup")
    boss = login.log_in(gov, "boss", PASSWORD, "cli", timedelta(hours=1), "setup")
    assert boss is not None
    with gov.transaction() as ctx:
        users.create_user(ctx, boss[0], UserCreate(name="reviewer", role=Role.REVIEWER), PASSWORD)
    app = create_app(gov, settings=ApiSettings(login_attempts=LIMIT, login_window_seconds=WINDOW,
                                               login_address_attempts=CEILING))
    with serve(app) as url:
        yield gov, url
    gov.close()


@pytest.fixture(autouse=True)
def _fresh_counts(store: tuple[Governance, str]) -> None:
    with store[0].transaction() as ctx:
        ctx.session.execute(delete(LoginThrottle))


def _time_passes(gov: Governance, seconds: float) -> None:
    """As if ``seconds`` had passed for the limiter: every stored window and lockout moves back."""
    with gov.transaction() as ctx:
        for row in ctx.session.execute(select(LoginThrottle)).scalars():
            row.window_start -= timedelta(seconds=seconds)
            if row.locked_until is not None:
                row.locked_until -= timedelta(seconds=seconds)


WAIT = re.compile(r"try again in (\d+) (s|min|h)\b")


def _wait_in_text(text: str) -> float | None:
    found = WAIT.search(text)
    return int(found[1]) * {"s": 1, "min": 60, "h": 3600}[found[2]] if found else None


def _service(gov: Governance) -> Callable[[str, str], tuple[str, float | None]]:
    def attempt(name: str, password: str) -> tuple[str, float | None]:
        try:
            ok = login.log_in(gov, name, password, "bearer", timedelta(hours=1), "ip:10.9.8.7")
        except Throttled as err:
            return "locked", err.retry_after
        return ("ok" if ok else "wrong"), None
    return attempt


def _api(url: str) -> Callable[[str, str], tuple[str, float | None]]:
    def attempt(name: str, password: str) -> tuple[str, float | None]:
        r = httpx.post(f"{url}/api/auth/token", json={"name": name, "password": password}, timeout=30)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            return "locked", float(r.headers["retry-after"])
        assert r.status_code in (200, 401), r.text
        return ("ok" if r.status_code == 200 else "wrong"), None
    return attempt


def _console(url: str) -> Callable[[str, str], tuple[str, float | None]]:
    def attempt(name: str, password: str) -> tuple[str, float | None]:
        with httpx.Client(base_url=url, timeout=30, headers={"Accept": "text/html"}) as c:
            r = console_login(c, name, password)
        if r.status_code == 303:
            return "ok", None
        # every failure is the log-in page again, with the reason in it and a fresh form
        assert r.headers["content-type"].startswith("text/html"), (r.status_code, r.text)
        assert 'role="alert"' in r.text and 'name="csrf_token"' in r.text and not r.text.lstrip().startswith("{")
        if r.status_code == 429:
            wait = _wait_in_text(r.text)
            assert wait is not None and int(r.headers["retry-after"]) >= 1, r.text
            return "locked", wait
        assert r.status_code == 401 and "wrong user name or password" in r.text, r.text
        return "wrong", None
    return attempt


def _cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str, str], tuple[str, float | None]]:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """openlfr (test)"""

    cli_auth.register(app)
    runner = CliRunner()

    def attempt(name: str, password: str) -> tuple[str, float | None]:
        r = runner.invoke(app, ["login", name], env={"OPENLFR_PASSWORD": password})
        if r.exit_code == 0:
            return "ok", None
        assert r.exit_code != 0 and "Traceback" not in r.output, r.output
        if "try again in" in r.output:
            return "locked", _wait_in_text(r.output)
        assert "wrong name or password" in r.output, r.output
        return "wrong", None
    return attempt


@pytest.fixture(params=["service", "api", "console", "cli"])
def door(request: pytest.FixtureRequest, store: tuple[Governance, str], monkeypatch: pytest.MonkeyPatch,
         tmp_path: Path) -> Door:
    gov, url = store
    if request.param == "cli":
        # the command line opens the same store, with the same limits (from the environment)
        monkeypatch.setenv("OPENLFR_DATABASE_URL", str(gov.engine.url))
        monkeypatch.setenv("OPENLFR_CREDENTIALS_FILE", str(tmp_path / "credentials.json"))
        for key, value in {"LOGIN_ATTEMPTS": LIMIT, "LOGIN_WINDOW_SECONDS": WINDOW,
                           "LOGIN_PLACE_ATTEMPTS": CEILING}.items():
            monkeypatch.setenv(f"OPENLFR_{key}", str(value))
        monkeypatch.delenv("OPENLFR_TOKEN", raising=False)
        return Door("cli", _cli(monkeypatch, tmp_path))
    attempts = {"service": lambda: _service(gov), "api": lambda: _api(url), "console": lambda: _console(url)}
    return Door(request.param, attempts[request.param]())


def test_guesses_at_a_made_up_name_do_not_lock_out_a_real_user(door: Door) -> None:
    """Behind one address (a proxy), one person's typos at a name lock out that name only."""
    results = [door.attempt("no-such-user", WRONG)[0] for _ in range(LIMIT + 1)]
    assert results == ["wrong"] * LIMIT + ["locked"]
    assert door.attempt("reviewer", PASSWORD)[0] == "ok"  # same address, another name
    assert door.attempt("no-such-user", WRONG)[0] == "locked"  # still locked


def test_the_same_name_and_address_backs_off(door: Door, store: tuple[Governance, str]) -> None:
    gov = store[0]
    assert [door.attempt("reviewer", WRONG)[0] for _ in range(LIMIT)] == ["wrong"] * LIMIT
    state, first = door.attempt("reviewer", PASSWORD)  # even the right password waits
    assert state == "locked" and first is not None and 0 < first <= WINDOW + 1
    _time_passes(gov, WINDOW + 1)  # the first lockout is over ...
    assert [door.attempt("reviewer", WRONG)[0] for _ in range(LIMIT)] == ["wrong"] * LIMIT
    state, second = door.attempt("reviewer", PASSWORD)
    # ... the next is twice as long
    assert state == "locked" and second is not None and WINDOW < second <= 2 * WINDOW + 1
    _time_passes(gov, 2 * WINDOW + 1)
    assert door.attempt("reviewer", PASSWORD)[0] == "ok"


def test_the_address_ceiling_stops_a_spray_of_names(door: Door) -> None:
    """One guess at each of many names from one address: the address's ceiling stops them,
    while staff logging in successfully from that address never use it up."""
    for _ in range(CEILING + 2):
        assert door.attempt("reviewer", PASSWORD)[0] == "ok"
    results = [door.attempt(f"sprayed-name-{i}", WRONG)[0] for i in range(CEILING + 1)]
    assert results == ["wrong"] * CEILING + ["locked"]
    assert door.attempt("reviewer", PASSWORD)[0] == "locked"  # the whole address waits now


def test_place_ceiling_and_its_give_back_on_each_database(db_url: str, tmp_path: Path) -> None:
    """The place's count (SQLite and PostgreSQL): successes give their attempt back, failures
    at any names add up to the ceiling."""
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, template_fn=fake_template, migrate=False,
                     policy=Policy(login_attempts=LIMIT, login_window_seconds=WINDOW, login_place_attempts=4))
    with gov.transaction() as ctx:
        organisations.create_host_admin(ctx, "Estate Ltd", OrgKind.SITE_OPERATOR, "boss", PASSWORD, "test-setup")
    attempt = _service(gov)
    assert [attempt("boss", PASSWORD)[0] for _ in range(6)] == ["ok"] * 6
    assert [attempt(f"guess-{i}", WRONG)[0] for i in range(5)] == ["wrong"] * 4 + ["locked"]
    state, wait = attempt("boss", PASSWORD)
    assert state == "locked" and wait is not None and 0 < wait <= WINDOW
    gov.close()


# --- the console's log-in and enrolment pages say what went wrong ---------------------------
def _form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found[1]


def test_two_login_tabs_both_work_and_a_stale_one_gets_a_fresh_form(store: tuple[Governance, str]) -> None:
    url = store[1]
    with httpx.Client(base_url=url, timeout=30, headers={"Accept": "text/html"}) as c:
        first, second = _form_token(c.get("/login").text), _form_token(c.get("/login").text)
        # the second tab did not void the first: the first one's form logs in
        r = c.post("/login", data={"name": "reviewer", "password": PASSWORD, "csrf_token": first})
        assert r.status_code == 303 and r.headers["location"] == "/console/reviewer"
        # the other tab, posted after that log-in ended its form: a page that says so, and a fresh form
        c.cookies.delete("openlfr_session")
        r = c.post("/login", data={"name": "reviewer", "password": PASSWORD, "csrf_token": second})
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
        assert "the log-in form had expired" in r.text and "openlfr_session" not in str(r.headers)
        assert 'value="reviewer"' in r.text  # the name is kept; the password is not
        r = c.post("/login", data={"name": "reviewer", "password": PASSWORD, "csrf_token": _form_token(r.text)})
        assert r.status_code == 303


def test_enrolment_page_errors_are_shown_in_the_page(store: tuple[Governance, str]) -> None:
    url = store[1]
    form = {"token": "a made-up enrolment token", "name": "newcomer", "password": PASSWORD}
    with httpx.Client(base_url=url, timeout=30, headers={"Accept": "text/html"}, follow_redirects=True) as c:
        r = c.post("/enrol", data=form | {"csrf_token": "stale"})  # no form cookie at all
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
        assert "the enrolment form had expired" in r.text
        token = _form_token(r.text)  # the fresh form works
        texts = [c.post("/enrol", data=form | {"csrf_token": token}).text for _ in range(LIMIT + 1)]
    for text in texts[:LIMIT]:
        assert 'role="alert"' in text and "enrolment token" in text, text
    wait = _wait_in_text(texts[LIMIT])
    assert wait is not None and 0 < wait <= WINDOW + 1, texts[LIMIT]
