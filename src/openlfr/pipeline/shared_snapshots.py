"""A host's decoded watchlist snapshots, shared with its camera workers: decrypted once per host.

The host agent (:mod:`openlfr.pipeline.host`) decrypts a deployment's snapshot the first time it
starts a worker for it (:func:`~openlfr.governance.deployments.decode_snapshot`: checked against
the hash the deployment recorded, as every load is), writes the decoded templates into an
anonymous memory file and seals it against any change. Each worker it starts receives the
file's descriptor (passed at spawn, as ``multiprocessing`` passes its pipes), maps it
read-only and adopts it into its :data:`~openlfr.governance.deployments.SNAPSHOTS` under the
hash: N cameras on one deployment hold one copy of the templates, and no worker decrypts the
snapshot itself.

Why a sealed ``memfd`` and not a file or a named shared-memory segment: the decoded templates
are biometric data. A memory file has no name in any file system (nothing in ``/dev/shm`` to
outlive a crash), is never written to disk, and is freed when the last process holding it
closes or unmaps it: once a deployment's workers have ended and the agent has let go, the
templates are gone. The seals (write, grow, shrink, seal) make the contents immutable once
written, so what a worker maps is exactly what the agent decoded and checked.

Sharing changes nothing about the rules: the worker's own watchlist load
(:func:`~openlfr.governance.deployments.live_watchlist`) reads the deployment's row and uses a
cached snapshot only under the hash that row records now. Where memory files or seals are
missing (not Linux), :func:`supported` is false and each worker decodes its own snapshot.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
from dataclasses import dataclass, field
from multiprocessing import reduction
from typing import Any

import numpy as np

from openlfr.governance import Governance
from openlfr.governance.deployments import DecodedSnapshot, SnapshotEntry, decode_snapshot
from openlfr.store.models import Deployment

log = logging.getLogger(__name__)

DTYPE = np.dtype("<f4")
_SEALS = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")


def supported() -> bool:
    """Whether this system has sealable memory files (Linux 3.17+)."""
    return hasattr(os, "memfd_create") and all(hasattr(fcntl, s) for s in (*_SEALS, "F_ADD_SEALS", "F_GET_SEALS"))


def _all_seals() -> int:
    out = 0
    for name in _SEALS:
        out |= getattr(fcntl, name)
    return out


@dataclass
class SharedSnapshot:
    """A decoded snapshot in a sealed memory file, by its descriptor ``fd`` in this process.

    Pickled into a spawned process (a worker's arguments), it travels with a duplicate of its
    descriptor; :meth:`attach` maps it there.
    """

    snapshot_hash: str
    model_id: str
    entries: tuple[SnapshotEntry, ...]
    dim: int
    fd: int = field(repr=False)

    @classmethod
    def seal(cls, snap: DecodedSnapshot) -> SharedSnapshot:
        """Write ``snap``'s templates into a new memory file and seal it (:func:`supported` first)."""
        templates = np.ascontiguousarray(snap.templates, dtype=DTYPE)
        fd = os.memfd_create(f"openlfr-snapshot-{snap.snapshot_hash[:12]}", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            with open(fd, "wb", closefd=False) as out:  # noqa: PTH123 (a descriptor, not a path)
                out.write(templates.data.cast("B"))
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _all_seals())
        except BaseException:
            os.close(fd)
            raise
        return cls(snap.snapshot_hash, snap.model_id, snap.entries, int(templates.shape[1]), fd)

    def attach(self) -> DecodedSnapshot:
        """The snapshot, its templates mapped read-only from the memory file (no copy).

        Refused (``ValueError``) unless the file is sealed against writes and resizing and holds
        exactly one template per entry.
        """
        seals = fcntl.fcntl(self.fd, fcntl.F_GET_SEALS)
        if seals & _all_seals() != _all_seals():
            raise ValueError("the shared snapshot's memory file is not sealed against change")
        size = os.fstat(self.fd).st_size
        if size != len(self.entries) * self.dim * DTYPE.itemsize or size == 0:
            raise ValueError(f"the shared snapshot holds {size} bytes, not {len(self.entries)} templates of {self.dim}")
        view = mmap.mmap(self.fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        templates = np.frombuffer(view, dtype=DTYPE).reshape(len(self.entries), self.dim)  # read-only, as mapped
        return DecodedSnapshot(self.snapshot_hash, self.model_id, self.entries, templates)

    def close(self) -> None:
        """Let go of the descriptor (mappings made by :meth:`attach` stay valid)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __reduce__(self) -> tuple[Any, ...]:
        if self.fd < 0:
            raise ValueError("a closed shared snapshot cannot be passed on")
        return (_rebuild, (self.snapshot_hash, self.model_id, self.entries, self.dim, reduction.DupFd(self.fd)))


def _rebuild(snapshot_hash: str, model_id: str, entries: tuple[SnapshotEntry, ...], dim: int,
             dup: Any) -> SharedSnapshot:
    return SharedSnapshot(snapshot_hash, model_id, entries, dim, dup.detach())


def adopt(shared: SharedSnapshot) -> bool:
    """(In a worker) map ``shared`` into this process's snapshot cache and close its descriptor;
    ``False`` (logged) when it cannot be used: the worker then decodes the snapshot itself."""
    from openlfr.governance.deployments import SNAPSHOTS

    try:
        SNAPSHOTS.put(shared.attach())
        return True
    except (OSError, ValueError) as err:
        log.warning("the host's shared snapshot could not be used (%s); decoding it here", err)
        return False
    finally:
        shared.close()


class HostSnapshots:
    """The snapshots a host agent shares with its workers, by deployment; one memory file per hash."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = supported() if enabled is None else enabled
        self._by_hash: dict[str, SharedSnapshot] = {}

    def for_deployment(self, gov: Governance, deployment_id: int) -> SharedSnapshot | None:
        """The shared snapshot of ``deployment_id``'s current snapshot, decoded now if this host
        has none for its hash; ``None`` when sharing is off or it cannot be read (the worker then
        loads it itself, and is refused with the reason if it may not)."""
        if not self.enabled:
            return None
        try:
            with gov.reading() as ctx:
                dep = ctx.session.get(Deployment, deployment_id)
                if dep is None or dep.snapshot_blob is None or not dep.snapshot_hash:
                    return None
                found = self._by_hash.get(dep.snapshot_hash)
                if found is not None:
                    return found
                snap = decode_snapshot(ctx, dep)
        except Exception as err:  # a refusal or the store away: the worker's own load decides
            log.warning("deployment %s: its snapshot was not shared (%s); the workers decode it", deployment_id, err)
            return None
        if not len(snap.entries):
            return None
        try:
            shared = SharedSnapshot.seal(snap)
        except OSError as err:  # out of memory or of descriptors: each worker decodes its own
            log.warning("deployment %s: its snapshot could not be shared (%s); the workers decode it",
                        deployment_id, err)
            return None
        self._by_hash[shared.snapshot_hash] = shared
        return shared

    def keep_only(self, hashes: set[str]) -> None:
        """Let go of every snapshot whose hash is not in ``hashes`` (no worker of this host
        will be started with it again); its memory is freed once its workers have ended."""
        for digest in set(self._by_hash) - hashes:
            self._by_hash.pop(digest).close()

    def close(self) -> None:
        """Let go of every snapshot."""
        self.keep_only(set())

    def held(self) -> list[str]:
        """The hashes shared now."""
        return list(self._by_hash)
