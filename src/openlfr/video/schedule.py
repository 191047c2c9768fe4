"""Which frames to analyse, so that ``fps`` frames a second are analysed on average.

One schedule for the sources that thin a video out and for the pipeline that analyses what
they deliver: a due time advanced by exactly ``1/fps`` for each frame kept, and a frame is
kept once its time reaches the due time less a tolerance of half a source frame. (A minimum
interval between kept frames instead would, on a 25 fps video at 3 a second, skip every
frame 0.32 s after the last one and analyse about 1.5 a second.)
"""

from __future__ import annotations


class FrameSchedule:
    """Decide frame by frame whether a frame is due; ``fps`` ``None`` or 0 keeps every frame.

    ``tolerance`` (seconds) is half the source's frame interval where it is known; with
    ``None`` it is learned from the frames offered (half the shortest interval between two,
    at most half the analysis interval), so a consumer of already thinned frames keeps them all.
    """

    def __init__(self, fps: float | None, tolerance: float | None = None) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self.tolerance = tolerance
        self._learn = tolerance is None
        self._due: float | None = None
        self._last: float | None = None

    def due(self, t: float) -> bool:
        """Whether the frame at time ``t`` (seconds, increasing) is to be kept (then it is counted)."""
        if self._learn and self._last is not None and t > self._last:
            half = (t - self._last) / 2
            self.tolerance = min(half, self.tolerance if self.tolerance is not None else half, self.period / 2)
        self._last = t
        if not self.period:
            return True
        if self._due is not None and t < self._due - (self.tolerance or 0.0):
            return False
        nxt = t + self.period if self._due is None else self._due + self.period
        if t >= nxt:  # a whole slot was missed (a gap, a late frame): start again from here, no burst
            nxt = t + self.period
        self._due = nxt
        return True
