"""Wake-ups between processes: PostgreSQL ``NOTIFY`` sent inside a transaction, delivered at its commit.

:func:`notify` queues a notification on the caller's session: on PostgreSQL it is
``pg_notify(channel, payload)`` in the same transaction (so listeners hear of a change only once
it is committed, and never of one rolled back); on every database it is also handed to this
process's own listeners after the commit (SQLite has no NOTIFY: one machine, one process tree).

:class:`Listener` is one ``LISTEN`` connection per process (a host agent, an API replica) on a
background thread, with reconnection; callbacks get ``(channel, payload)``. A notification is a
hint to look now, never the data itself: whoever listens also polls, so a notification lost
while a connection was down delays a change by one poll, no more.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

ALERTS = "openlfr_alerts"  # an alert was committed; payload: its cursor
LEASES = "openlfr_leases"  # a deployment went live or ended; payload: the deployment id
CHANNELS = (ALERTS, LEASES)

Callback = Callable[[str, str], None]
_local: list[Callback] = []
_local_lock = threading.Lock()
_PENDING = "openlfr.notify.pending"


def notify(session: Session, channel: str, payload: str = "") -> None:
    """Send ``channel``/``payload`` when the session's transaction commits (see module docstring)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown notification channel {channel!r}")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})
    pending: list[tuple[str, str]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []

        def deliver(s: Session) -> None:
            for ch, pl in s.info.pop(_PENDING, []):
                _deliver_local(ch, pl)

        def forget(s: Session, *_: Any) -> None:
            s.info.pop(_PENDING, None)

        event.listen(session, "after_commit", deliver, once=True)
        event.listen(session, "after_soft_rollback", forget, once=True)
    pending.append((channel, payload))


def _deliver_local(channel: str, payload: str) -> None:
    with _local_lock:
        callbacks = list(_local)
    for cb in callbacks:
        try:
            cb(channel, payload)
        except Exception:  # a broken listener must not break the committing writer
            log.exception("notification listener failed")


def listen_locally(callback: Callback) -> Callable[[], None]:
    """Call ``callback(channel, payload)`` after each commit in this process that notified;
    returns a function that stops it."""
    with _local_lock:
        _local.append(callback)

    def stop() -> None:
        with _local_lock:
            if callback in _local:
                _local.remove(callback)

    return stop


class Listener:
    """``LISTEN`` on ``channels`` on one connection of its own (PostgreSQL), on a daemon thread,
    plus this process's own notifications (every database). Reconnects after 1 s when the
    connection drops; :meth:`stop` ends it."""

    def __init__(self, url: str | None, channels: tuple[str, ...], callback: Callback) -> None:
        self.url = url  # a SQLAlchemy URL; None or not PostgreSQL: this process's notifications only
        self.channels = channels
        self.callback = callback
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unlisten = listen_locally(self._local)
        self.connected = threading.Event()  # set while the LISTEN connection is up

    def _local(self, channel: str, payload: str) -> None:
        if channel in self.channels:
            self.callback(channel, payload)

    def start(self) -> Listener:
        """Begin listening (a no-op beyond local notifications unless ``url`` is PostgreSQL)."""
        if self.url and self.url.startswith("postgresql"):
            self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
            self._thread.start()
        return self

    def _dsn(self) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self.url or "")
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn(), autocommit=True, connect_timeout=5) as conn:
                    for ch in self.channels:
                        conn.execute(f"LISTEN {ch}")  # (fixed names from CHANNELS, never user input)
                    self.connected.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5, stop_after=100):
                            # (this process's own arrive by _local too: a hint twice is harmless)
                            self.callback(note.channel, note.payload)
            except Exception as err:  # the database restarting, a dropped connection: try again
                self.connected.clear()
                if not self._stop.is_set():
                    log.warning("LISTEN connection lost (%s); reconnecting in 1 s", str(err).splitlines()[0][:200])
                    self._stop.wait(1.0)
        self.connected.clear()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening."""
        self._stop.set()
        self._unlisten()
        if self._thread is not None:
            self._thread.join(timeout)
