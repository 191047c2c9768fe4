"""Read a live source on its own thread and hand the consumer only the newest frame.

A camera does not wait: if analysis falls behind, old frames must be dropped rather than
queued (a queue would make alerts ever later). OpenCV decodes without holding the GIL, so
reading overlaps with analysis on a second core.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from openlfr.video.frames import Frame


class _ThreadedReader:
    """A source read on a thread of its own, which :meth:`close` stops and waits for."""

    _thread: threading.Thread
    stop: threading.Event

    def close(self, timeout: float = 15.0) -> bool:
        """Stop reading and wait up to ``timeout`` s for the reading thread to leave the source;
        ``True`` once it has (or never started). A process must not exit while that thread is
        inside OpenCV: CPython ends a daemon thread at exit by unwinding it from where it next
        takes the GIL, which inside OpenCV's C++ aborts the process (SIGABRT instead of the
        worker's exit code, and a core dump of a process that held templates and frames)."""
        self.stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()


class LatestFrameReader(_ThreadedReader):
    """Iterate ``source`` on a thread; iterating this object yields the newest frame each time."""

    def __init__(self, source: Iterable[Frame], stop: threading.Event | None = None) -> None:
        self.source = source
        self.stop = stop or threading.Event()
        self.dropped = 0
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._done = False
        self._thread = threading.Thread(target=self._read, name="frame-reader", daemon=True)

    def _read(self) -> None:
        try:
            for frame in self.source:
                with self._cond:
                    if self._frame is not None:
                        self.dropped += 1
                    self._frame = frame
                    self._cond.notify()
                if self.stop.is_set():
                    break
        except BaseException as err:  # surfaced to the consumer
            self.error = err
        finally:
            with self._cond:
                self._done = True
                self._cond.notify()

    def __iter__(self) -> Iterator[Frame]:
        self._thread.start()
        while True:
            with self._cond:
                while self._frame is None and not self._done:
                    self._cond.wait(0.5)
                    if self.stop.is_set():
                        return
                frame, self._frame = self._frame, None
                if frame is None:  # done and nothing left
                    if self.error is not None:
                        raise self.error
                    return
            yield frame


class Prefetcher(_ThreadedReader):
    """Iterate ``source`` on a thread, ``size`` frames ahead, dropping nothing (recordings).

    Decoding overlaps with analysis, as with a camera, but every frame is delivered.
    """

    _END = object()

    def __init__(self, source: Iterable[Frame], size: int = 4, stop: threading.Event | None = None) -> None:
        import queue

        self.source = source
        self.stop = stop or threading.Event()
        self._queue: queue.Queue[object] = queue.Queue(size)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, name="frame-prefetch", daemon=True)

    def _read(self) -> None:
        try:
            for frame in self.source:
                while not self.stop.is_set():
                    try:
                        self._queue.put(frame, timeout=0.2)
                        break
                    except Exception:  # queue.Full
                        continue
                if self.stop.is_set():
                    break
        except BaseException as err:
            self.error = err
        finally:
            while True:  # the end mark, unless a stopped consumer will never take it (a full queue)
                try:
                    self._queue.put(self._END, timeout=0.2)
                    break
                except Exception:  # queue.Full
                    if self.stop.is_set():
                        break

    def __iter__(self) -> Iterator[Frame]:
        self._thread.start()
        while True:
            item = self._queue.get()
            if item is self._END:
                if self.error is not None:
                    raise self.error
                return
            yield item  # type: ignore[misc]
