"""Fixtures for the API tests: one real server (uvicorn on loopback) over a prepared store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from apikit import Site, bearer_tokens, build_store, make_gov, serve
from openlfr.api import ApiSettings, create_app


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One server for the whole API test session (tests that change state make their own objects)."""
    root = tmp_path_factory.mktemp("api-store")
    gov = make_gov(root)
    dep, cam, entries, ag, snap = build_store(gov)
    app = create_app(gov, settings=ApiSettings(max_upload_bytes=200_000, login_attempts=1000))
    with serve(app) as url:
        s = Site(url, gov, app, dep, cam, entries, ag, snap, bearer_tokens(url))
        yield s
    gov.close()
