"""Offline scan of a video file against a watchlist (the ``openlfr scan`` command).

Frames are sampled, every face is searched, and a person raises an alert when they first
match and again only after ``cooldown`` seconds without a match, so one continuous
appearance gives one alert line. (The live pipeline adds tracking, best-shot selection and
governance; see :mod:`openlfr.pipeline`.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from openlfr.face.analyzer import FaceAnalyzer
from openlfr.matching.index import TemplateIndex
from openlfr.video.frames import Frame


@dataclass
class ScanAlert:
    """A watchlist match in a video: when, who, how similar, where in the frame."""

    time: float
    timestamp: str
    frame: int
    name: str
    score: float
    box: list[int]


def format_time(seconds: float) -> str:
    """``HH:MM:SS.mmm``."""
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def scan_video(
    source: Iterable[Frame],
    index: TemplateIndex,
    analyzer: FaceAnalyzer,
    threshold: float,
    cooldown: float = 10.0,
) -> Iterator[ScanAlert]:
    """Yield alerts for faces in the frames of ``source`` that match ``index`` at ``threshold``."""
    last_match: dict[str, float] = {}
    for frame in source:
        faces = analyzer.analyze(frame.image)
        if not faces:
            continue
        for face, cands in zip(faces, index.search([f.template for f in faces], k=1, threshold=threshold)):
            if not cands:
                continue
            best = cands[0]
            previous = last_match.get(best.subject_id)
            last_match[best.subject_id] = frame.time
            if previous is not None and frame.time - previous <= cooldown:
                continue
            yield ScanAlert(frame.time, format_time(frame.time), frame.index, best.label, best.score, face.box.as_list())
