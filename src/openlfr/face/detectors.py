"""Face detectors behind one small interface (:class:`openlfr.face.types.Detector`).

* ``mmod`` (default) — dlib's MMOD CNN detector (bundled weights), run by ONNX Runtime or
  PyTorch without dlib (see :mod:`openlfr.face.mmod_detector`): pose-tolerant, faces from
  about 80 px (40 px with one upsampling).
* ``hog`` — dlib's HOG + linear SVM frontal face detector, when dlib is installed
  (``pip install 'openlfr[dlib]'``): cheaper on a CPU, frontal faces only.

(OpenCV 5 no longer ships Haar cascades, and its ``FaceDetectorYN`` comes without a model
file, so neither is a bundled option.)

:func:`make_detector` builds one by name; the default is chosen from measurements
(see ``bench/compare_detectors.py`` and the README).
"""

from __future__ import annotations

import numpy as np

from openlfr.errors import InputError, ModelError
from openlfr.face.image import as_rgb
from openlfr.face.types import Box, Detection, Detector

DETECTORS = ("hog", "mmod")


def _clip_box(left: int, top: int, right: int, bottom: int, shape: tuple[int, ...]) -> Box | None:
    """Clip a box to the image; ``None`` if nothing of it is inside."""
    h, w = shape[:2]
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(w - 1, int(right)), min(h - 1, int(bottom))
    if right <= left or bottom <= top:
        return None
    return Box(left, top, right, bottom)


class HogDetector:
    """dlib's HOG frontal face detector; ``upsample`` doubles the image that many times first."""

    name = "hog"

    def __init__(self, upsample: int = 1, threshold: float = 0.0) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise ModelError("the hog detector needs dlib: pip install 'openlfr[dlib]'") from exc

        self.upsample = upsample
        self.threshold = threshold
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, image: np.ndarray) -> list[Detection]:
        image = as_rgb(image)
        rects, scores, _ = self._detector.run(image, self.upsample, self.threshold)
        out = []
        for r, s in sorted(zip(rects, scores), key=lambda rs: -rs[1]):
            box = _clip_box(r.left(), r.top(), r.right(), r.bottom(), image.shape)
            if box is not None:
                out.append(Detection(box, float(s), self.name))
        return out


def make_detector(name: str = "mmod", backend: str = "auto", upsample: int | None = None) -> Detector:
    """Build a detector by name (``hog`` or ``mmod``).

    ``upsample`` applies to ``hog`` (default 1) and ``mmod`` (default 0); ``backend``
    (``cpu``, ``cuda``, ``auto``, ``dlib``) to ``mmod``.
    """
    if name == "hog":
        return HogDetector(upsample=1 if upsample is None else upsample)
    if name == "mmod":
        from openlfr.face.mmod_detector import MMODDetector

        return MMODDetector(backend=backend, upsample=0 if upsample is None else upsample)
    raise InputError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
