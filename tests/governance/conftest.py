"""Fixtures for the governance tests: a fresh, migrated store per test (``db_url``, from the
top-level conftest: SQLite, and PostgreSQL when ``OPENLFR_TEST_POSTGRES_URL`` is set)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from govkit import KEY, Clock, Estate, fake_template
from openlfr.governance import Governance, Policy


@pytest.fixture
def clock() -> Clock:
    """The services' clock, starting at :data:`T0`."""
    return Clock()


@pytest.fixture
def gov(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Governance]:
    """A :class:`Governance` on the fresh database with a fake template function."""
    g = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, policy=Policy(), template_fn=fake_template,
                   clock=clock, migrate=False)
    yield g
    g.close()


ROLES = ("admin", "supplier", "officer", "officer2", "auditor", "reviewer", "estate_admin", "force_admin",
         "oversight_admin")


@pytest.fixture
def estate(gov: Governance, clock: Clock, db_url: str, tmp_path: Path, store_snapshots) -> Estate:  # noqa: ANN001
    """An :class:`Estate` with its users already created: on SQLite built once (on the fixed
    clock, so every build is the same) and copied into each test's fresh store; on PostgreSQL
    built each time (cheaper there than copying a database)."""
    from openlfr.audit.checkpoints import signing_key_path

    e = Estate(gov, clock)

    def build() -> dict[str, object]:
        e.setup_users()
        gov.close()  # SQLite: the last connection folds the write-ahead log into the file
        return {role: getattr(e, role) for role in ROLES}

    gov.close()
    blobs = tmp_path / "blobs"
    actors = store_snapshots.restore_or_build(f"estate-{clock.now.isoformat()}-{gov.policy!r}", db_url,
                                              [blobs, signing_key_path(blobs)], build, copy_postgres=False)
    for role, actor in actors.items():
        setattr(e, role, actor)
    return e


# test_gov_cli.py's rule tests, whose PostgreSQL runs are marked slow (they run in CI's
# `pytest -m slow`, not in the default run): each command calls the same services as the other
# doors, and the services' rules run on both databases in test_gov_rules, _parties, _grounds,
# _hygiene, _throttle and tests/api, so the CLI adds no query path (locks, JSON, dates) of its
# own. The tests there that touch the database themselves (the full flow's raw updates and audit
# verify, the credentials file per store, audit verify on a missing store) and any new test
# keep running on both.
CLI_RULES_SQLITE_BY_DEFAULT = {
    "test_cli_bad_input_is_one_line", "test_a_command_without_a_credential_is_refused_and_changes_nothing",
    "test_forged_expired_and_revoked_credentials_are_refused", "test_as_and_openlfr_user_are_gone",
    "test_estate_admin_cannot_touch_police_users_or_make_police_roles",
    "test_cli_deployment_grounds_refused_and_audited", "test_cli_watchlist_hygiene_refused_and_audited",
    "test_cli_urgent_deployment_and_its_review", "test_the_one_admin_chain_is_impossible_through_the_cli",
    "test_an_officer_below_the_required_rank_cannot_approve", "test_break_glass_is_for_host_users_only_and_loud",
    "test_login_with_a_wrong_password_is_refused_and_audited",
    "test_passwd_changes_only_your_own_and_ends_your_sessions",
    "test_organisations_register_enrol_and_tokens", "test_camera_addresses_at_the_cli_door",
    "test_weak_password_at_the_cli_door",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (item.path.name == "test_gov_cli.py" and callspec is not None
                and callspec.params.get("db_url") == "postgres"
                and getattr(item, "originalname", "") in CLI_RULES_SQLITE_BY_DEFAULT):
            item.add_marker(pytest.mark.slow)
