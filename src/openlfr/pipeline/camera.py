"""The live loop of one camera: frames -> faces -> tracks -> best shots -> match -> alert or discard.

For each analysed frame the detector searches only where it is worth it (motion, the faces
already followed, the whole frame now and then), the tracker joins detections into tracks,
and each track's best few shots get templates that are matched against the live
deployment's frozen watchlist. A match at or above the deployment's threshold becomes one
alert per track and candidate: stored with its encrypted probe crop, audited and committed
*before* it is announced. Every other template is dropped at once; only counters remain.
Without a live deployment there is no watchlist, hence no matching: the loop stops.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import cast

import cv2
import numpy as np

from openlfr.config import get_settings
from openlfr.errors import OpenLFRError
from openlfr.face.analyzer import FaceAnalyzer, build_stage
from openlfr.face.detectors import make_detector
from openlfr.face.registry import ARCFACE5, check_same_model, registry
from openlfr.face.types import Box, Detection, Detector
from openlfr.governance import Ctx, Governance, RuleViolation
from openlfr.governance.deployments import LiveWatchlist, agreements_out_of_force, live_watchlist, recheck_watchlist
from openlfr.matching.similarity import to_template
from openlfr.pipeline import leases
from openlfr.pipeline.events import AlertEvent, StatusEvent
from openlfr.pipeline.records import (
    AlertRecord, Counters, StoredAlert, last_alert_times, save_checkpoint, store_alert, store_counters, store_gap,
)
from openlfr.pipeline.settings import CameraSettings
from openlfr.pipeline.status import write_status
from openlfr.store.models import Camera
from openlfr.video.best_shot import BestShots, Shot
from openlfr.video.frames import Frame
from openlfr.video.motion import MotionDetector, merge_boxes, pad_box
from openlfr.video.scene import SceneCut
from openlfr.video.schedule import FrameSchedule
from openlfr.video.stream_source import Gap
from openlfr.video.tracker import IoUTracker, Track

log = logging.getLogger(__name__)

def resolve_detector(name: str) -> str:
    """``auto`` is the detector the face model needs where it needs its own points (YuNet for
    SFace); else HOG where dlib is installed (cheapest on a CPU), else the MMOD CNN."""
    if name != "auto":
        return name
    if registry().embedder(get_settings().models.face_model).landmarks == ARCFACE5:
        return "yunet"
    try:
        import dlib  # noqa: F401
    except ImportError:
        return "mmod"
    return "hog"


def base_face(detector: str) -> int:
    """Smallest face width (px) the detector finds without upsampling (the registry's figure)."""
    return registry().detector(resolve_detector(detector)).min_face


@lru_cache(maxsize=4)
def pipeline_stage(detector: str) -> tuple[FaceAnalyzer, Detector]:
    """A process-wide analyzer (landmarks, embedder) and an un-upsampled detector (models load once).

    The analyzer is built as enrolment builds it, so probe and watchlist templates agree.
    """
    name = resolve_detector(detector)
    analyzer = FaceAnalyzer(build_stage(name))
    det = make_detector(name, upsample=0) if name == "hog" else analyzer.stage.detector
    return analyzer, det


class DeploymentNotLive(OpenLFRError):
    """The deployment is no longer live (ended, outside its window, snapshot gone): stop matching."""


@dataclass
class PipelineStats:
    """Timing of one camera's run, for benchmarks and health checks."""

    frames: int = 0
    analysed: int = 0
    busy_s: float = 0.0
    detect_s: float = 0.0
    faces_s: float = 0.0
    embed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    # of each alert's latency, the part its frame waited before analysis began
    waits_ms: list[float] = field(default_factory=list)
    alerts: list[AlertEvent] = field(default_factory=list)
    passes: int = 0  # people passes over the whole run (the counters restart at each flush)
    joined_passes: int = 0  # matches of a pass already alerted (neither an alert nor a discard)
    # track id -> [first time, last time, hits, first centre, last centre]: geometry only
    tracks: dict[str, list[object]] = field(default_factory=dict)


class CameraPipeline:
    """The live analysis of one camera in one live deployment.

    Call :meth:`start`, then :meth:`process` per frame (or :meth:`run` over a source), then
    :meth:`finish`. ``publish`` receives each :class:`AlertEvent` after its commit.
    ``source_label`` names a recorded source whose position is checkpointed for resuming;
    ``origin`` (from that checkpoint) is the wall time of its time 0 on its first run.
    ``lease_epoch``: the camera's lease as a host agent holds it (None: taken here).
    """

    def __init__(
        self,
        gov: Governance,
        deployment_id: int,
        camera_id: int,
        settings: CameraSettings | None = None,
        *,
        analyzer: FaceAnalyzer | None = None,
        publish: Callable[[object], None] | None = None,
        worker: str | None = None,
        source_label: str | None = None,
        lease_epoch: int | None = None,
        origin: datetime | None = None,
    ) -> None:
        self.gov = gov
        self.deployment_id = deployment_id
        self.camera_id = camera_id
        self.settings = settings or CameraSettings()
        shared_analyzer, self.detector = pipeline_stage(self.settings.detector)
        self.analyzer = analyzer or shared_analyzer
        self.scale = base_face(self.settings.detector) / float(self.settings.min_face_size)
        self.publish = publish
        self.worker = worker or f"pipeline:camera-{camera_id}"
        self.source_label = source_label
        # a track seen once must be found again on the next analysed frame (1.5 intervals: jitter)
        self.tracker = IoUTracker(self.settings.track_iou, max_age=self.settings.track_max_age_s,
                                  confirm_within=1.5 / self.settings.analyse_fps,
                                  birth_score=registry().detector(resolve_detector(self.settings.detector)).birth_score)
        self.motion = MotionDetector()
        self.scene = SceneCut()
        self.counters = Counters()
        self.stats = PipelineStats()
        self.watchlist: LiveWatchlist | None = None
        self._last_alert: dict[int, datetime] = {}
        self._wall0: datetime | None = None
        # a recording's time 0 on the wall clock (frame times are offsets from it); given when the
        # recording is resumed, so replayed frames keep the times of its first run
        self.origin = origin
        # the sources thin frames out on the same schedule, so this keeps every frame they deliver
        self._schedule = FrameSchedule(self.settings.analyse_fps)
        # the camera's lease (openlfr.pipeline.leases): given, a host agent holds and renews it and
        # this pipeline only fences its writes with the epoch; None: taken at start, kept, released
        self.lease_epoch = lease_epoch
        self._own_lease = lease_epoch is None
        self._lease_host = leases.holder_name(self.worker)
        self._keeper: leases.LeaseKeeper | None = None
        self._run_id = secrets.token_hex(8)  # this run's own alert attempts (their keys)
        self._zone: str | None = None  # the camera's pass zone, read at the first alert
        self._last_full = -1e9
        self._last_scan = -1e9
        self._band = 1 << 30  # no scan in progress
        self._full_scan = False
        self._t_frame_start = 0.0
        self._interval_start: datetime | None = None
        self._last_checkpoint: datetime = datetime.min.replace(tzinfo=UTC)  # set at the first frame
        self._watchlist_checked: datetime | None = None
        self._change_reloaded: datetime | None = None  # the watchlist's next_change last reloaded for
        self._agreements_checked: datetime = datetime.min.replace(tzinfo=UTC)
        self._last_frame_index = 0
        self._last_wall: datetime | None = None
        self._status_t = time.monotonic()  # when the status was last written
        self._status_analysed = 0  # frames analysed by then
        self._frame_seen: float | None = None  # (monotonic) when the last frame arrived

    # ------------------------------------------------------------------ lifecycle

    def start(self, at: datetime | None = None) -> None:
        """Take the camera's lease unless a host agent holds it
        (:class:`~openlfr.pipeline.leases.CameraTaken` while another holder has it), load the live
        watchlist (refused without a live deployment) and past alert times."""
        self._wall0 = at or self.gov.clock()
        if self._own_lease:
            lease_s = leases.lease_seconds()
            try:
                epoch = self.gov.run(lambda ctx: leases.acquire(ctx, self.camera_id, self.deployment_id, self.worker,
                                                                lease_s))
            except leases.NoLease as err:  # not live: the watchlist's refusal says why (and is audited)
                self._refresh_watchlist(self._wall0)
                raise DeploymentNotLive(str(err)) from err
            self.lease_epoch = epoch  # (None: a retrospective search, which holds no lease)
            if epoch is not None:
                self._keeper = leases.LeaseKeeper(self.gov, self.camera_id, self._lease_host, epoch, lease_s).start()
                weakref.finalize(self, self._keeper.stop)  # a pipeline dropped without finish() stops renewing
        try:
            self._refresh_watchlist(self._wall0)
        except BaseException:
            self._release()
            raise
        def begin(ctx: Ctx) -> None:
            wl = self.watchlist
            self._last_alert = {}
            for entry, at in last_alert_times(ctx, self.deployment_id, self.camera_id).items():
                person = wl.person(entry) if wl is not None else entry
                self._last_alert[person] = max(at, self._last_alert.get(person, at))
            ctx.audit(self.worker, "pipeline.start", "camera", self.camera_id, deployment=self.deployment_id,
                      settings=self.settings.model_dump(), source=self.source_label or "")
            self._write_status(ctx, "starting")

        self.gov.run(begin)

    def _refresh_watchlist(self, at: datetime) -> None:
        """Load the live watchlist (the first time: audited as ``deployment.watchlist``), or
        re-check the one held: every rule again, reading only the deployment's state, with the
        snapshot from this process's cache (no decryption) and an audit event only when
        something changed (:func:`~openlfr.governance.deployments.recheck_watchlist`)."""
        held = self.watchlist
        try:
            if held is None:
                self.watchlist = self.gov.run(
                    lambda ctx: live_watchlist(ctx, self.deployment_id, self.camera_id, at, worker=self.worker))
            else:
                self.watchlist = self.gov.run(lambda ctx: recheck_watchlist(ctx, held, at, worker=self.worker))
        except RuleViolation as err:
            self.watchlist = None
            raise DeploymentNotLive(str(err)) from err
        if self.watchlist is not held:  # probes are matched only against templates of the same face model
            check_same_model(self.analyzer.model_id, self.watchlist.model_id,
                             f"deployment {self.deployment_id}'s watchlist")
        self._watchlist_checked = self._agreements_checked = at

    def finish(self, finished_source: bool = False) -> None:
        """End every track, write the last counters (and the final position of a recording),
        release the camera (its own lease; a host agent's stays with the agent)."""
        for track in self.tracker.end_all():
            track.data.clear()
        try:
            # intervals are in frame time (a recording may run faster or slower than the clock)
            self._flush(self._last_wall or self._now_wall(), finished=finished_source, final=True)
            self.gov.run(lambda ctx: self._write_status(ctx, "stopped", final=True))
        finally:
            self._release()

    def _write_status(self, ctx: Ctx, state: str, error: str | None = None, final: bool = False) -> None:
        """The camera's status row: frames analysed per second since the last write, the time
        the last frame arrived (by the clock, not the video). Fenced by the lease."""
        self._fence(ctx, "pipeline.status", final=final)
        now = time.monotonic()
        elapsed = now - self._status_t
        fps = (self.stats.analysed - self._status_analysed) / elapsed if elapsed > 0 else 0.0
        self._status_t, self._status_analysed = now, self.stats.analysed
        last = None if self._frame_seen is None else ctx.now() - timedelta(seconds=now - self._frame_seen)
        write_status(ctx, self.camera_id, self.deployment_id, self.worker, state, fps=fps,
                     frames_analysed=self.stats.analysed, last_frame_at=last, error=error)

    def _release(self) -> None:
        """Give back the lease this pipeline took itself (never a host agent's)."""
        keeper, self._keeper = self._keeper, None
        if keeper is None:
            return
        keeper.stop()
        epoch, self.lease_epoch = keeper.epoch, None  # (an open gap written after this is the last word)
        self.gov.run(lambda ctx: leases.release(ctx, self._lease_host, self.camera_id, epoch, actor=self.worker,
                                                action="camera.release"))

    def _fence(self, ctx: Ctx, action: str, final: bool = False) -> None:
        """Refuse this write (:class:`~openlfr.pipeline.leases.LeaseLost`, audited) unless the
        camera's lease is still this pipeline's epoch; ``final``: a last write as it stops, which
        also passes once the deployment has ended and its leases are gone."""
        leases.fence(ctx, self.camera_id, self.lease_epoch, self.worker, action, deployment_id=self.deployment_id,
                     after_end=final)

    def _check_lease(self) -> None:
        """Stop (:class:`~openlfr.pipeline.leases.LeaseLost`) once this pipeline's own lease was lost."""
        if self._keeper is not None and self._keeper.lost.is_set():
            raise leases.LeaseLost(self._keeper.reason)

    def record_gap(self, gap: Gap) -> None:
        """Store a stream outage of this camera (called by the source when frames return)."""
        def store(ctx: Ctx) -> None:
            # (an open gap is written as the worker stops: after its deployment ended, too)
            self._fence(ctx, "camera.gap", final=gap.ended_at is None)
            store_gap(ctx, self.camera_id, self.deployment_id, gap.started_at, gap.ended_at, gap.attempts,
                      gap.reason, self.worker)

        self.gov.run(store)
        self.motion.reset()
        if self.publish is not None:
            self.publish(StatusEvent(self.camera_id, self.deployment_id, "gap",
                                     f"{gap.seconds if gap.seconds is not None else 'open'} s, "
                                     f"{gap.attempts} attempts"))

    def run(self, frames: Iterable[Frame], stop: threading.Event | None = None,
            finished_source: bool = True) -> PipelineStats:
        """Process every frame of ``frames`` until it ends or ``stop`` is set."""
        if self.watchlist is None:
            self.start()
        completed = False
        try:
            for frame in frames:
                if stop is not None and stop.is_set():
                    break
                self.process(frame)
            # a reader also ends its iteration when asked to stop: that is not the end of the source
            completed = stop is None or not stop.is_set()
        finally:
            self.finish(finished_source=completed and finished_source)
        return self.stats

    # ------------------------------------------------------------------ per frame

    def _now_wall(self) -> datetime:
        return self.gov.clock()

    def _frame_wall(self, frame: Frame) -> datetime:
        if frame.wall is not None:
            return frame.wall
        if self.origin is None:  # the recording's time 0 on the wall clock: its first frame is now
            assert self._wall0 is not None
            self.origin = self._wall0 - timedelta(seconds=frame.time)
        return self.origin + timedelta(seconds=frame.time)

    def process(self, frame: Frame) -> list[AlertEvent]:
        """Analyse one frame if it is due (``analyse_fps``); returns the alerts it raised."""
        if frame.captured is None:
            frame.captured = time.perf_counter()
        if self.stats.frames == 0 and self.publish is not None:
            self.publish(StatusEvent(self.camera_id, self.deployment_id, "frames", f"first frame {frame.index}"))
        self.counters.frames += 1
        self.stats.frames += 1
        self._last_frame_index = frame.index
        self._frame_seen = time.monotonic()
        if self._frame_seen - self._status_t >= self.settings.status_every_s:
            self.gov.run(lambda ctx: self._write_status(ctx, "running"))
        at = self._last_wall = self._frame_wall(frame)
        if self._interval_start is None:
            self._interval_start = self._last_checkpoint = at
        self._check_lease()  # (its own lease is renewed on a thread; a host agent's by the agent)
        if not self._schedule.due(frame.time):
            return []
        t_start = self._t_frame_start = time.perf_counter()
        change = self.watchlist.next_change if self.watchlist is not None else None
        if change is not None and (at < change or change == self._change_reloaded):
            change = None  # not reached yet, or reloaded for it already (then the regular refresh follows)
        if (self._watchlist_checked is None or change is not None
                or (at - self._watchlist_checked).total_seconds() >= self.settings.watchlist_refresh_s):
            # (at ``change`` an entry's review date has passed: the re-check drops it at once, audited)
            self._change_reloaded = change or self._change_reloaded
            self._refresh_watchlist(at)
        elif (at - self._agreements_checked).total_seconds() >= self.settings.agreement_check_s:
            self._agreements_checked = at
            watchlist = self.watchlist
            if watchlist is not None and self.gov.run(lambda ctx: agreements_out_of_force(
                    ctx, set(watchlist.agreement_ids), ctx.now())):
                self._refresh_watchlist(at)  # drops their images (audited), or stops with none left
        self.counters.frames_analysed += 1
        self.stats.analysed += 1
        image = frame.image
        t = frame.time
        if self.scene.changed(image):  # a cut or a camera moved to another view: new faces, new tracks
            for track in self.tracker.end_all():
                track.data.clear()
            self.motion.reset()  # and the whole new view is searched
        detections = self._detect(image, t)
        t_det = time.perf_counter()
        self.stats.detect_s += t_det - t_start
        pairs, ended = self.tracker.update(detections, t)
        for track, det in pairs:
            summary = self.stats.tracks.setdefault(track.id, [t, t, 0, det.box.center, det.box.center])
            summary[1], summary[2], summary[4] = t, int(summary[2]) + 1, det.box.center  # type: ignore[call-overload]
            if not track.data.get("pass") and track.is_pass(self.settings.pass_min_s):
                track.data["pass"] = True  # one person pass, counted once, in seconds, not frames
                self.counters.passes += 1
                self.stats.passes += 1
        for track in ended:
            track.data.clear()  # its shots (chips, crops) are gone with it
        alerts = self._analyse_faces(frame, at, pairs) if pairs else []
        # an alert is written with the counters it belongs to: a report never shows alerts
        # without the faces searched that raised them
        if alerts or (at - self._interval_start).total_seconds() >= self.settings.counters_interval_s:
            self._flush(at)
        elif self.source_label and (at - self._last_checkpoint).total_seconds() >= self.settings.checkpoint_every_s:
            label = self.source_label

            def checkpoint(ctx: Ctx) -> None:
                self._fence(ctx, "pipeline.checkpoint")
                save_checkpoint(ctx, self.deployment_id, self.camera_id, label, frame.index, origin=self.origin)

            self.gov.run(checkpoint)
            self._last_checkpoint = at
        self.stats.busy_s += time.perf_counter() - t_start
        return alerts

    def _regions(self, image: np.ndarray, t: float) -> list[Box]:
        """Where to run the detector on this frame.

        A scan (``scan_fps`` a second) looks for new faces where something moved, or now and
        then over the whole region of interest; it is spread over ``scan_bands`` consecutive
        analysed frames, one horizontal band each, so no single frame pays for a whole scan
        (that cost would be every alert's latency). Every analysed frame also searches around
        the live tracks, which is what carries them (and their best shots) between scans.
        """
        s = self.settings
        roi = s.roi_box(image.shape)
        regions = [pad_box(tr.predict(t), self.tracker.search_margin(tr, t), image.shape) for tr in self.tracker.tracks]
        if self._band >= s.scan_bands and t - self._last_scan >= 1.0 / s.scan_fps - 1e-3:
            self._last_scan, self._band = t, 0
            self._full_scan = not s.motion or bool(s.full_frame_every_s and t - self._last_full >= s.full_frame_every_s)
            if self._full_scan:
                self._last_full = t
        if self._band < s.scan_bands:
            band = self._band_box(roi, self._band, s.scan_bands)
            self._band += 1
            if self._full_scan:
                self.motion.regions(image)  # keep the background current
                regions.append(band)
            else:
                for b in self.motion.regions(image):
                    b = pad_box(b, 0.1, image.shape)
                    b = Box(max(b.left, band.left), max(b.top, band.top), min(b.right, band.right),
                            min(b.bottom, band.bottom))
                    if b.width > 0 and b.height > 0:
                        regions.append(b)
        out = []
        min_side = int(s.min_face_size * 1.3)
        for r in regions:
            r = Box(max(r.left, roi.left), max(r.top, roi.top), min(r.right, roi.right), min(r.bottom, roi.bottom))
            if r.width <= 0 or r.height <= 0:
                continue
            out.append(pad_box(r, 0.0, image.shape, min_side=min_side))
        return merge_boxes(out)

    def _band_box(self, roi: Box, k: int, bands: int) -> Box:
        """Band ``k`` of ``bands`` horizontal bands of the ROI, overlapping by 1.5 face sizes
        so that a face on a boundary lies wholly inside one of them."""
        if bands <= 1:
            return roi
        overlap = int(1.5 * self.settings.min_face_size)
        step = roi.height / bands
        top = int(roi.top + k * step) - overlap // 2
        bottom = int(roi.top + (k + 1) * step) + overlap // 2
        return Box(roi.left, max(roi.top, top), roi.right, min(roi.bottom, bottom))

    def _detect(self, image: np.ndarray, t: float) -> list[Detection]:
        dets: list[Detection] = []
        min_w = 0.8 * self.settings.min_face_size
        for r in self._regions(image, t):
            crop = image[r.top : r.bottom + 1, r.left : r.right + 1]
            if self.scale != 1.0:
                interp = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR
                crop = cv2.resize(crop, None, fx=self.scale, fy=self.scale, interpolation=interp)
            for d in self.detector.detect(np.ascontiguousarray(crop)):
                b = d.box
                box = Box(r.left + int(b.left / self.scale), r.top + int(b.top / self.scale),
                          r.left + int(b.right / self.scale), r.top + int(b.bottom / self.scale))
                if box.width >= min_w:
                    marks = None if d.landmarks is None else (
                        np.asarray(d.landmarks, np.float32) / self.scale + np.array([r.left, r.top], np.float32))
                    dets.append(Detection(box, d.score, d.detector, marks))
        return dets

    def _analyse_faces(self, frame: Frame, at: datetime, pairs: list[tuple[Track, Detection]]) -> list[AlertEvent]:
        t0 = time.perf_counter()
        image = frame.image
        self.counters.faces_seen += len(pairs)  # detections: a diagnostic, not people
        self.counters.tracks += sum(1 for tr, _ in pairs if tr.hits == 1)
        marks = self.analyzer.landmarks(image, [d for _, d in pairs])
        chosen: list[tuple[Track, Shot]] = []
        for (track, det), m in zip(pairs, marks):
            chip = self.analyzer.chip(image, m)
            quality = self.analyzer.assess(m, chip)
            # (track.data is the tracker's untyped per-track scratch space; this module keeps its shots there)
            shots = cast(BestShots, track.data.setdefault("best", BestShots(self.settings.templates_per_track)))
            shot = Shot(frame.index, frame.time, det.box, quality, m, chip, crop=np.empty(0), wall=at,
                        captured=frame.captured)
            if shots.offer(shot):
                c = pad_box(det.box, 0.3, image.shape)
                shot.crop = image[c.top : c.bottom + 1, c.left : c.right + 1].copy()
                chosen.append((track, shot))
        t1 = time.perf_counter()
        self.stats.faces_s += t1 - t0
        if not chosen:
            return []
        templates = to_template(self.analyzer.embed_chips(np.stack([s.chip for _, s in chosen])))
        self.stats.embed_s += time.perf_counter() - t1
        self.counters.templates += len(chosen)  # faces searched against the watchlist
        alerts: list[AlertEvent] = []
        for (track, shot), template in zip(chosen, templates):
            joined = self.stats.joined_passes
            raised = self._match(track, shot, template, at)
            alerts.extend(raised)
            if not raised and self.stats.joined_passes == joined:  # (joining an alerted pass is no discard)
                self.counters.templates_discarded += 1
            shot.chip = shot.crop = np.empty(0)  # discarded at once
        return alerts

    def _match(self, track: Track, shot: Shot, template: np.ndarray, at: datetime) -> list[AlertEvent]:
        """A track alerts at most once: for its best candidate at or above the threshold (one
        person is one pass, whichever entries they resemble). A match of a pass already alerted
        (this camera's moments ago, or the zone's pass row) is counted in ``stats.joined_passes``."""
        wl = self.watchlist
        if wl is None or not len(wl.entry_ids) or track.data.get("alerted"):
            return []
        scores = wl.templates @ template
        j = int(np.argmax(scores))
        score = float(scores[j])
        if score < wl.threshold:
            return []
        track.data["alerted"] = True
        entry = wl.entry_ids[j]
        person = wl.person(entry)  # (several images of one person: one pass)
        last = self._last_alert.get(person)
        if last is not None and abs((at - last).total_seconds()) < self.settings.realert_after_s:
            # a cheap pre-check (same person, same camera, moments ago: e.g. a new track after a
            # cut); the rule is the zone's pass row, checked in the store
            self.stats.joined_passes += 1
            return []
        event = self._raise_alert(track, shot, entry, person, wl.labels[j], score, at)
        if event is None:
            self.stats.joined_passes += 1
            return []
        return [event]

    def _raise_alert(self, track: Track, shot: Shot, entry: int, person: int, label: str, score: float,
                     at: datetime) -> AlertEvent | None:
        """Store the alert for ``entry`` (one per pass of ``person``, the entry standing for its
        person: ``None`` when the pass was already alerted), then announce it."""
        assert self.watchlist is not None
        snapshot_hash = self.watchlist.snapshot_hash
        ok, png = cv2.imencode(".png", cv2.cvtColor(shot.crop, cv2.COLOR_RGB2BGR))
        epoch = self.lease_epoch
        # the same key on every retry of this attempt (Governance.run), so a retry after an
        # unknown commit outcome finds the alert the first try stored
        key = f"{self.camera_id}:{'-' if epoch is None else epoch}:{self._run_id}:{track.id}:{entry}"[:160]

        def store(ctx: Ctx) -> StoredAlert | None:
            if self._zone is None:  # looked up once a run (a new zone applies at the next start)
                self._zone = ctx.get(Camera, self.camera_id, "camera").zone or ""
            rec = AlertRecord(
                deployment_id=self.deployment_id, camera_id=self.camera_id, entry_id=entry, label=label, score=score,
                at=at, track_id=track.id, frame_index=shot.frame_index, video_time=shot.time, box=shot.box.as_list(),
                quality=shot.quality.score, crop=png.tobytes() if ok else b"", snapshot_hash=snapshot_hash,
                zone=self._zone, pass_window_s=self.settings.realert_after_s, attempt_key=key, lease_epoch=epoch,
                person=person)
            stored = store_alert(ctx, rec, self.worker)
            if self.source_label:
                save_checkpoint(ctx, self.deployment_id, self.camera_id, self.source_label, shot.frame_index,
                                origin=self.origin)
            return stored

        try:
            stored = self.gov.run(store)
        except leases.CameraTaken:
            raise  # the lease is lost (another host has the camera): the worker stops
        except RuleViolation as err:
            raise DeploymentNotLive(str(err)) from err
        self._last_alert[person] = at
        if stored is None:  # the zone's pass was already alerted (by another camera, or this one)
            return None
        # Committed: only now may anyone be told.
        latency = (time.perf_counter() - shot.captured) * 1000 if shot.captured is not None else None
        self.counters.alerts += 1
        event = AlertEvent(stored.alert_id, stored.cursor, self.deployment_id, self.camera_id, entry, label,
                           round(score, 4), at.isoformat(), track.id, shot.frame_index, round(shot.time, 3),
                           shot.box.as_list(), None if latency is None else round(latency, 1))
        if latency is not None and shot.captured is not None:  # (latency is set exactly when captured is)
            self.stats.latencies_ms.append(latency)
            self.stats.waits_ms.append((self._t_frame_start - shot.captured) * 1000)
        self.stats.alerts.append(event)
        if self.publish is not None:
            self.publish(event)
        return event

    def _flush(self, at: datetime, finished: bool = False, final: bool = False) -> None:
        """Counters of the interval and the recording's position, in one transaction fenced by the
        lease (``final``: the last flush as the pipeline stops)."""
        start = self._interval_start or at
        counts, self.counters = self.counters, Counters()
        def flush(ctx: Ctx) -> None:
            self._fence(ctx, "pipeline.counters", final=final)
            if not counts.empty():
                store_counters(ctx, self.deployment_id, self.camera_id, start, max(at, start), counts, self.worker)
            if self.source_label:
                save_checkpoint(ctx, self.deployment_id, self.camera_id, self.source_label, self._last_frame_index,
                                finished=finished, origin=self.origin)

        self.gov.run(flush)
        self._interval_start = self._last_checkpoint = at
