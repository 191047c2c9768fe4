"""Frames as they leave a source: the image and when it was taken."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np


@dataclass
class Frame:
    """One decoded frame: RGB image, index in the source, time in seconds from its start.

    Live sources also give ``wall`` (UTC time of capture) and ``captured`` (the
    ``time.perf_counter()`` reading when the frame arrived), from which alert latency is measured.
    """

    image: np.ndarray
    index: int
    time: float
    wall: datetime | None = None
    captured: float | None = None
