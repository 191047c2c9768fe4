"""YuNet: refusals, faces and landmarks on real images, any image size, regions of a frame."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from openlfr.errors import InputError, ModelError
from openlfr.face import zoo_files
from openlfr.face.types import Box, Detection
from openlfr.face.zoo_files import YUNET
from zookit import zoo_file

# single-person LFW images where the subject is the only face (checked by eye)
SINGLE = [
    "AJ_Cook/AJ_Cook_0001.jpg",
    "Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
    "Abdullah_Gul/Abdullah_Gul_0001.jpg",
    "Adam_Sandler/Adam_Sandler_0001.jpg",
    "Adrien_Brody/Adrien_Brody_0001.jpg",
    "Abel_Pacheco/Abel_Pacheco_0001.jpg",
]


@pytest.fixture(scope="module")
def yunet_file() -> Path:
    return zoo_file(YUNET)


@pytest.fixture(scope="module")
def detector(yunet_file: Path):  # type: ignore[no-untyped-def]
    from openlfr.face.yunet import YuNetDetector

    return YuNetDetector()


def _load(data_dir: Path, rel: str) -> np.ndarray:
    from openlfr.face.image import load_image

    return load_image(data_dir / rel)


# ----------------------------------------------------------------------------- refusals


def test_corrupted_copy_is_refused(yunet_file: Path, tmp_path: Path) -> None:
    from openlfr.face.yunet import YuNetDetector

    data = bytearray(yunet_file.read_bytes())
    data[-100] ^= 0xFF
    bad = tmp_path / YUNET.filename
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        YuNetDetector(model_path=bad)
    with pytest.raises(ModelError, match="not found"):
        YuNetDetector(model_path=tmp_path / "absent.onnx")


def test_non_onnx_and_wrong_shape_are_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from openlfr.face.yunet import YuNetDetector

    junk = tmp_path / "junk.onnx"
    junk.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ModelError, match="not an ONNX model"):
        YuNetDetector(model_path=junk, sha256=hashlib.sha256(junk.read_bytes()).hexdigest())

    grey = tmp_path / "grey.onnx"
    vi = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 640, 640])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["o"])], "g", [vi],
                              [helper.make_tensor_value_info("o", TensorProto.FLOAT, [1, 1, 640, 640])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(grey))
    with pytest.raises(ModelError, match="shape"):
        YuNetDetector(model_path=grey, sha256=hashlib.sha256(grey.read_bytes()).hexdigest())


def test_bad_arguments_and_images(detector) -> None:  # type: ignore[no-untyped-def]
    from openlfr.face.yunet import YuNetDetector

    with pytest.raises(InputError):
        YuNetDetector(score_threshold=1.5)
    with pytest.raises(InputError):
        detector.detect("not an image")
    with pytest.raises(InputError):
        detector.detect(np.zeros((10, 10, 3), np.float32))
    assert detector.detect(np.zeros((0, 5, 3), np.uint8)) == []
    assert detector.detect(np.zeros((7, 5, 3), np.uint8)) == []  # tiny: nothing, no crash
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.model_id == "yunet-2023mar-int8bq:49f000ec" and detector.name == "yunet"


# ----------------------------------------------------------------------------- real images


def test_one_face_on_single_person_lfw_images(data_dir: Path, detector) -> None:  # type: ignore[no-untyped-def]
    for rel in SINGLE:
        image = _load(data_dir, "lfw/" + rel)
        found = detector.detect_with_landmarks(image)
        assert len(found) == 1, (rel, [d.score for d, _ in found])
        det, points = found[0]
        assert isinstance(det, Detection) and isinstance(det.box, Box) and det.detector == "yunet"
        assert det.score > 0.8
        assert points.shape == (5, 2) and points.dtype == np.float32
        # LFW centres its subject: the face lies around the middle of the 250x250 image
        cx, cy = det.box.center
        assert 90 < cx < 160 and 80 < cy < 170, (rel, det.box)
        # landmark order: image-left eye, image-right eye, nose, image-left/right mouth
        (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = points
        assert lex < nx < rex and lmx < rmx
        assert max(ley, rey) < ny < min(lmy, rmy)
        for x, y in points:
            assert det.box.left <= x <= det.box.right and det.box.top <= y <= det.box.bottom
    # detect() gives the same boxes without the landmarks
    image = _load(data_dir, "lfw/" + SINGLE[0])
    assert [d.box for d in detector.detect(image)] == [d.box for d, _ in detector.detect_with_landmarks(image)]


def test_two_people_and_a_group(data_dir: Path, detector) -> None:  # type: ignore[no-untyped-def]
    two = detector.detect(_load(data_dir, "misc/two_people.jpg"))
    assert len(two) == 2
    assert two[0].box.iou(two[1].box) == 0.0
    assert two[0].score >= two[1].score  # best first
    group = detector.detect(_load(data_dir, "misc/multiface.jpg"))
    # measured: 6 faces (scores 0.90-0.94, 73-88 px wide), the same from threshold 0.5 to 0.9
    assert 5 <= len(group) <= 7
    assert all(d.score > 0.8 for d in group)
    assert all(a.box.iou(b.box) < 0.3 for i, a in enumerate(group) for b in group[i + 1 :])


def test_any_image_size(data_dir: Path, detector) -> None:  # type: ignore[no-untyped-def]
    """The same portrait at several resolutions: one face each, scaling with the image."""
    widths = {}
    for name in ("obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg", "obama-1080p.jpg"):
        image = _load(data_dir, "misc/" + name)
        found = detector.detect(image)
        assert len(found) == 1, name
        widths[image.shape[1]] = found[0].box.width / image.shape[1]
    ratios = list(widths.values())
    assert max(ratios) / min(ratios) < 1.25  # the face keeps its share of the frame


def test_region_of_a_frame(data_dir: Path, detector) -> None:  # type: ignore[no-untyped-def]
    image = _load(data_dir, "misc/two_people.jpg")
    full = detector.detect_with_landmarks(image)
    h, w = image.shape[:2]
    left_half = Box(0, 0, w // 2 - 1, h - 1)
    right_half = Box(w // 2, 0, w - 1, h - 1)
    for region in (left_half, right_half):
        found = detector.detect_with_landmarks(image, region)
        assert len(found) == 1
        det, points = found[0]
        # in full-image coordinates, and the same face as in the full-frame pass
        match = max(full, key=lambda f: f[0].box.iou(det.box))
        assert match[0].box.iou(det.box) > 0.8
        # landmarks move a few pixels with the crop (measured: up to 4.2 px on a 147 px face)
        assert np.abs(match[1] - points).max() < 0.05 * det.box.width
        assert region.left <= det.box.center[0] <= region.right
    assert detector.detect(image, Box(w + 10, 0, w + 50, 40)) == []  # outside the image


def test_video_frames(data_dir: Path, detector) -> None:  # type: ignore[no-untyped-def]
    import cv2

    cap = cv2.VideoCapture(str(data_dir / "video" / "short_hamilton_clip.mp4"))
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        pytest.skip("cannot decode the Hamilton clip here")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    found = detector.detect(rgb)
    assert len(found) >= 1 and found[0].score > 0.8


# ----------------------------------------------------------------------------- engines


def _opencv_faces(data: bytes, bgr: np.ndarray) -> np.ndarray:
    """OpenCV's own FaceDetectorYN on ``bgr``: the reference decoding, best first."""
    import cv2

    net = cv2.FaceDetectorYN.create("onnx", np.frombuffer(data, np.uint8), np.zeros(0, np.uint8),
                                    (bgr.shape[1], bgr.shape[0]), 0.6, 0.3, 5000)
    _, faces = net.detect(bgr)
    if faces is None:
        return np.zeros((0, 15), np.float32)
    return faces[np.argsort(-faces[:, 14], kind="stable")]


