"""The login throttle in the database: per name and place, counted before the check, a
lockout that doubles, cleared by a success; the same at every door (here: Python)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from govkit import ADMIN_PASSWORD, Estate
from openlfr.governance import login
from openlfr.governance.errors import Throttled

HOUR = timedelta(hours=1)


def test_lockout_per_name_and_place_doubles_and_clears(estate: Estate) -> None:
    gov = estate.gov
    name = "estate-admin"  # made by the Estate with ADMIN_PASSWORD
    for _ in range(3):
        assert login.log_in(gov, name, "wrong password!", "cli", HOUR, "10.0.0.1", limit=3, window=60) is None
    with pytest.raises(Throttled) as locked:
        login.log_in(gov, name, ADMIN_PASSWORD, "cli", HOUR, "10.0.0.1", limit=3, window=60)  # even the right one
    assert 0 < locked.value.retry_after <= 60
    # another place, and another name from the same place, are unaffected
    assert login.log_in(gov, name, ADMIN_PASSWORD, "cli", HOUR, "10.0.0.2", limit=3, window=60) is not None
    assert login.log_in(gov, "force-admin", ADMIN_PASSWORD, "cli", HOUR, "10.0.0.1", limit=3, window=60) is not None

    estate.clock.advance(seconds=61)  # the first lockout (60 s) is over; the next one lasts 120 s
    for _ in range(3):
        assert login.log_in(gov, name, "wrong password!", "cli", HOUR, "10.0.0.1", limit=3, window=60) is None
    with pytest.raises(Throttled) as locked:
        login.log_in(gov, name, "wrong password!", "cli", HOUR, "10.0.0.1", limit=3, window=60)
    assert 60 < locked.value.retry_after <= 120
    estate.clock.advance(seconds=121)
    assert login.log_in(gov, name, ADMIN_PASSWORD, "cli", HOUR, "10.0.0.1", limit=3, window=60) is not None
    # a success clears the count: three more failures are allowed before the next lockout
    for _ in range(2):
        assert login.log_in(gov, name, "wrong password!", "cli", HOUR, "10.0.0.1", limit=3, window=60) is None
    assert login.log_in(gov, name, ADMIN_PASSWORD, "cli", HOUR, "10.0.0.1", limit=3, window=60) is not None


def test_weak_passwords_are_refused_by_the_service(estate: Estate) -> None:
    """Every way a password is set (enrolment, new user, reset, own change) goes through one
    strength check: common passwords, patterns and the organisation's own name are refused."""
    from openlfr.errors import InputError
    from openlfr.governance import Role, users
    from openlfr.governance.schemas import UserCreate

    for weak in ("password1234", "estateltd2030", "1234567890"):
        with pytest.raises(InputError, match="password"), estate.gov.transaction() as ctx:
            users.create_user(ctx, estate.estate_admin, UserCreate(name="newcomer", role=Role.REVIEWER), weak)
    with estate.gov.transaction() as ctx:
        users.create_user(ctx, estate.estate_admin, UserCreate(name="newcomer", role=Role.REVIEWER),
                          "lantern orbit gravel cactus")
