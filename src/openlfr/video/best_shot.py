"""Best-shot selection per track: keep the few best-quality views of a face.

Templates cost an embedding each, so a track gets at most ``max_templates`` of them: a
shot is embedded when it is acceptable (no quality refusal) and clearly better than every
shot embedded so far for that track. Shots exist only in memory and only while their track
lives; nothing here is ever written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from openlfr.face.types import Box, Quality


@dataclass
class Shot:
    """One view of a tracked face: where and when, its quality, aligned chip and probe crop."""

    frame_index: int
    time: float
    box: Box
    quality: Quality
    landmarks: np.ndarray
    chip: np.ndarray
    crop: np.ndarray
    wall: datetime | None = None  # time of capture
    captured: float | None = None  # perf_counter of capture


class BestShots:
    """Decides which shots of one track are worth a template."""

    def __init__(self, max_templates: int = 3, min_gain: float = 0.05) -> None:
        self.max_templates = max_templates
        self.min_gain = min_gain
        self.embedded: list[float] = []  # quality of the shots already embedded

    def offer(self, shot: Shot) -> bool:
        """Whether ``shot`` should be embedded now (and, if so, it is counted as embedded)."""
        if not shot.quality.acceptable or len(self.embedded) >= self.max_templates:
            return False
        if self.embedded and shot.quality.score < max(self.embedded) + self.min_gain:
            return False
        self.embedded.append(shot.quality.score)
        return True
