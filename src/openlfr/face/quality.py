"""A quality score per face, from its size, sharpness and pose.

Poor enrolment images make poor templates for every search that follows, so enrolment
refuses faces with a reason; live probes use the score to pick a track's best shots.
The limits are plain physical ones (pixels between the eyes, blur energy, head turn), not
values fitted to any data set.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from openlfr.face.types import Quality


@dataclass(frozen=True)
class QualityPolicy:
    """Limits under which a face is refused, and the levels at which it counts as ideal."""

    min_eye_distance: float = 20.0  # px between eye centres; dlib's chips put them ~60 px apart
    good_eye_distance: float = 40.0
    min_sharpness: float = 12.0  # variance of the Laplacian of the grey chip
    good_sharpness: float = 80.0
    max_yaw: float = 0.45  # nose offset from the eye midline / eye distance (~45° turn)


DEFAULT_POLICY = QualityPolicy()


DLIB5, ARCFACE5 = "dlib5", "arcface5"  # the two 5-point schemes (see openlfr.face.registry)


def eye_centres(landmarks: np.ndarray, scheme: str = DLIB5) -> tuple[np.ndarray, np.ndarray]:
    """The two eye centres: from dlib's 5 points (each eye has two corner points) or ArcFace's
    (the first two points are the eye centres)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if scheme == ARCFACE5:
        return pts[0], pts[1]
    return pts[0:2].mean(axis=0), pts[2:4].mean(axis=0)


def pose(landmarks: np.ndarray, scheme: str = DLIB5) -> tuple[float, float, float]:
    """(eye distance px, yaw in -1..1, roll in degrees) from the 5 landmarks."""
    a, b = eye_centres(landmarks, scheme)
    nose = np.asarray(landmarks, dtype=np.float64)[2 if scheme == ARCFACE5 else 4]
    axis = b - a
    dist = float(np.hypot(*axis))
    if dist < 1e-6:
        return 0.0, 1.0, 0.0
    unit = axis / dist
    # Frontal faces have the nose tip under the eye midpoint; turning the head shifts it
    # along the eye axis roughly in proportion to sin(yaw).
    yaw = float(np.dot(nose - (a + b) / 2.0, unit) / dist)
    roll = float(np.degrees(np.arctan2(axis[1], axis[0])))
    if roll > 90:
        roll -= 180
    elif roll < -90:
        roll += 180
    return dist, yaw, roll


SHARPNESS_SIZE = 150  # chips are measured at one size, so the limits hold for every model's chip


def sharpness(chip: np.ndarray) -> float:
    """Variance of the Laplacian of the grey chip's central part, at 150x150 (higher = sharper)."""
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    if grey.shape[0] != SHARPNESS_SIZE:  # a smaller chip squeezes the blur into fewer pixels
        grey = cv2.resize(grey, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=cv2.INTER_LINEAR)
    h, w = grey.shape
    centre = grey[h // 6 : h - h // 6, w // 6 : w - w // 6]
    return float(cv2.Laplacian(centre, cv2.CV_64F).var())


def _ramp(value: float, low: float, high: float) -> float:
    return float(np.clip((value - low) / max(high - low, 1e-9), 0.0, 1.0))


def assess(landmarks: np.ndarray, chip: np.ndarray, policy: QualityPolicy = DEFAULT_POLICY,
           scheme: str = DLIB5) -> Quality:
    """Score one face: 0 (unusable) to 1 (large, sharp, frontal), with refusal reasons."""
    dist, yaw, roll = pose(landmarks, scheme)
    sharp = sharpness(chip)
    reasons = []
    if dist < policy.min_eye_distance:
        reasons.append(f"face too small ({dist:.0f} px between the eyes, need {policy.min_eye_distance:.0f})")
    if sharp < policy.min_sharpness:
        reasons.append(f"image too blurred (sharpness {sharp:.0f}, need {policy.min_sharpness:.0f})")
    if abs(yaw) > policy.max_yaw:
        reasons.append(f"head turned too far from the camera (yaw index {yaw:+.2f}, limit {policy.max_yaw:.2f})")
    score = (
        _ramp(dist, policy.min_eye_distance * 0.5, policy.good_eye_distance)
        * _ramp(sharp, policy.min_sharpness * 0.5, policy.good_sharpness)
        * (1.0 - min(abs(yaw) / (policy.max_yaw * 2.0), 1.0))
    )
    return Quality(
        score=round(score, 4),
        face_size=dist,
        sharpness=sharp,
        yaw=yaw,
        roll_degrees=roll,
        reasons=reasons,
    )
