"""Per-camera settings of the live pipeline, with defaults sized for a 1080p camera on 2 cores."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from openlfr.errors import InputError
from openlfr.face.types import Box


class CameraSettings(BaseModel):
    """How one camera's frames are analysed.

    The defaults keep a 1080p camera within real time on two CPU cores: 5 frames a second
    are analysed, the detector looks only where something moved (and around the faces it
    is already following, plus the whole frame every 2 s for people standing still), and
    faces smaller than ``min_face_size`` are ignored, which also sets the detector's scale.
    """

    model_config = ConfigDict(extra="forbid")

    analyse_fps: float = Field(5.0, gt=0, le=60, description="frames analysed per second")
    detector: str = Field("auto", description="face detector: yunet, mmod, hog, or auto (the one the face model "
                                              "needs: yunet for sface; for the dlib ResNet hog where dlib is "
                                              "installed)")
    scan_fps: float = Field(
        2.0, gt=0, le=60, description="searches for new faces per second; tracked faces are followed at analyse_fps")
    scan_bands: int = Field(
        2, ge=1, le=8, description="a scan is spread over this many analysed frames, one horizontal band each")
    min_face_size: int = Field(80, ge=20, le=1000, description="smallest face width searched for, in pixels")
    roi: tuple[int, int, int, int] | None = Field(
        None, description="region of interest (left, top, right, bottom) in pixels, inclusive; None: whole frame")
    motion: bool = Field(True, description="detect faces only where motion (or a live track) is")
    full_frame_every_s: float = Field(2.0, ge=0, description="also search the whole frame this often (0: never)")
    templates_per_track: int = Field(3, ge=1, le=20, description="most templates computed per track (best shots)")
    track_max_age_s: float = Field(1.0, gt=0, description="a track ends when unseen this long")
    pass_min_s: float = Field(
        0.3, ge=0, le=10, description="a track counts as one person pass once its face is followed this long "
                                      "over two or more analysed frames")
    track_iou: float = Field(0.2, gt=0, lt=1, description="least IoU to continue a track")
    realert_after_s: float = Field(
        60.0, ge=0, description="no second alert for the same watchlist entry on this camera within this time")
    counters_interval_s: float = Field(60.0, gt=0, description="counters are written (and audited) this often, "
                                                               "and with every alert")
    status_every_s: float = Field(5.0, gt=0, description="the camera's status (running, fps, last frame) is "
                                                        "written this often")
    checkpoint_every_s: float = Field(5.0, gt=0, description="recorded sources save their position this often")
    watchlist_refresh_s: float = Field(30.0, gt=0, description="re-check the deployment is live this often")
    paced: bool = Field(False, description="recorded sources: play at real time, dropping frames the analysis "
                                           "cannot keep up with, as a camera would")
    loop: bool = Field(False, description="recorded sources: start again at the end, like a camera that never "
                                          "stops (a demo camera); such a source never finishes")
    agreement_check_s: float = Field(
        2.0, gt=0, description="check this often that the agreements behind the watchlist are still in force "
                               "(a suspended or ended one's images leave the watchlist at once)")

    @field_validator("roi")
    @classmethod
    def _roi_ordered(cls, v: tuple[int, int, int, int] | None) -> tuple[int, int, int, int] | None:
        if v is not None and (v[2] <= v[0] or v[3] <= v[1] or min(v) < 0):
            raise ValueError("roi must be (left, top, right, bottom) with right > left and bottom > top")
        return v

    def stored(self) -> dict[str, object]:
        """The fields that differ from the defaults (what a camera's ``settings`` column keeps)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def roi_box(self, shape: tuple[int, ...]) -> Box:
        """The region of interest clipped to a frame of ``shape``."""
        h, w = shape[:2]
        if self.roi is None:
            return Box(0, 0, w - 1, h - 1)
        left, top, right, bottom = self.roi
        return Box(min(left, w - 1), min(top, h - 1), min(right, w - 1), min(bottom, h - 1))


def parse_roi(text: str) -> list[int] | None:
    """``left,top,right,bottom`` in pixels, or ``none`` for the whole frame."""
    if text.strip().lower() in ("none", "full", ""):
        return None
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise InputError(f"--roi {text!r}: use LEFT,TOP,RIGHT,BOTTOM in pixels (e.g. 0,200,1919,1079) or none")
    return values
