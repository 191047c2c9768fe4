"""A local, file-backed watchlist for the command line (``openlfr watchlist ...``).

One ``watchlist.npz`` file in the data directory holds every subject's templates and
metadata. Writes go to a temporary file that replaces the old one atomically, so a failed
or interrupted command never leaves a half-written watchlist. The file is created readable
by its owner only, since templates are biometric data. (Governed watchlists, built from
images shared under an agreement, live in the store: see :mod:`openlfr.governance`.)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from openlfr.errors import InputError, NotFoundError
from openlfr.matching.index import TemplateIndex

FILE_NAME = "watchlist.npz"
FORMAT_VERSION = 1


@dataclass
class EnrolledImage:
    """One enrolment image of a subject (its hash, not the image itself)."""

    source: str
    sha256: str
    quality: float
    added: str


@dataclass
class Subject:
    """A watchlist subject: a name and its enrolment images' templates."""

    name: str
    images: list[EnrolledImage] = field(default_factory=list)


class LocalWatchlist:
    """Subjects with one template per enrolment image, stored in ``<dir>/watchlist.npz``."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / FILE_NAME
        self.subjects: list[Subject] = []
        self.templates = np.zeros((0, 128), np.float32)  # one row per EnrolledImage, in order
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                self.templates = data["templates"].astype(np.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{self.path}: watchlist file is unreadable ({exc})") from exc
        if meta.get("version") != FORMAT_VERSION:
            raise InputError(f"{self.path}: unsupported watchlist format {meta.get('version')!r}")
        self.subjects = [
            Subject(s["name"], [EnrolledImage(**i) for i in s["images"]]) for s in meta["subjects"]
        ]
        if sum(len(s.images) for s in self.subjects) != len(self.templates):
            raise InputError(f"{self.path}: watchlist file is inconsistent")

    def save(self) -> None:
        """Write atomically (temporary file, then rename), owner-only permissions."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"version": FORMAT_VERSION, "subjects": [asdict(s) for s in self.subjects]}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".watchlist-", suffix=".npz")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, meta=np.asarray(json.dumps(meta)), templates=self.templates)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _rows(self) -> list[tuple[str, int]]:
        return [(s.name, i) for s in self.subjects for i in range(len(s.images))]

    def find(self, name: str) -> Subject | None:
        return next((s for s in self.subjects if s.name == name), None)

    def add(self, name: str, entries: list[tuple[str, bytes, np.ndarray, float]]) -> Subject:
        """Add images (source label, raw bytes, template, quality) to ``name``, creating it.

        An image whose bytes are already enrolled for this subject is refused.
        """
        name = name.strip()
        if not name:
            raise InputError("a watchlist name cannot be empty")
        subject = self.find(name)
        if subject is None:
            subject = Subject(name)
            self.subjects.append(subject)
        known = {i.sha256 for i in subject.images}
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        new_images, new_rows = [], []
        for source, raw, template, quality in entries:
            digest = hashlib.sha256(raw).hexdigest()
            if digest in known:
                raise InputError(f"{source}: this image is already enrolled for {name!r}")
            known.add(digest)
            new_images.append(EnrolledImage(source, digest, round(float(quality), 4), now))
            new_rows.append(np.asarray(template, np.float32))
        # Keep template rows in subject order: insert after the subject's existing rows.
        rows = self._rows()
        insert_at = max((k + 1 for k, (n, _) in enumerate(rows) if n == name), default=len(rows))
        self.templates = np.concatenate(
            [self.templates[:insert_at], np.stack(new_rows), self.templates[insert_at:]]
        )
        subject.images.extend(new_images)
        return subject

    def remove(self, name: str) -> Subject:
        """Remove a subject and all its templates."""
        subject = self.find(name)
        if subject is None:
            raise NotFoundError(f"no watchlist entry named {name!r}")
        keep = np.array([n != name for n, _ in self._rows()], dtype=bool)
        self.templates = self.templates[keep]
        self.subjects.remove(subject)
        return subject

    def index(self) -> TemplateIndex:
        """A search index over every template (subjects keyed by name)."""
        names = [n for n, _ in self._rows()]
        return TemplateIndex(names, names, self.templates)
