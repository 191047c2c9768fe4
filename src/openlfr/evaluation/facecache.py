"""Per-image face data for evaluations, computed once and cached.

Every accuracy variant measured in :mod:`openlfr.evaluation.gains` (flip averaging, quality
gating, cohort normalisation, template fusion) can be derived from the same few numbers
per image: the raw embedding of the aligned chip, the raw embedding of its mirror image and
the face's quality measures. Computing them is the slow part (minutes for LFW on a CPU), so
they are computed once and kept in a file keyed by the image list and pipeline.

The cache holds templates and image names, so it is sealed like the store's blobs
(AES-256-GCM under the store's keyring, see :mod:`openlfr.store.keys`; mode 0600 in a 0700
folder): nothing in it is readable on disk, and ``openlfr key rotate`` reseals it. A clear
``.npz`` cache of earlier versions is sealed and removed the first time it is used.

Detection follows the LFW convention of :mod:`openlfr.evaluation.lfw` (the face nearest the
image centre) with one addition: where the configured detector finds nothing, an optional
fallback detector (the other of HOG and MMOD) is tried, so that fewer searches fail.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openlfr.evaluation.lfw import central
from openlfr.face.analyzer import FaceAnalyzer, flip_fuse
from openlfr.face.image import load_image
from openlfr.face.types import Detector
from openlfr.matching.similarity import to_template
from openlfr.store.keys import EncryptionKeyError, Keyring, open_keyring, read_sealed, write_sealed
from openlfr.store.settings import private_dir

CACHE_VERSION = "facecache-v1"
SUFFIX = ".sealed"
log = logging.getLogger(__name__)


@dataclass
class FaceData:
    """Face data of a list of images; rows without a face hold NaN embeddings.

    ``quality`` is the 0..1 score of :func:`openlfr.face.quality.assess` and
    ``acceptable`` whether the face passes the quality policy's refusal limits.
    """

    paths: list[Path]
    embeddings: np.ndarray  # (N, D) raw embeddings of the chip
    flipped: np.ndarray  # (N, D) raw embeddings of the mirrored chip
    quality: np.ndarray  # (N,) float32
    acceptable: np.ndarray  # (N,) bool
    detector: np.ndarray  # (N,) str: the detector that found the face, "" if none

    @property
    def found(self) -> np.ndarray:
        """Whether a face was found in each image."""
        return ~np.isnan(self.embeddings[:, 0])

    def templates(self, flip: bool = False) -> np.ndarray:
        """Unit templates (NaN rows where no face), optionally flip-averaged."""
        return to_template(flip_fuse(self.embeddings, self.flipped) if flip else self.embeddings)

    def row(self) -> dict[Path, int]:
        """Row index of each path."""
        return {p: i for i, p in enumerate(self.paths)}

    def subset(self, paths: Sequence[Path]) -> FaceData:
        """The rows of the given paths, in that order."""
        r = self.row()
        idx = np.array([r[Path(p)] for p in paths], dtype=np.int64)
        return FaceData(
            [Path(p) for p in paths],
            self.embeddings[idx],
            self.flipped[idx],
            self.quality[idx],
            self.acceptable[idx],
            self.detector[idx],
        )


def compute_face_data(
    paths: Sequence[Path],
    analyzer: FaceAnalyzer,
    fallback: Detector | None = None,
    progress: Callable[[int], None] | None = None,
    batch_size: int = 32,
) -> FaceData:
    """Detect, align and embed the central face of each image (and its mirror image)."""
    paths = [Path(p) for p in paths]
    n, dim = len(paths), analyzer.stage.embedder.dim
    emb = np.full((n, dim), np.nan, np.float32)
    flp = np.full((n, dim), np.nan, np.float32)
    quality = np.zeros(n, np.float32)
    acceptable = np.zeros(n, bool)
    detector = np.full(n, "", dtype="<U8")
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        if not pending:
            return
        chips = np.stack([c for _, c in pending])
        # one batch with both the chips and their mirror images
        both = analyzer.stage.embedder.embed(np.concatenate([chips, chips[:, :, ::-1]]))
        rows = [i for i, _ in pending]
        emb[rows] = both[: len(chips)]
        flp[rows] = both[len(chips) :]
        pending.clear()

    for i, path in enumerate(paths):
        image = load_image(path)
        dets = analyzer.detect(image)
        name = getattr(analyzer.stage.detector, "name", "primary")
        if not dets and fallback is not None:
            dets = fallback.detect(image)
            name = getattr(fallback, "name", "fallback")
        if dets:
            marks, chips = analyzer.align(image, [central(dets, image.shape)])
            q = analyzer.assess(marks[0], chips[0])
            quality[i], acceptable[i], detector[i] = q.score, q.acceptable, name
            pending.append((i, np.ascontiguousarray(chips[0])))
            if len(pending) >= batch_size:
                flush()
        if progress:
            progress(1)
    flush()
    return FaceData(paths, emb, flp, quality, acceptable, detector)


def cache_file_for(paths: Sequence[Path], cache_dir: Path, key: str) -> Path:
    """The cache file name for an image list and pipeline key."""
    digest = hashlib.sha256(("\n".join(map(str, paths)) + "|" + key + "|" + CACHE_VERSION).encode()).hexdigest()[:24]
    return Path(cache_dir) / f"faces-{digest}{SUFFIX}"


def _to_npz(data: FaceData) -> bytes:
    buf = io.BytesIO()
    np.savez(
        buf,
        paths=np.asarray([str(p) for p in data.paths], dtype=str),
        embeddings=data.embeddings,
        flipped=data.flipped,
        quality=data.quality,
        acceptable=data.acceptable,
        detector=data.detector,
    )
    return buf.getvalue()


def _from_npz(source: Path | io.BytesIO) -> FaceData:
    with np.load(source, allow_pickle=False) as d:
        return FaceData(
            [Path(p) for p in d["paths"]],
            d["embeddings"],
            d["flipped"],
            d["quality"],
            d["acceptable"],
            d["detector"],
        )


def save(data: FaceData, file: Path, keyring: Keyring | None = None) -> None:
    """Write face data sealed (the store's keyring unless ``keyring``), atomically, mode 0600
    in a 0700 folder: a partial file is never left."""
    file = Path(file)
    private_dir(file.parent)
    write_sealed(file, _to_npz(data), keyring or open_keyring())


def load(file: Path, keyring: Keyring | None = None) -> FaceData:
    """Read face data written by :func:`save`
    (:class:`~openlfr.store.keys.EncryptionKeyError` if the keyring cannot open it)."""
    return _from_npz(io.BytesIO(read_sealed(Path(file), keyring or open_keyring())))


def _legacy_file(file: Path) -> Path:
    """Where an earlier version kept the same cache in clear (``.npz``)."""
    return file.with_suffix(".npz")


def face_data(
    paths: Sequence[Path],
    analyzer: FaceAnalyzer,
    cache_dir: Path | None = None,
    key: str = "",
    fallback: Detector | None = None,
    progress: Callable[[int], None] | None = None,
    keyring: Keyring | None = None,
) -> FaceData:
    """:func:`compute_face_data` with an optional sealed cache in ``cache_dir`` keyed by
    ``key`` (which should name the pipeline: backend, detector, embedder); ``keyring``
    defaults to the store's (``OPENLFR_KEY`` or ``OPENLFR_KEY_FILE``)."""
    paths = [Path(p) for p in paths]
    if cache_dir is None:
        return compute_face_data(paths, analyzer, fallback=fallback, progress=progress)
    ring = keyring or open_keyring()
    file = cache_file_for(paths, cache_dir, key)
    cached = _cached(file, ring)
    if cached is not None:
        if progress:
            progress(len(paths))
        return cached
    data = compute_face_data(paths, analyzer, fallback=fallback, progress=progress)
    save(data, file, ring)
    return data


def _cached(file: Path, ring: Keyring) -> FaceData | None:
    """The cached face data, or ``None`` (a file the keyring cannot open is recomputed);
    a clear cache of earlier versions is sealed, and its clear file removed."""
    if file.exists():
        try:
            return load(file, ring)
        except (EncryptionKeyError, OSError, ValueError) as err:
            log.warning("face data cache %s is unusable, computing it again: %s", file, err)
            return None
    legacy = _legacy_file(file)
    if legacy.exists():
        try:
            data = _from_npz(legacy)
        except (OSError, ValueError, KeyError) as err:
            log.warning("old face data cache %s is unreadable, computing it again: %s", legacy, err)
            legacy.unlink(missing_ok=True)
            return None
        save(data, file, ring)
        legacy.unlink(missing_ok=True)
        return data
    return None
