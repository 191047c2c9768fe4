"""The evaluation face-data cache is sealed on disk (AES-GCM under the store's keyring) and
still caches: keyed by the image list and pipeline, computed once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from openlfr.evaluation import facecache
from openlfr.store.keys import MAGIC_V2, Keyring, open_keyring


@pytest.fixture(autouse=True)
def _key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENLFR_KEY", raising=False)
    monkeypatch.setenv("OPENLFR_KEY_FILE", str(tmp_path / "secrets" / "key"))


PATHS = [Path(f"/srv/faces/Jane_Doe/Jane_Doe_{i:04d}.jpg") for i in range(5)]


def _data(paths: list[Path] = PATHS) -> facecache.FaceData:
    rng = np.random.default_rng(3)
    n = len(paths)
    emb = rng.standard_normal((n, 128)).astype(np.float32)
    emb[2] = np.nan  # an image without a face
    return facecache.FaceData(list(paths), emb, rng.standard_normal((n, 128)).astype(np.float32),
                              rng.random(n).astype(np.float32), rng.random(n) > 0.5, np.full(n, "mmod", dtype="<U8"))


class Computer:
    """Stands in for :func:`facecache.compute_face_data`, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, paths, analyzer, fallback=None, progress=None, batch_size=32):  # noqa: ANN001
        self.calls += 1
        return _data([Path(p) for p in paths])


def _assert_opaque(body: bytes, data: facecache.FaceData) -> None:
    assert body.startswith(MAGIC_V2)
    assert b"PK\x03\x04" not in body and b"PK\x05\x06" not in body and b"\x93NUMPY" not in body
    for arr in (data.embeddings, data.flipped):
        rows = arr[np.isfinite(arr[:, 0])]
        for row in rows:
            raw = row.astype(np.float32).tobytes()
            for i in range(0, len(raw) - 16, 16):  # no run of 4 floats in clear
                assert raw[i : i + 16] not in body
            assert row.astype(np.float64).tobytes()[:16] not in body
    assert data.quality.tobytes()[:16] not in body
    for p in data.paths:
        for text in (str(p), p.name, "Jane_Doe"):
            for enc in ("utf-8", "utf-32-le", "utf-16-le"):
                assert text.encode(enc) not in body
    assert b".jpg" not in body and b"mmod" not in body and "mmod".encode("utf-32-le") not in body


def test_cache_is_sealed_private_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compute = Computer()
    monkeypatch.setattr(facecache, "compute_face_data", compute)
    cache = tmp_path / "eval-cache"
    first = facecache.face_data(PATHS, object(), cache, "pipeline-a")  # type: ignore[arg-type]
    assert compute.calls == 1
    files = [p for p in cache.rglob("*")]
    assert [p.name for p in files] == [facecache.cache_file_for(PATHS, cache, "pipeline-a").name]
    assert files[0].suffix == ".sealed" and "Jane" not in files[0].name
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600 and stat.S_IMODE(cache.stat().st_mode) == 0o700
    _assert_opaque(files[0].read_bytes(), first)

    ticks: list[int] = []
    again = facecache.face_data(PATHS, object(), cache, "pipeline-a", progress=ticks.append)  # type: ignore[arg-type]
    assert compute.calls == 1 and ticks == [len(PATHS)]  # from the cache
    assert again.paths == first.paths
    for name in ("embeddings", "flipped", "quality", "acceptable", "detector"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    # keyed by pipeline and by image list
    facecache.face_data(PATHS, object(), cache, "pipeline-b")  # type: ignore[arg-type]
    facecache.face_data(PATHS[:3], object(), cache, "pipeline-a")  # type: ignore[arg-type]
    assert compute.calls == 3 and len(list(cache.iterdir())) == 3


def test_a_clear_cache_of_earlier_versions_is_sealed_and_removed(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    compute = Computer()
    monkeypatch.setattr(facecache, "compute_face_data", compute)
    cache = tmp_path / "eval-cache"
    cache.mkdir()
    data = _data()
    legacy = facecache.cache_file_for(PATHS, cache, "p").with_suffix(".npz")
    np.savez(legacy, paths=np.asarray([str(p) for p in data.paths], dtype=str), embeddings=data.embeddings,
             flipped=data.flipped, quality=data.quality, acceptable=data.acceptable, detector=data.detector)
    got = facecache.face_data(PATHS, object(), cache, "p")  # type: ignore[arg-type]
    assert compute.calls == 0 and got.paths == PATHS
    assert not legacy.exists()
    (sealed,) = cache.iterdir()
    _assert_opaque(sealed.read_bytes(), data)


def test_a_cache_the_key_cannot_open_is_computed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compute = Computer()
    monkeypatch.setattr(facecache, "compute_face_data", compute)
    cache = tmp_path / "eval-cache"
    other = Keyring.single(os.urandom(32))
    facecache.save(_data(), facecache.cache_file_for(PATHS, cache, "p"), other)
    with pytest.raises(Exception, match="wrong key"):
        facecache.load(facecache.cache_file_for(PATHS, cache, "p"))
    facecache.face_data(PATHS, object(), cache, "p")  # type: ignore[arg-type]
    assert compute.calls == 1
    assert facecache.load(facecache.cache_file_for(PATHS, cache, "p"), open_keyring()).paths == PATHS


def test_a_renamed_cache_file_does_not_open(tmp_path: Path) -> None:
    a = facecache.cache_file_for(PATHS, tmp_path, "a")
    facecache.save(_data(), a)
    b = facecache.cache_file_for(PATHS, tmp_path, "b")
    a.rename(b)
    with pytest.raises(Exception, match="wrong key or tampered"):
        facecache.load(b)
