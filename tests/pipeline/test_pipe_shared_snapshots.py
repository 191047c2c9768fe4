"""A host decodes a deployment's snapshot once and shares it with its camera workers: a sealed
memory file, mapped read-only by each worker (one copy per host, no worker decrypting it), that
nothing can change once written and that is gone when the host and its workers let go of it.
SQLite and PostgreSQL."""

from __future__ import annotations

import errno
import mmap
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from govkit import Estate
from pipekit import live_deployment, real_store, short_clip, wait_for
from openlfr.governance import deployments
from openlfr.pipeline import shared_snapshots
from openlfr.pipeline.host import HostAgent
from openlfr.pipeline.shared_snapshots import HostSnapshots, SharedSnapshot, adopt
from openlfr.store.blobs import BlobStore
from openlfr.store.db_blobs import DatabaseBlobStore
from openlfr.store.models import Deployment

pytestmark = pytest.mark.skipif(not shared_snapshots.supported(),
                                reason="sealable memory files (memfd_create, F_ADD_SEALS) are Linux-only")


def _live(estate: Estate, images: int = 3) -> tuple[int, int]:
    """(deployment, camera): live, its watchlist of ``images`` shared images."""
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, f"img-{i}".encode(), subject=f"S-{i}") for i in range(images)])
    cam = estate.camera()
    dep = estate.request(wl, [cam])
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
    return dep, cam


def _decoded(estate: Estate, dep: int) -> deployments.DecodedSnapshot:
    with estate.gov.reading() as ctx:
        return deployments.decode_snapshot(ctx, ctx.session.get(Deployment, dep))


def _snapshot_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every blob read from now on, by either backend."""
    reads: list[str] = []
    for cls in (BlobStore, DatabaseBlobStore):
        original: Callable[..., bytes] = cls.get

        def spy(self: Any, blob_id: str, *args: Any, _original: Callable[..., bytes] = original, **kw: Any) -> bytes:
            reads.append(blob_id)
            return _original(self, blob_id, *args, **kw)

        monkeypatch.setattr(cls, "get", spy)
    return reads


def _memfd_inodes(pid: int | str) -> set[int]:
    """The inodes of the snapshot memory files mapped by process ``pid``."""
    out = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and "memfd:openlfr-snapshot-" in parts[5]:
            out.add(int(parts[4]))
    return out


def _snapshot_fds() -> set[int]:
    """The inodes of the snapshot memory files this process holds open."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if "memfd:openlfr-snapshot-" in os.readlink(f"/proc/self/fd/{fd}"):
                out.add(os.stat(f"/proc/self/fd/{fd}").st_ino)
        except OSError:  # (the listing's own descriptor, closed since)
            continue
    return out


