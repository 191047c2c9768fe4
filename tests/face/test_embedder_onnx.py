"""The ResNet on ONNX Runtime against dlib itself, batching, the graph cache, broken models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openlfr.errors import InputError, ModelError
from openlfr.face import onnx_runtime
from openlfr.face.embedders import OnnxEmbedder, check_chips, make_embedder
from openlfr.face.model_files import RESNET, SHAPE5, model_path

N_FACES = 300  # the equivalence claimed in the README, checked in full by the slow run
N_FAST = 40  # the default run checks the same on the first 40 of those faces


def lfw_chips(lfw: Path, count: int) -> np.ndarray:
    """Chips of the first image of each sorted LFW person folder where dlib finds a face."""
    dlib = pytest.importorskip("dlib")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_path(SHAPE5)))
    chips = []
    for person in sorted(p for p in lfw.iterdir() if p.is_dir()):
        images = sorted(person.glob("*.jpg"))
        if not images:
            continue
        img = dlib.load_rgb_image(str(images[0]))
        dets = detector(img, 1)
        if not dets:
            continue
        chips.append(dlib.get_face_chip(img, predictor(img, dets[0]), size=150, padding=0.25))
        if len(chips) == count:
            break
    return np.stack(chips)


@pytest.fixture(scope="module")
def chips(data_dir: Path) -> np.ndarray:
    return lfw_chips(data_dir / "lfw", N_FAST)


@pytest.fixture(scope="module")
def onnx_cpu() -> OnnxEmbedder:
    return OnnxEmbedder("cpu", batch_size=32, threads=2)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_onnx_matches_dlib_on_lfw_faces(chips: np.ndarray, onnx_cpu: OnnxEmbedder) -> None:
    _matches_dlib(chips, onnx_cpu, N_FAST)


# slow (about 30 s: dlib embeds at ~0.1 s a face); the rule is checked on 40 of these faces by
# test_onnx_matches_dlib_on_lfw_faces in the default run
@pytest.mark.slow
def test_onnx_matches_dlib_on_300_lfw_faces(data_dir: Path, onnx_cpu: OnnxEmbedder) -> None:
    _matches_dlib(lfw_chips(data_dir / "lfw", N_FACES), onnx_cpu, N_FACES)


def _matches_dlib(chips: np.ndarray, onnx_cpu: OnnxEmbedder, n: int) -> None:
    from openlfr.face.embedders import DlibEmbedder

    assert len(chips) == n
    ref = DlibEmbedder().embed(chips)
    got = onnx_cpu.embed(chips)
    assert got.shape == (n, 128) and got.dtype == np.float32
    cos = cosine(got, ref)
    worst = int(np.argmin(cos))
    assert cos.min() >= 0.9999, f"face {worst}: cosine {cos[worst]:.6f}"
    # In practice the two agree to float32 rounding.
    assert np.abs(got - ref).max() < 1e-4


def test_batching_equals_one_at_a_time(chips: np.ndarray, onnx_cpu: OnnxEmbedder) -> None:
    sample = chips[:40]
    batched = onnx_cpu.embed(sample)
    single = np.concatenate([onnx_cpu.embed(sample[i : i + 1]) for i in range(len(sample))])
    np.testing.assert_allclose(batched, single, rtol=0, atol=1e-6)
    assert cosine(batched, single).min() > 0.999999
    odd = OnnxEmbedder("cpu", batch_size=7, threads=2).embed(sample)  # ragged last batch
    np.testing.assert_allclose(odd, batched, rtol=0, atol=1e-6)


def test_chip_validation_and_empty_batch(onnx_cpu: OnnxEmbedder) -> None:
    assert onnx_cpu.embed(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    with pytest.raises(InputError, match="shape"):
        check_chips(np.zeros((150, 150, 3), np.uint8))
    with pytest.raises(InputError, match="uint8"):
        check_chips(np.zeros((1, 150, 150, 3), np.float32))
    with pytest.raises(InputError):
        check_chips([[0]])  # type: ignore[arg-type]


def test_make_embedder_backends() -> None:
    emb = make_embedder("cpu", batch_size=8)
    assert isinstance(emb, OnnxEmbedder) and emb.dim == 128
    with pytest.raises(InputError, match="unknown"):
        make_embedder("tpu")


def test_graph_is_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openlfr.config import get_settings
    from openlfr.face.nets import resnet

    monkeypatch.setenv("OPENLFR_MODEL_CACHE_DIR", str(tmp_path))
    get_settings.cache_clear()
    first = resnet.cached_resnet_onnx()
    assert first.parent == tmp_path and first.stat().st_size > 20_000_000
    assert f"v{resnet.BUILDER_VERSION}" in first.name
    stamp = first.stat().st_mtime_ns
    builds = []
    monkeypatch.setattr(resnet, "build_onnx", lambda *a, **k: builds.append(1) or b"")
    again = resnet.cached_resnet_onnx()
    assert again == first and again.stat().st_mtime_ns == stamp and not builds
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary files left


def test_cache_key_follows_source_and_version(tmp_path: Path) -> None:
    src = tmp_path / "model.dat"
    src.write_bytes(b"one")
    calls: list[str] = []

    def build() -> bytes:
        calls.append("built")
        return b"graph"

    a = onnx_runtime.cached_model("m", build, source=src, version=1, cache_dir=tmp_path / "c")
    b = onnx_runtime.cached_model("m", build, source=src, version=1, cache_dir=tmp_path / "c")
    c = onnx_runtime.cached_model("m", build, source=src, version=2, cache_dir=tmp_path / "c")
    src.write_bytes(b"two, longer")
    d = onnx_runtime.cached_model("m", build, source=src, version=1, cache_dir=tmp_path / "c")
    assert a == b and len({a, c, d}) == 3 and len(calls) == 3
    assert a.read_bytes() == b"graph"


def test_truncated_model_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openlfr.config import get_settings

    monkeypatch.setenv("OPENLFR_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    bad = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    bad.write_bytes(model_path(RESNET).read_bytes()[:1_000_000])
    with pytest.raises(ModelError, match="end of file") as err:
        OnnxEmbedder("cpu", model_path=bad)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
