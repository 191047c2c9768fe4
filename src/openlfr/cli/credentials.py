"""The command line's credential: ``openlfr login NAME`` proves the password and saves a
12-hour ``cli`` token (never the password) in the credentials file, mode 0600, under the
store's database URL so that two stores never share one; ``OPENLFR_TOKEN`` overrides the file
(for scripts). :func:`verify` checks it against the store before a command does anything;
with none, or one that is forged, expired or revoked, the command is refused and the refusal
audited. There is no way to name a user instead.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from openlfr.errors import InputError, OpenLFRError

CLI_LIFETIME = timedelta(hours=12)
TOKEN_ENV = "OPENLFR_TOKEN"
FILE_ENV = "OPENLFR_CREDENTIALS_FILE"
NOT_LOGGED_IN = "log in first: openlfr login NAME (or set OPENLFR_TOKEN)"


class NotLoggedIn(OpenLFRError):
    """A command that acts as a user was run without a credential."""


# ---------------------------------------------------------------- the credentials file
def credentials_file() -> Path:
    """``OPENLFR_CREDENTIALS_FILE``, or ``credentials.json`` in the user's openlfr config folder."""
    override = os.environ.get(FILE_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("openlfr", appauthor=False)) / "credentials.json"


def store_key() -> str:
    """The store a credential belongs to: its database URL (any password in it masked)."""
    from sqlalchemy.engine import make_url

    from openlfr.store import database_url

    url = database_url()
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL fails later, with a better message
        return url


def read_file() -> dict[str, Any]:
    path = credentials_file()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read the credentials file {path} ({err}); delete it and log in again") from None
    return data if isinstance(data, dict) else {}


def _write(data: dict[str, Any]) -> None:
    """Replace the credentials file atomically; it is created, and stays, readable by its owner only."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise


def remember(token: str, name: str, expires_at: Any) -> None:
    data = read_file()
    data.setdefault("stores", {})[store_key()] = {"name": name, "token": token,
                                                  "expires_at": expires_at.isoformat()}
    _write(data)


def forget() -> bool:
    """Drop this store's saved credential; whether there was one."""
    data = read_file()
    if data.get("stores", {}).pop(store_key(), None) is None:
        return False
    _write(data)
    return True


@dataclass(frozen=True)
class Saved:
    """A credential found for this store, and where."""

    token: str
    name: str  # the name saved beside it (only a claim: the token decides who acts)
    source: str  # "OPENLFR_TOKEN" or the credentials file's path


def saved() -> Saved | None:
    """This store's credential: ``OPENLFR_TOKEN``, else the one in the credentials file, else ``None``."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return Saved(token, "", TOKEN_ENV)
    entry = read_file().get("stores", {}).get(store_key())
    if isinstance(entry, dict) and entry.get("token"):
        return Saved(str(entry["token"]), str(entry.get("name", "")), str(credentials_file()))
    return None


def verify(gov: Any, action: str) -> Any:
    """The :class:`~openlfr.governance.Actor` of the logged-in user, checked live against the
    store before a command does anything; else refused (audited as ``<action>.refused`` by
    ``unverified:<claimed name>``)."""
    from openlfr.governance import Actor

    found = saved()
    if found is None:
        with gov.transaction() as ctx:
            ctx.audit("unverified:-", f"{action}.refused", "-", "-", reason=f"no credential: {NOT_LOGGED_IN}")
        raise NotLoggedIn(NOT_LOGGED_IN)
    actor = Actor(found.token, found.name)
    with gov.transaction() as ctx:
        ctx.require(actor, None, action)
    return actor