def test_a_sealed_snapshot_maps_the_decoded_templates_and_nothing_can_change_it(estate: Estate) -> None:
    snap = _decoded(estate, _live(estate)[0])
    shared = SharedSnapshot.seal(snap)
    try:
        seen = shared.attach()
        assert seen.snapshot_hash == snap.snapshot_hash and seen.model_id == snap.model_id
        assert seen.entries == snap.entries
        np.testing.assert_array_equal(seen.templates, snap.templates)
        assert not seen.templates.flags.writeable
        with pytest.raises(ValueError):
            seen.templates[0, 0] = 1.0  # mapped read-only
        # sealed: no write, no resize, no writable shared mapping, not even by its creator
        with pytest.raises(PermissionError):
            os.pwrite(shared.fd, b"\0" * 4, 0)
        with pytest.raises(PermissionError):
            os.ftruncate(shared.fd, 4)
        with pytest.raises(PermissionError):
            mmap.mmap(shared.fd, 16, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        np.testing.assert_array_equal(shared.attach().templates, snap.templates)  # unchanged
    finally:
        shared.close()
    assert shared.fd == -1
    with pytest.raises(ValueError, match="closed"):
        pickle.dumps(shared)


def test_an_unsealed_or_mis_sized_memory_file_is_refused(estate: Estate) -> None:
    snap = _decoded(estate, _live(estate)[0])
    raw = np.ascontiguousarray(snap.templates).tobytes()
    fd = os.memfd_create("openlfr-snapshot-unsealed", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, raw)
    unsealed = SharedSnapshot(snap.snapshot_hash, snap.model_id, snap.entries, snap.templates.shape[1], fd)
    with pytest.raises(ValueError, match="not sealed"):
        unsealed.attach()  # another process could still change it
    assert adopt(unsealed) is False and unsealed.fd == -1  # the worker then decodes its own
    short = SharedSnapshot.seal(deployments.DecodedSnapshot(snap.snapshot_hash, snap.model_id, snap.entries,
                                                            snap.templates[:-1]))
    with pytest.raises(ValueError, match="not 3 templates"):
        short.attach()
    short.close()


def test_a_worker_adopting_the_hosts_copy_never_decrypts_the_snapshot(
        estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    dep, cam = _live(estate)
    before = _snapshot_fds()  # (other tests' agents in this process may still hold theirs)
    host = HostSnapshots()
    deployments.SNAPSHOTS.clear()
    try:
        shared = host.for_deployment(estate.gov, dep)
        assert shared is not None and host.held() == [shared.snapshot_hash]
        assert host.for_deployment(estate.gov, dep) is shared  # one per hash on the host
        # what a spawned worker receives: the same file, by a descriptor of its own
        received = pickle.loads(pickle.dumps(shared))
        assert received.fd != shared.fd and os.fstat(received.fd).st_ino == os.fstat(shared.fd).st_ino
        reads = _snapshot_reads(monkeypatch)
        assert adopt(received) and received.fd == -1
        with estate.gov.transaction() as ctx:
            live = deployments.live_watchlist(ctx, dep, cam, ctx.now())
        assert reads == []  # every rule checked on the deployment's row; the templates were the host's
        assert len(live.entry_ids) == 3
        with estate.gov.transaction() as ctx:
            assert deployments.recheck_watchlist(ctx, live, ctx.now()) is live
    finally:
        host.close()
        deployments.SNAPSHOTS.clear()
    assert host.held() == [] and _snapshot_fds() == before


def test_a_host_agents_workers_map_one_sealed_copy_and_it_is_gone_when_they_stop(
        db_url: str, tmp_path: Path, video_dir: Path) -> None:
    gov, store = real_store(db_url, tmp_path)
    clip = short_clip(video_dir, tmp_path / "clip.mp4", frames=250)  # 10 s, played at real time
    dep, _ = live_deployment(gov, [video_dir / "references" / "lin-manuel-miranda.png"], source=str(clip),
                             cameras_count=2)
    with gov.reading() as ctx:
        digest = ctx.session.get(Deployment, dep).snapshot_hash
        cams = sorted(c.id for c in ctx.session.get(Deployment, dep).cameras)
    before = _snapshot_fds()  # (other tests' agents in this process may still hold theirs)
    agent = HostAgent(gov, store, host_id="A", capacity=2, lease_s=10, renew_s=1, paced=True)
    try:
        agent.start()
        assert sorted(agent.held) == cams

        def mapped() -> dict[int, set[int]] | None:
            pids = {cam: pid for h in agent.held.values() if h.sup is not None for cam, pid in h.sup.pids().items()}
            maps = {cam: _memfd_inodes(pid) for cam, pid in pids.items()}
            return maps if len(maps) == 2 and all(maps.values()) else None

        maps = wait_for(mapped, 60, 0.2)
        assert isinstance(maps, dict), "the workers did not map the host's snapshot"
        inodes = set().union(*maps.values())
        assert len(inodes) == 1  # both workers map the same file: one copy of the templates on this host
        assert agent.snapshots.held() == [digest]
        assert _snapshot_fds() - before == inodes  # the agent holds it too, to start a restarted worker with it
    finally:
        agent.stop()
        gov.close()
    assert agent.snapshots.held() == [] and _snapshot_fds() == before  # the agent let go; its workers are gone


@pytest.mark.parametrize("fails", ["no deployment", "no snapshot", "no memory"])
def test_a_snapshot_the_host_cannot_read_or_share_is_left_to_the_worker(
        estate: Estate, fails: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dep, _ = _live(estate)
    if fails == "no snapshot":
        with estate.gov.transaction() as ctx:
            ctx.session.get(Deployment, dep).snapshot_blob = None
    if fails == "no memory":
        def refuse(*_: Any) -> int:
            raise OSError(errno.ENOMEM, "Cannot allocate memory")

        monkeypatch.setattr(os, "memfd_create", refuse)
    host = HostSnapshots()
    assert host.for_deployment(estate.gov, dep + 100 if fails == "no deployment" else dep) is None
    assert host.held() == []
    assert HostSnapshots(enabled=False).for_deployment(estate.gov, dep) is None