REFERENCE_IMAGES = ["misc/multiface.jpg", "misc/two_people.jpg", "misc/obama-240p.jpg",
                    "misc/obama-1080p.jpg", "lfw/" + SINGLE[1]]


def test_decoding_matches_opencv_facedetectoryn(data_dir: Path, yunet_file: Path, detector) -> None:  # type: ignore[no-untyped-def]
    """The float graph on ONNX Runtime plus openlfr's decoding give OpenCV's faces."""
    import cv2

    data = yunet_file.read_bytes()
    total = 0
    for rel in REFERENCE_IMAGES:
        image = _load(data_dir, rel)
        ref = _opencv_faces(data, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        ours = detector.detect_with_landmarks(image)
        assert len(ours) == len(ref) >= 1, rel
        for (det, points), row in zip(ours, ref):
            assert abs(det.score - float(row[14])) < 1e-3, rel
            assert abs(det.box.left - max(0, round(float(row[0])))) <= 1, rel
            assert abs(det.box.top - max(0, round(float(row[1])))) <= 1, rel
            assert np.abs(points - row[4:14].reshape(5, 2)).max() < 0.05, rel
        total += len(ref)
    assert total >= 10  # the group photo alone has 6


def _torch_or_skip():  # type: ignore[no-untyped-def]
    try:
        import torch
    except ImportError:
        pytest.skip("PyTorch is not installed: the GPU path's check on the CPU needs it")
    return torch


def test_pytorch_path_matches_onnx_runtime(data_dir: Path, yunet_file: Path) -> None:
    """The GPU path's executor, run on the CPU, gives the ONNX Runtime outputs."""
    import cv2

    _torch_or_skip()
    from openlfr.face import onnx_runtime, yunet_net
    from openlfr.face.torch_graph import TorchGraph

    graph = yunet_net.yunet_graph(zoo_files.load_zoo(YUNET).model)
    ort = onnx_runtime.make_session(graph.SerializeToString(), backend="cpu")
    pt = TorchGraph(graph, device="cpu")
    for rel in ("misc/multiface.jpg", "misc/obama-480p.jpg"):
        tensor = yunet_net.blob(cv2.cvtColor(_load(data_dir, rel), cv2.COLOR_RGB2BGR))
        a = ort.run(list(yunet_net.OUTPUT_NAMES), {"input": tensor})
        b = pt.run(list(yunet_net.OUTPUT_NAMES), {"input": tensor})
        for x, y in zip(a, b):
            assert x.shape == y.shape
            assert np.abs(x - y).max() < 1e-3, rel
        fa = yunet_net.decode(a, tensor.shape[3], tensor.shape[2], 0.6, 0.3, 5000)
        fb = yunet_net.decode(b, tensor.shape[3], tensor.shape[2], 0.6, 0.3, 5000)
        assert len(fa) == len(fb) >= 1 and np.abs(fa - fb).max() < 0.05


def test_backend_choice_is_checked(yunet_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cuda`` with neither onnxruntime-gpu nor a CUDA PyTorch is one clear error, not a CPU run."""
    from openlfr.face import onnx_runtime, torch_graph
    from openlfr.face.yunet import YuNetDetector

    monkeypatch.setattr(onnx_runtime, "cuda_available", lambda: False)
    monkeypatch.setattr(torch_graph, "torch_cuda_available", lambda: False)
    with pytest.raises(ModelError, match="no CUDA backend"):
        YuNetDetector(backend="cuda")
    with pytest.raises(ModelError, match="unknown backend"):
        YuNetDetector(backend="tpu")
    assert YuNetDetector(backend="auto").detect(np.zeros((64, 64, 3), np.uint8)) == []  # auto falls back to the CPU
