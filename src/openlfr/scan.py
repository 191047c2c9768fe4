"""Retrospective search of a recording (the ``openlfr scan`` command, and its Python door).

A recording is searched only inside a started retrospective deployment, by a user proven by
a credential (see :func:`openlfr.governance.searches.start_search`, which holds the rule and
audits the recording's SHA-256). The frames then go through the live pipeline,
:class:`~openlfr.pipeline.camera.CameraPipeline`, on the deployment's frozen watchlist and
threshold: alerts are stored with their encrypted crop, audited, retained and reviewed
exactly like live alerts, and everything else about a face is dropped. There is no offline
matching against a watchlist kept anywhere else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from openlfr.errors import InputError, OpenLFRError
from openlfr.face.registry import file_sha256
from openlfr.governance import Actor, Governance
from openlfr.governance.searches import SearchGrant, check_search, end_search, start_search
from openlfr.pipeline.events import AlertEvent
from openlfr.pipeline.settings import CameraSettings
from openlfr.video.frames import Frame

RECHECK_S = 10.0  # how often a running search re-checks its credential and deployment (wall seconds)


@dataclass
class SearchResult:
    """What one search did."""

    grant: SearchGrant
    frames: int = 0  # frames read from the recording (at the analysis rate)
    analysed: int = 0  # frames the pipeline analysed
    tracks: int = 0  # tracks of faces followed (searched or not)
    passes: int = 0  # people passes: tracks whose face was searched against the watchlist
    alerts: list[AlertEvent] = field(default_factory=list)
    stopped: str = ""  # why the search ended before the recording did ("" when it ran to the end)


class SearchStopped(OpenLFRError):
    """A search stopped part-way (deployment ended, left its window, credential revoked...).

    The alerts committed before the stop are stored and in :attr:`result`."""

    def __init__(self, message: str, result: SearchResult) -> None:
        super().__init__(message)
        self.result = result


def _open_recording(address: str, fps: float) -> Iterable[Frame]:
    from openlfr.video.sources import open_source, source_kind

    if "://" not in address and not Path(address).exists():
        raise InputError(f"{address}: no such video file")
    kind = source_kind(address)
    if kind != "file":
        raise InputError(f"{address}: a search reads a recorded video file, not a {kind} "
                         f"(live cameras run in live deployments: openlfr run)")
    return open_source(address, fps)[1]  # checks that it is a readable video


def search_recording(
    gov: Governance,
    actor: Actor,
    deployment_id: int | None,
    path: str | Path,
    camera: int | str | None = None,
    *,
    fps: float | None = None,
    settings: CameraSettings | None = None,
    on_alert: Callable[[AlertEvent], None] | None = None,
    on_frame: Callable[[int, int | None], None] | None = None,
    recheck_s: float = RECHECK_S,
) -> SearchResult:
    """Search the video file ``path`` in retrospective deployment ``deployment_id`` on one of
    its cameras (id or name; ``None``: its only camera), as the bearer of ``actor``.

    ``on_alert`` receives each alert once it is committed; ``on_frame`` (for progress) each
    frame read, as (frames read so far, frames expected at the analysis rate or ``None``).
    Refusals before the search starts raise :class:`~openlfr.governance.PermissionDenied`,
    :class:`~openlfr.governance.RuleViolation` or :class:`~openlfr.errors.NotFoundError`
    (audited, nothing stored); a search that stops part-way raises :class:`SearchStopped`
    with what it did.
    """
    from pydantic import ValidationError

    from openlfr.pipeline.camera import CameraPipeline
    from openlfr.pipeline.reader import Prefetcher

    try:
        settings = settings or CameraSettings(**({} if fps is None else {"analyse_fps": fps}))
    except ValidationError as err:
        raise InputError(f"fps: {'; '.join(e['msg'] for e in err.errors())}") from None
    source = _open_recording(str(path), settings.analyse_fps)
    expected = _expected_frames(source, settings.analyse_fps)
    path = Path(path)
    digest = file_sha256(path)
    with gov.transaction() as ctx:
        grant = start_search(ctx, actor, deployment_id, camera, sha256=digest, source=path.name,
                             size=path.stat().st_size)

    result = SearchResult(grant)

    def publish(event: object) -> None:
        if isinstance(event, AlertEvent):
            result.alerts.append(event)
            if on_alert is not None:
                on_alert(event)

    stop = threading.Event()

    def checked(frames: Iterable[Frame]) -> Iterator[Frame]:
        last = time.monotonic()
        for read, frame in enumerate(frames, 1):
            if on_frame is not None:
                on_frame(read, expected)
            if time.monotonic() - last >= recheck_s:
                with gov.transaction() as ctx:
                    check_search(ctx, actor, grant)
                last = time.monotonic()
            # when a recording was made is not known: an alert's time is when the search raised it
            # (inside the deployment's window, like the search itself); its place in the clip is
            # the frame's video time
            frame.wall = gov.clock()
            yield frame

    pipe: CameraPipeline | None = None
    reader = Prefetcher(source, stop=stop)
    try:
        pipe = CameraPipeline(gov, grant.deployment_id, grant.camera_id, settings, publish=publish,
                              worker=grant.worker)
        pipe.start()
        pipe.run(checked(reader), finished_source=False)
    except OpenLFRError as err:
        result.stopped = str(err)
    except BaseException as err:  # interrupted, or a failure: still recorded as the end of the search
        result.stopped = f"{type(err).__name__}: {err}".rstrip(": ")
        raise
    finally:
        stop.set()
        reader.close()  # (the decoding thread out of OpenCV before the command may exit)
        if pipe is not None:
            stats = pipe.stats
            result.frames, result.analysed, result.tracks = stats.frames, stats.analysed, len(stats.tracks)
            result.passes = stats.passes
        with gov.transaction() as ctx:
            end_search(ctx, grant, frames=result.frames, analysed=result.analysed, tracks=result.tracks,
                       alerts=[a.alert_id for a in result.alerts], stopped=result.stopped)
    if result.stopped:
        raise SearchStopped(f"search stopped: {result.stopped}", result)
    return result


def _expected_frames(source: Iterable[Frame], fps: float) -> int | None:
    """How many frames a recording gives at ``fps`` (``None`` when its length is unknown)."""
    duration = float(getattr(source, "duration", 0.0) or 0.0)
    if duration <= 0 or fps <= 0:
        return None
    every = int(getattr(source, "frame_count", 0) or 0)  # a file has no more frames than it holds
    return max(1, min(round(duration * fps), every or round(duration * fps)))


def format_time(seconds: float) -> str:
    """``HH:MM:SS.mmm``."""
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


__all__ = ["SearchResult", "SearchStopped", "file_sha256", "format_time", "search_recording"]
