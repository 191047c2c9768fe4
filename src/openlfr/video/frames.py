"""Frames as they leave a source: the image and when it was taken."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One decoded frame: RGB image, index in the source, time in seconds from its start."""

    image: np.ndarray
    index: int
    time: float
