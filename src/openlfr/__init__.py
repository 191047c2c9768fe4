"""openlfr: open, accountable live facial recognition.

The small public API (in the spirit of face_recognition's ``api.py``)::

    import openlfr
    image = openlfr.load_image("photo.jpg")
    faces = openlfr.analyze(image)          # detect, align, embed, score quality
    hits = index.search(faces[0].template)  # see openlfr.matching
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openlfr.errors import OpenLFRError

if TYPE_CHECKING:  # the face stack is imported on first use: `import openlfr` stays light
    from pathlib import Path

    import numpy as np

    from openlfr.face.types import Detection, Face

__version__ = "0.1.0"

__all__ = ["OpenLFRError", "__version__", "analyze", "load_image"]


def load_image(source: str | Path | bytes, *, max_pixels: int | None = None) -> np.ndarray:
    """Load an image file (or its bytes) as an RGB ``uint8`` array (see :func:`openlfr.face.image.load_image`)."""
    from openlfr.face.image import load_image as _load

    return _load(source, max_pixels=max_pixels)


def analyze(image: np.ndarray, detections: list[Detection] | None = None) -> list[Face]:
    """Find, align, embed and quality-score every face (see :class:`openlfr.face.analyzer.FaceAnalyzer`)."""
    from openlfr.face.analyzer import default_analyzer

    return default_analyzer().analyze(image, detections)
