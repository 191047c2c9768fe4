"""A small IoU tracker with constant-velocity prediction: one track per face walking through.

Detections arrive at irregular times (detection runs only on some frames); between them a
track's box is predicted from its velocity. A new detection joins the track whose predicted
box it overlaps most (IoU, greedy, best pairs first), or, failing any overlap, whose
predicted centre is near enough; otherwise it starts a track, if it is confident enough
(``birth_score``: a weak detection may continue a followed face but not start one, as in
ByteTrack) and does not lie on a followed face (``overlap_limit``: a box on top of a face is
its hair or chin, or a head hidden behind it). A track that has not been seen
for ``max_age`` seconds ends. A track seen once is only tentative: unless the next analysed
frame (``confirm_within`` seconds) finds it again it ends, so that a stray detection cannot
linger and later claim someone else's face far away (SORT's "n_init" rule, in seconds).

"Near enough" is a physical limit, not a fixed number of pixels: a face can move ``max_jump``
face widths whatever the time, or ``max_speed`` face widths per second since it was last seen,
whichever is more. A face is about 15 cm wide, so a brisk 1.5 m/s walk across the view is
about 10 widths a second: 2 widths between frames analysed 0.2 s apart, 4 after one missed
detection. Measured on ``street_1080p.mp4``: a woman walking past close to the camera crossed
the frame in 1.4 s, 190 px (1.9 face widths) between analysed frames; a fixed one-width gate
made five one-detection tracks of her.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field

from openlfr.face.types import Box, Detection


@dataclass
class Track:
    """One face followed over time."""

    id: str
    box: Box
    first_time: float
    last_time: float
    hits: int = 1
    # centre and size velocity in px/s: (vx, vy, vsize)
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    data: dict[str, object] = field(default_factory=dict)

    def predict(self, t: float) -> Box:
        """The box expected at time ``t``."""
        dt = max(0.0, t - self.last_time)
        cx, cy = self.box.center
        size = (self.box.width + self.box.height) / 2.0
        vx, vy, vs = self.velocity
        cx, cy, size = cx + vx * dt, cy + vy * dt, max(4.0, size + vs * dt)
        half = size / 2.0
        return Box(int(round(cx - half)), int(round(cy - half)), int(round(cx + half)), int(round(cy + half)))

    @property
    def age(self) -> float:
        """Seconds between the first and the last detection."""
        return self.last_time - self.first_time

    def is_pass(self, min_seconds: float) -> bool:
        """Whether this track counts as one person passing: seen on two or more analysed frames
        and followed for ``min_seconds`` or more (a unit that does not depend on the frame rate)."""
        return self.hits >= 2 and self.age >= min_seconds - 1e-6


class IoUTracker:
    """Associates detections over time into :class:`Track` objects (see module docstring)."""

    def __init__(self, iou_threshold: float = 0.2, max_jump: float = 1.0, max_age: float = 1.0,
                 smoothing: float = 0.5, id_prefix: str | None = None, max_speed: float = 12.0,
                 confirm_within: float | None = None, overlap_limit: float = 0.1,
                 birth_score: float | None = None) -> None:
        self.iou_threshold = iou_threshold
        self.max_jump = max_jump
        self.max_speed = max_speed
        self.max_age = max_age
        self.confirm_within = max_age if confirm_within is None else min(confirm_within, max_age)
        self.overlap_limit = overlap_limit
        self.birth_score = birth_score
        self.smoothing = smoothing
        self.tracks: list[Track] = []
        self._prefix = id_prefix or uuid.uuid4().hex[:8]
        self._ids = itertools.count(1)
        self.started = 0

    def _match_cost(self, track: Track, det: Box, t: float) -> float | None:
        if track.hits == 1 and t - track.last_time > self.confirm_within:
            return None  # a tentative track not found again on the next analysed frame
        pred = track.predict(t)
        iou = pred.iou(det)
        if iou >= self.iou_threshold:
            return 1.0 - iou
        (px, py), (dx, dy) = pred.center, det.center
        dist = ((px - dx) ** 2 + (py - dy) ** 2) ** 0.5
        size = max(pred.width, det.width)
        ratio = det.width / max(pred.width, 1)
        reach = max(self.max_jump, self.max_speed * max(0.0, t - track.last_time))
        if dist <= reach * size and 0.5 <= ratio <= 2.0:
            return 1.0 + dist / size  # any overlap match is preferred to a distance match
        return None

    def update(self, detections: list[Detection], t: float) -> tuple[list[tuple[Track, Detection]], list[Track]]:
        """Add the detections seen at time ``t``.

        Returns (each detection with its track, new or continued) and the tracks that
        ended because they were not seen for ``max_age`` seconds.
        """
        pairs = []
        for ti, track in enumerate(self.tracks):
            for di, det in enumerate(detections):
                cost = self._match_cost(track, det.box, t)
                if cost is not None:
                    pairs.append((cost, ti, di))
        pairs.sort()
        used_t: set[int] = set()
        used_d: set[int] = set()
        out: list[tuple[Track, Detection]] = []
        for _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            track = self.tracks[ti]
            self._advance(track, detections[di].box, t)
            out.append((track, detections[di]))
        # where the followed faces are now: this frame's matches, and the predicted place of
        # each confirmed track not found on it
        followed = [detections[di].box for di in used_d]
        followed += [tr.predict(t) for ti, tr in enumerate(self.tracks) if ti not in used_t and tr.hits > 1]
        for di, det in enumerate(detections):
            if di not in used_d:
                if self.birth_score is not None and det.score < self.birth_score:
                    continue  # too weak to start a track: it may only continue one
                if any(_overlap(det.box, box) >= self.overlap_limit for box in followed):
                    continue  # on a followed face: its hair or chin, or a head hidden behind it
                track = Track(f"{self._prefix}-{next(self._ids)}", det.box, t, t)
                self.tracks.append(track)
                self.started += 1
                out.append((track, det))
        return out, self.expire(t)

    def expire(self, t: float) -> list[Track]:
        """End (and return) the tracks not seen since ``t - max_age`` (tentative ones: since
        ``t - confirm_within``)."""
        ended = [tr for tr in self.tracks if self._gone(tr, t)]
        if ended:
            self.tracks = [tr for tr in self.tracks if not self._gone(tr, t)]
        return ended

    def search_margin(self, track: Track, t: float) -> float:
        """How far (in face widths, each side) to look for ``track``'s face at time ``t``: a
        followed face is near its predicted place; a face seen once may have moved any way at
        up to ``max_speed``."""
        if track.hits > 1:
            return 0.6
        return max(0.6, self.max_speed * max(0.0, t - track.last_time))

    def _gone(self, track: Track, t: float) -> bool:
        return t - track.last_time > (self.confirm_within if track.hits == 1 else self.max_age)

    def end_all(self) -> list[Track]:
        """End every track (the source has finished)."""
        ended, self.tracks = self.tracks, []
        return ended

    def _advance(self, track: Track, box: Box, t: float) -> None:
        dt = t - track.last_time
        if dt > 1e-6:
            (ox, oy), (nx, ny) = track.box.center, box.center
            osize = (track.box.width + track.box.height) / 2.0
            nsize = (box.width + box.height) / 2.0
            new_v = ((nx - ox) / dt, (ny - oy) / dt, (nsize - osize) / dt)
            a = self.smoothing if track.hits > 1 else 1.0
            track.velocity = tuple(a * n + (1 - a) * o for n, o in zip(new_v, track.velocity))  # type: ignore[assignment]
        track.box = box
        track.last_time = t
        track.hits += 1


def _overlap(a: Box, b: Box) -> float:
    """The part of the smaller of two boxes that the other covers (0-1)."""
    w = min(a.right, b.right) - max(a.left, b.left) + 1
    h = min(a.bottom, b.bottom) - max(a.top, b.top) + 1
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / float(max(1, min(a.area, b.area)))
