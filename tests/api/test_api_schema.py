"""Schemathesis against the served OpenAPI schema: generated requests never get a 5xx, and
every answer (status code, content type, body) is one the schema documents.

Runs on its own store and server (generated requests end deployments, add cameras, ...),
each operation called with a token of a role allowed to use it, so requests reach the
services instead of stopping at the role check.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from apikit import PASSWORD, USERS, make_gov, serve, build_store
from openlfr.api import ApiSettings, create_app

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis not installed (pip install -e .[test])")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

# The README's command calls every operation with its schema examples and a few generated
# requests (derandomised: the same each run); the slow run adds schemathesis' coverage phase
# (boundary and negative values of every parameter: about 2,500 requests, 20 s) and many more
# generated ones.
EXAMPLES, SLOW_EXAMPLES = 8, 25
# endpoints that cannot be fuzzed meaningfully: an endless stream, and one that revokes the caller
SKIP = {("GET", "/api/alerts/stream"), ("POST", "/api/auth/logout")}


def _user_for(method: str, path: str) -> str:
    if path.startswith(("/api/requests", "/api/findings")):
        return "estate-dpo"  # people's requests: the data protection officer (made in fuzz_site)
    if path.startswith(("/api/alerts", "/api/outcomes")):
        return "reviewer"
    if path.startswith("/api/escalations"):
        return "officer"
    if path.startswith("/api/users"):
        return "estate-admin"
    if path.startswith(("/api/audit", "/api/ledger", "/api/force")):
        return "dpo" if path.startswith("/api/audit") else "met"
    if path.startswith("/api/images") or (path.startswith("/api/agreements") and method == "POST"
                                           and not path.endswith("/approve")):
        return "met"
    if path.endswith(("/approve", "/authorise")):
        return "officer"
    return "admin"


@pytest.fixture(scope="module")
def fuzz_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    gov = make_gov(tmp_path_factory.mktemp("fuzz-store"))
    build_store(gov)
    from apikit import actor
    from openlfr.governance import Role, users
    from openlfr.governance.schemas import UserCreate

    estate_admin = actor(gov, "estate-admin")
    with gov.transaction() as ctx:
        users.create_user(ctx, estate_admin, UserCreate(name="estate-dpo", role=Role.DPO), PASSWORD)
    app = create_app(gov, settings=ApiSettings(max_upload_bytes=100_000, login_attempts=100_000))
    with serve(app) as url:
        with httpx.Client(base_url=url) as c:
            tokens = {n: c.post("/api/auth/token", json={"name": n, "password": PASSWORD}).json()["token"]
                      for n in [*USERS, "estate-dpo"]}
        yield url, tokens
    gov.close()


def _served_schema(fuzz_site, coverage_phase: bool):  # type: ignore[no-untyped-def]
    url, _ = fuzz_site
    loaded = schemathesis.openapi.from_url(f"{url}/openapi.json")
    loaded.config.phases.coverage.enabled = coverage_phase
    return loaded


@pytest.fixture(scope="module")
def api_schema(fuzz_site):  # type: ignore[no-untyped-def]
    return _served_schema(fuzz_site, coverage_phase=False)


@pytest.fixture(scope="module")
def api_schema_all_phases(fuzz_site):  # type: ignore[no-untyped-def]
    return _served_schema(fuzz_site, coverage_phase=True)


schema = schemathesis.pytest.from_fixture("api_schema")
schema_all_phases = schemathesis.pytest.from_fixture("api_schema_all_phases")


def _check(case, fuzz_site) -> None:  # type: ignore[no-untyped-def]
    url, tokens = fuzz_site
    if (case.method.upper(), case.operation.path) in SKIP:
        pytest.skip("not fuzzable")
    user = _user_for(case.method.upper(), case.operation.path)
    response = case.call(base_url=url, headers={"Authorization": f"Bearer {tokens[user]}"}, timeout=10)
    assert response.status_code < 500, (f"{case.method} {case.formatted_path}: {response.status_code} "
                                        f"{response.text[:300]}")
    # every answer, errors included, is one the schema documents, in the documented shape
    case.validate_response(response, checks=[status_code_conformance, content_type_conformance,
                                             response_schema_conformance])


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case, fuzz_site) -> None:  # type: ignore[no-untyped-def]
    _check(case, fuzz_site)


@pytest.mark.slow
@schema_all_phases.parametrize()
@settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_on_many_more_requests(case, fuzz_site) -> None:  # type: ignore[no-untyped-def]
    _check(case, fuzz_site)
