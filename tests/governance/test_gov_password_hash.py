"""Passwords are stored as argon2id hashes at the production cost.

The rest of the suite hashes at argon2's minimum cost to stay fast (``tests/conftest.py``,
``_cheap_password_hashing``); this test undoes that and checks what production code does.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from openlfr.governance import credentials
from openlfr.store.models import User

# OWASP's argon2id floor is 19 MiB and 2 passes; production uses argon2-cffi's RFC 9106 "low
# memory" profile: 64 MiB, 3 passes, 4 lanes
PRODUCTION = "$argon2id$v=19$m=65536,t=3,p=4$"


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Nothing here depends on the database."""
    return sqlite_url


@pytest.mark.usefixtures("production_password_hashing")
def test_production_hashes_at_full_cost_and_checks_them() -> None:
    digest = credentials.hash_password("a long test password")
    assert digest.startswith(PRODUCTION), digest
    # an unknown name is checked against a hash of the same cost (no timing shortcut)
    assert credentials._dummy_hash(credentials._hasher).startswith(PRODUCTION)


@pytest.mark.usefixtures("production_password_hashing")
def test_a_stored_password_is_a_full_cost_hash_and_logs_in(gov, estate) -> None:  # noqa: ANN001
    with gov.transaction() as ctx:
        user = ctx.session.execute(select(User).where(User.name == "reviewer")).scalar_one()
        credentials.store_password(ctx.session, user, "a long test password", ctx.now())
    with gov.transaction() as ctx:
        stored = ctx.session.get(credentials.Credential, user.id).password_hash
        assert stored.startswith(PRODUCTION)
        assert credentials.check_password(ctx.session, "reviewer", "a long test password").name == "reviewer"
        assert credentials.check_password(ctx.session, "reviewer", "a wrong test password") is None
