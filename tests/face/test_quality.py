"""Quality scoring refuses poor enrolment images with a reason, on a real face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from openlfr.errors import QualityError
from openlfr.face.analyzer import FaceAnalyzer, FaceStage, default_analyzer
from openlfr.face.image import load_image
from openlfr.face.quality import pose


@pytest.fixture(scope="module")
def face_image(data_dir):
    return load_image(data_dir / "video" / "references" / "lin-manuel-miranda.png")


def test_sharp_frontal_face_is_accepted_and_scores_high(face_image):
    face = default_analyzer().enrol(face_image)
    assert face.quality.acceptable
    assert face.quality.score > 0.8
    assert abs(face.quality.yaw) < 0.15


def test_blur_lowers_the_score_and_heavy_blur_is_refused(face_image):
    an = default_analyzer()
    scores = [an.analyze(cv2.GaussianBlur(face_image, (0, 0), s))[0].quality.score for s in (1, 3, 5)]
    assert scores == sorted(scores, reverse=True) and scores[-1] < 0.3
    with pytest.raises(QualityError, match="blurred"):
        an.enrol(cv2.GaussianBlur(face_image, (0, 0), 8))


def test_tiny_face_is_refused_as_too_small(face_image):
    from openlfr.face.detectors import make_detector

    base = default_analyzer()
    # a detector that finds faces far smaller than an enrolment needs: YuNet as it is, MMOD upsampled once
    an = base if base.stage.landmarker is None else FaceAnalyzer(FaceStage(
        make_detector("mmod", backend="cpu", upsample=1), base.stage.landmarker, base.stage.embedder, base.stage.model))
    tiny = cv2.resize(face_image, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA)
    with pytest.raises(QualityError, match="too small"):
        an.enrol(tiny)


def test_yaw_from_landmarks():
    frontal = np.array([[70, 50], [55, 50], [30, 50], [45, 50], [50, 80]], float)
    dist, yaw, roll = pose(frontal)
    assert dist == 25.0 and abs(yaw) < 1e-9 and abs(roll) < 1e-9
    turned = frontal.copy()
    turned[4, 0] = 62  # nose tip moved towards one eye
    assert abs(pose(turned)[1]) > 0.4
