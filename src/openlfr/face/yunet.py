"""OpenCV Zoo's YuNet face detector (``face_detection_yunet_2023mar_int8bq.onnx``, MIT).

The digest-checked file's weights are folded to float32 and the network runs on ONNX Runtime
(CPU, or CUDA) or PyTorch (GPU) through :func:`openlfr.face.onnx_runtime.make_runner`; the
outputs are decoded as OpenCV's ``cv2.FaceDetectorYN`` decodes them
(:mod:`openlfr.face.yunet_net`; ``tests/face/test_sface.py`` and ``tests/face/test_yunet.py``
check the two agree). On 2 cores this is about twice as fast as OpenCV's own DNN module (4 ms
against 8 ms per 640x360 frame). Any image size works (it is zero-padded to a multiple of 32);
faces down to about 13-18 px wide are found (measured on downscaled ``misc/obama.jpg``,
``misc/two_people.jpg`` and an LFW image; none below 9 px).

Each face comes with a box, a score and 5 landmarks in YuNet's order — the subject's right
eye, left eye, nose tip, right mouth corner, left mouth corner (image left to right: left eye,
right eye, nose, left mouth corner, right mouth corner) — the order of the ArcFace template
(:mod:`openlfr.face.arcface_align`). The network expects BGR; this module takes RGB, like the
rest of openlfr, and converts.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from openlfr.errors import InputError
from openlfr.face import onnx_runtime, yunet_net, zoo_files
from openlfr.face.image import as_rgb
from openlfr.face.types import Box, Detection
from openlfr.face.zoo_files import YUNET


def _region_bounds(region: Box | None, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    if region is None:
        return 0, 0, w, h
    left, top = max(0, int(region.left)), max(0, int(region.top))
    right, bottom = min(w, int(region.right) + 1), min(h, int(region.bottom) + 1)
    return left, top, right, bottom


def _drop_parts(faces: np.ndarray) -> np.ndarray:
    """Without faces lying mostly (60%+) inside a better-scored, larger face: a part of a big
    face seen at a finer pyramid level (boxes that differ in size overlap too little for NMS)."""
    order = np.argsort(-faces[:, 14], kind="stable")
    faces = faces[order]
    kept: list[int] = []
    for i, (x, y, w, h) in enumerate(faces[:, :4]):
        inside = False
        for j in kept:
            X, Y, W, H = faces[j, :4]
            if W * H <= w * h:
                continue
            ix = max(0.0, min(x + w, X + W) - max(x, X))
            iy = max(0.0, min(y + h, Y + H) - max(y, Y))
            if ix * iy >= 0.6 * w * h:
                inside = True
                break
        if not inside:
            kept.append(i)
    return faces[kept]


#: widest face (px) YuNet finds reliably in one pass. Measured on ``misc/obama.jpg`` enlarged:
#: score 0.95 at 231 px, 0.86 at 457 px; at 520-580 px the boxes are too small and split in two.
MAX_FACE = 400


class YuNetDetector:
    """YuNet faces with their 5 landmarks, best first; boxes clipped to the image.

    ``score_threshold``: the lowest face score kept (0-1); ``nms_threshold``: the IoU above
    which the weaker of two boxes is dropped; ``top_k``: candidates kept before suppression;
    ``backend``: ``cpu``, ``cuda`` or ``auto`` (see :func:`openlfr.face.onnx_runtime.make_runner`);
    ``threads``: intra-op threads on the CPU;
    ``model_path``/``sha256``: another copy of the file (digest defaults to the pinned one).
    """

    name = "yunet"

    def __init__(
        self,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        *,
        backend: str = "cpu",
        threads: int | None = None,
        model_path: str | Path | None = None,
        sha256: str | None = None,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise InputError("score_threshold must be between 0 and 1")
        if not 0.0 <= nms_threshold <= 1.0:
            raise InputError("nms_threshold must be between 0 and 1")
        if top_k < 1:
            raise InputError("top_k must be at least 1")
        checked = zoo_files.load_zoo(YUNET, model_path, sha256)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self.sha256 = checked.sha256
        self._model_id = checked.model_id
        graph = zoo_files.cached_graph(
            "yunet-float", checked.sha256, yunet_net.BUILDER_VERSION,
            lambda: yunet_net.yunet_graph(checked.model).SerializeToString(),
        )
        self._runner = onnx_runtime.make_runner(graph, backend=backend, threads=threads)

    @property
    def model_id(self) -> str:
        """``yunet-2023mar-int8bq:<first 8 hex digits of the file's SHA-256>``."""
        return self._model_id

    def _run(self, bgr: np.ndarray) -> np.ndarray:
        """YuNet once on ``bgr``: ``(K, 15)`` rows in OpenCV's layout."""
        tensor = yunet_net.blob(bgr)
        outputs = self._runner.run(list(yunet_net.OUTPUT_NAMES), {yunet_net.INPUT_NAME: tensor})
        return yunet_net.decode(outputs, tensor.shape[3], tensor.shape[2], self.score_threshold,
                                self.nms_threshold, self.top_k)

    def _pyramid(self, bgr: np.ndarray) -> np.ndarray:
        """Faces of every size: YuNet at full size for faces up to :data:`MAX_FACE` px, then at
        half size as long as the previous level could hold a larger face, and so on; duplicates
        across levels are suppressed (the better score stays)."""
        found = []
        level = bgr
        scale = 1.0
        while True:
            faces = self._run(level)
            coarsest = min(level.shape[:2]) // 2 < MAX_FACE or min(level.shape[:2]) < 64
            if not coarsest:  # a face wider than MAX_FACE is found (better) on a coarser level
                faces = faces[faces[:, 2] <= MAX_FACE]
            faces = faces.copy()
            faces[:, :14] /= scale
            found.append(faces)
            if coarsest:
                break
            h, w = level.shape[:2]
            level = cv2.resize(level, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            scale *= (w // 2) / w
        faces = np.concatenate(found)
        if len(found) == 1 or len(faces) < 2:
            return faces
        boxes = [[float(v) for v in row[:4]] for row in faces]
        keep = cv2.dnn.NMSBoxes(boxes, faces[:, 14].tolist(), self.score_threshold, self.nms_threshold, 1.0, self.top_k)
        return _drop_parts(faces[np.asarray(keep, np.int64).reshape(-1)])

    def detect(self, image_rgb: np.ndarray, region: Box | None = None) -> list[Detection]:
        """Faces in ``image_rgb`` (RGB, grey or RGBA ``uint8``), best first, each with its 5 points."""
        return [det for det, _ in self.detect_with_landmarks(image_rgb, region)]

    def detect_with_landmarks(
        self, image_rgb: np.ndarray, region: Box | None = None
    ) -> list[tuple[Detection, np.ndarray]]:
        """Faces with their ``(5, 2)`` float32 landmarks (x, y), best first.

        ``region`` (inclusive box, image coordinates) limits the search to part of the image,
        e.g. a motion region of a frame; boxes and landmarks are still in image coordinates.
        """
        if not isinstance(image_rgb, np.ndarray):
            raise InputError(f"expected a numpy image array, got {type(image_rgb).__name__}")
        image = as_rgb(image_rgb)
        left, top, right, bottom = _region_bounds(region, image.shape)
        if right - left < 1 or bottom - top < 1:
            return []
        crop = image[top:bottom, left:right]
        faces = self._pyramid(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if len(faces) == 0:
            return []
        faces = faces[np.argsort(-faces[:, 14], kind="stable")]
        h, w = image.shape[:2]
        out: list[tuple[Detection, np.ndarray]] = []
        for row in faces:
            x, y, bw, bh = (float(v) for v in row[:4])
            x += left
            y += top
            box_left = max(0, round(x))
            box_top = max(0, round(y))
            box_right = min(w - 1, round(x + bw) - 1)
            box_bottom = min(h - 1, round(y + bh) - 1)
            if box_right <= box_left or box_bottom <= box_top:
                continue
            points = row[4:14].reshape(5, 2).copy()
            points[:, 0] += left
            points[:, 1] += top
            points = points.astype(np.float32)
            det = Detection(Box(box_left, box_top, box_right, box_bottom), float(row[14]), self.name, points)
            out.append((det, points))
        return out


__all__ = ["YuNetDetector"]
