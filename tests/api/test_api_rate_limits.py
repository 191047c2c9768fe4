"""The per-address limits of the API live in the store (``rate_limits``), so API replicas share
them: enrolment guesses per client address, and how many refused credentials per address are
written to the audit log. Two apps on one store stand for two replicas; each has its own
:class:`Governance` (its own engine and pool), as separate processes would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from apikit import PASSWORD, serve
from govkit import KEY, Clock, fake_template
from openlfr.api import ApiSettings, create_app
from openlfr.api.auth import LoginLimiter
from openlfr.governance import Governance
from openlfr.store.models import AuditEvent, RateLimit

ATTEMPTS, WINDOW_S = 3, 60.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def replicas(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[list[Governance]]:
    """Two governance objects on one store, on one (hand-moved) clock."""
    govs = [Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, template_fn=fake_template, clock=clock,
                       migrate=False) for _ in range(2)]
    yield govs
    for g in govs:
        g.close()


@pytest.fixture
def urls(replicas: list[Governance]) -> Iterator[list[str]]:
    """Two API replicas (uvicorn on loopback), one per governance object."""
    settings = ApiSettings(login_attempts=ATTEMPTS, login_window_seconds=WINDOW_S)
    with ExitStack() as stack:
        yield [stack.enter_context(serve(create_app(g, settings=settings))) for g in replicas]


def guess(url: str, i: int) -> httpx.Response:
    return httpx.post(f"{url}/api/enrol", json={"token": f"enrol-guess-{i}", "name": "x", "password": PASSWORD})


def refused_audited(gov: Governance) -> int:
    with gov.reading() as ctx:
        return ctx.session.execute(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.action == "auth.refused")).scalar_one()


def test_enrolment_guesses_count_across_replicas_and_the_window_ends(urls: list[str], clock: Clock) -> None:
    a, b = urls
    assert [guess(u, i).status_code for i, u in enumerate([a, b, a])] == [403] * ATTEMPTS
    for u in (b, a):  # the limit is reached across them: both refuse now
        r = guess(u, 9)
        assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= WINDOW_S + 1, r.text
    clock.advance(seconds=WINDOW_S - 1)
    assert guess(b, 10).status_code == 429  # still inside the window
    clock.advance(seconds=2)  # the window is over: a new one opens with the next guess
    assert [guess(u, 11 + i).status_code for i, u in enumerate([b, a, b])] == [403] * ATTEMPTS
    assert guess(a, 20).status_code == 429


def test_refused_credentials_audited_per_address_across_replicas(urls: list[str], replicas: list[Governance],
                                                                 clock: Clock) -> None:
    for i in range(4):
        for u in urls:
            r = httpx.get(f"{u}/api/auth/me", headers={"Authorization": f"Bearer made-up-{i}"})
            assert r.status_code == 401
    assert refused_audited(replicas[0]) == ATTEMPTS  # 8 refused, the first 3 written, whichever replica
    clock.advance(seconds=WINDOW_S + 1)
    assert httpx.get(f"{urls[1]}/api/auth/me", headers={"Authorization": "Bearer late"}).status_code == 401
    assert refused_audited(replicas[0]) == ATTEMPTS + 1


def test_concurrent_failures_are_all_counted(replicas: list[Governance]) -> None:
    limiters = [LoginLimiter(g, ATTEMPTS, WINDOW_S) for g in replicas]
    threads, per_thread = 8, 5

    def fail(n: int) -> None:
        for _ in range(per_thread):
            limiters[n % 2].failed("enrol:ip:203.0.113.7")

    workers = [threading.Thread(target=fail, args=(n,)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    with replicas[0].reading() as ctx:
        assert ctx.session.get(RateLimit, "enrol:ip:203.0.113.7").count == threads * per_thread
    assert limiters[1].retry_after("enrol:ip:203.0.113.7") > 0


def test_concurrent_checks_let_exactly_the_limit_through(replicas: list[Governance]) -> None:
    limiters = [LoginLimiter(g, ATTEMPTS, WINDOW_S) for g in replicas]
    allowed: list[bool] = []
    lock = threading.Lock()

    def take(n: int) -> None:
        for _ in range(3):
            ok = limiters[n % 2].allow("refused:ip:203.0.113.8")
            with lock:
                allowed.append(ok)

    workers = [threading.Thread(target=take, args=(n,)) for n in range(6)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert allowed.count(True) == ATTEMPTS and len(allowed) == 18


def test_a_success_forgets_the_failures(replicas: list[Governance]) -> None:
    first, second = (LoginLimiter(g, ATTEMPTS, WINDOW_S) for g in replicas)
    for _ in range(ATTEMPTS):
        first.failed("enrol:ip:a", "enrol:ip:b")
    assert first.retry_after("enrol:ip:a") > 0 and second.retry_after("enrol:ip:b") > 0
    second.succeeded("enrol:ip:a")
    assert first.retry_after("enrol:ip:a") == 0 and first.retry_after("enrol:ip:a", "enrol:ip:b") > 0
