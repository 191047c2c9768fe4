"""An in-process event bus: alerts are published to subscribers (the API will push them on).

Publishing never blocks the pipeline: each subscriber has its own bounded queue, and a
subscriber that falls behind loses the oldest events (it can catch up from the store, where
every announced alert already is). Callbacks run on the publisher's thread and must be quick.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertEvent:
    """An alert that is committed to the store, as announced to reviewers."""

    alert_id: int
    cursor: int  # its place in commit order (Alert.cursor): reviewers' streams resume after it
    deployment_id: int
    camera_id: int
    entry_id: int | None
    label: str
    score: float
    at: str  # ISO 8601 UTC time of the frame
    track_id: str
    frame_index: int
    video_time: float
    box: list[int]
    latency_ms: float | None = None  # frame capture -> alert committed

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class StatusEvent:
    """A worker's state change (started, stopped, gap, restarted...)."""

    camera_id: int
    deployment_id: int
    kind: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class Subscription:
    """A subscriber's queue of events; iterate it or call :meth:`get`."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self.queue: queue.Queue[object] = queue.Queue(maxsize)
        self.dropped = 0

    def put(self, event: object) -> None:
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def get(self, timeout: float | None = None) -> object | None:
        """The next event, or ``None`` after ``timeout`` seconds."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop receiving events."""
        self._bus.unsubscribe(self)


class EventBus:
    """Thread-safe publish/subscribe of pipeline events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._callbacks: list[Callable[[object], None]] = []

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        """A new queue that receives every event published from now on."""
        sub = Subscription(self, maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def on_event(self, callback: Callable[[object], None]) -> None:
        """Call ``callback(event)`` for every event (on the publisher's thread)."""
        with self._lock:
            self._callbacks.append(callback)

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, event: object) -> None:
        """Deliver ``event`` to every subscriber and callback."""
        with self._lock:
            subs, callbacks = list(self._subs), list(self._callbacks)
        for sub in subs:
            sub.put(event)
        for cb in callbacks:
            try:
                cb(event)
            except Exception:  # a broken subscriber must not stop the pipeline
                log.exception("event subscriber failed")
