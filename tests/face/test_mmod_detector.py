"""The MMOD detector without dlib gives dlib's boxes (within 2 px) and scores on real images.

The equivalence tests need dlib (the reference) and the shared data; they skip without
them. dlib-bin's CNN is slow (~2.7 s per 512x512 image), so the image set is kept small:
40 LFW images, three photographs and one street-video frame at half size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openlfr.errors import InputError
from openlfr.face.mmod_detector import (
    MMODDecoding,
    MMODDetector,
    decode_candidates,
    decode_output,
    nms,
    pyramid_layout,
    resize_bilinear,
    tiled_pyramid,
)
from openlfr.face.types import Detection, Detector

MAX_PX = 2  # allowed deviation of each box side from dlib's
SCORE_TOL = 1e-3  # allowed deviation of the confidence (measured: ~1e-5)


# ----------------------------------------------------------------------------- no weights needed


def test_pyramid_layout_matches_dlib_rules() -> None:
    layout = pyramid_layout(250, 250)
    rects = layout.rects
    # level 0 at the outer padding, full size
    assert tuple(rects[0]) == (11, 11, 260, 260)
    # each level is floor(5/6) of the previous one and lies inside the tiled image
    h, w = 250, 250
    for l, t, r, b in rects[1:]:
        h, w = int(5.0 / 6.0 * h), int(5.0 / 6.0 * w)
        assert (b - t + 1, r - l + 1) == (h, w)
        assert 0 <= l and 0 <= t and r < layout.width and b < layout.height
    assert layout.width == 250 + 22
    # tiles never overlap one another
    for i in range(len(rects)):
        for j in range(i + 1, len(rects)):
            a, c = rects[i], rects[j]
            assert max(a[0], c[0]) > min(a[2], c[2]) or max(a[1], c[1]) > min(a[3], c[3])


def test_pyramid_stops_at_five_rows() -> None:
    layout = pyramid_layout(40, 300)
    heights = layout.rects[:, 3] - layout.rects[:, 1] + 1
    assert heights.min() >= 5


def test_resize_bilinear_keeps_corners_and_constants() -> None:
    rng = np.random.default_rng(0)
    src = rng.random((3, 17, 23), dtype=np.float32)
    out = resize_bilinear(src, 14, 19)
    assert out.shape == (3, 14, 19)
    # corner-aligned: the four corners are copied exactly
    for y, x, ys, xs in [(0, 0, 0, 0), (-1, -1, -1, -1), (0, -1, 0, -1), (-1, 0, -1, 0)]:
        np.testing.assert_allclose(out[:, y, x], src[:, ys, xs], rtol=0, atol=1e-6)
    const = np.full((1, 9, 9), 0.25, np.float32)
    np.testing.assert_allclose(resize_bilinear(const, 7, 7), 0.25, atol=1e-7)


def test_tiled_pyramid_normalises_and_pads_with_zero() -> None:
    img = np.full((60, 80, 3), 200, np.uint8)
    tensor, layout = tiled_pyramid(img)
    assert tensor.shape == (3, layout.height, layout.width)
    l, t, r, b = layout.rects[0]
    np.testing.assert_allclose(tensor[0, t, l], (200 - 122.782) / 256, rtol=1e-6)
    assert tensor[:, 0, :].max() == 0 and tensor[:, :, 0].max() == 0  # outer padding


def test_nms_drops_overlapping_boxes_in_order() -> None:
    boxes = np.array([[0, 0, 99, 99], [5, 5, 104, 104], [200, 200, 260, 260], [10, 10, 40, 40]])
    keep = nms(boxes, iou_thresh=0.5, covered_thresh=0.95)
    # box 1 overlaps box 0 heavily; box 3 lies entirely inside box 0 (covered 100%)
    assert keep == [0, 2]


def test_decode_maps_output_to_image_like_dlib() -> None:
    """One score at output (3, 3) of a 250x250 image's pyramid: level 0, input point
    8*3+14 = 38, an 80x80 window centred there (edges at +-39.5), minus the 11 px outer
    padding, rounded halves away from zero as dlib's rectangle conversion does."""
    layout = pyramid_layout(250, 250)
    decoding = MMODDecoding(windows=((80.0, 80.0),), stride=8.0, offset=14.0, iou_thresh=0.34, covered_thresh=1.0)
    scores = np.full((1, 40, 40), -1.0, np.float32)
    scores[0, 3, 3] = 0.5
    boxes, conf = decode_output(scores, layout, decoding)
    assert boxes.tolist() == [[-13, -13, 67, 67]]
    assert conf.tolist() == [0.5]
    # a point inside level 1's tile maps back up by 6/5 per level (p * 1.2 + 0.3)
    l1, t1 = layout.rects[1][:2]
    scores[:] = -1.0
    r, c = (t1 + 60 - 14) // 8, (l1 + 60 - 14) // 8
    scores[0, r, c] = 1.0
    (box,), _ = decode_output(scores, layout, decoding)
    px, py = c * 8 + 14 - l1, r * 8 + 14 - t1
    expect = [(px - 39.5) * 1.2 + 0.3, (py - 39.5) * 1.2 + 0.3, (px + 39.5) * 1.2 + 0.3, (py + 39.5) * 1.2 + 0.3]
    assert box.tolist() == [int(np.sign(v) * np.floor(abs(v) + 0.5)) for v in expect]


def _nms_reference(boxes: np.ndarray, iou: float, covered: float) -> list[int]:
    """The plain greedy loop: each candidate against every box kept so far."""
    keep: list[int] = []
    b = boxes.astype(np.float64)
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    for i in range(len(b)):
        hit = False
        for j in keep:
            iw = min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]) + 1
            ih = min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]) + 1
            inner = iw * ih if iw > 0 and ih > 0 else 0.0
            ow = max(b[i, 2], b[j, 2]) - min(b[i, 0], b[j, 0]) + 1
            oh = max(b[i, 3], b[j, 3]) - min(b[i, 1], b[j, 1]) + 1
            if inner > 0 and (inner / (ow * oh) > iou or inner / area[i] > covered or inner / area[j] > covered):
                hit = True
                break
        if not hit:
            keep.append(i)
    return keep


def test_nms_equals_the_plain_greedy_loop() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(0, 40))
        corner = rng.integers(0, 150, (n, 2))
        boxes = np.concatenate([corner, corner + rng.integers(0, 80, (n, 2))], axis=1)
        for iou, covered in ((0.338, 1.0), (0.5, 0.95), (0.1, 0.3)):
            assert nms(boxes, iou, covered) == _nms_reference(boxes, iou, covered)


def test_decode_candidates_equals_decode_output() -> None:
    layout = pyramid_layout(300, 400)
    decoding = MMODDecoding(windows=((80.0, 80.0), (60.0, 90.0)), stride=8.0, offset=14.0, iou_thresh=0.34,
                            covered_thresh=1.0)
    h, w = (layout.height - 28) // 8 + 1, (layout.width - 28) // 8 + 1
    rng = np.random.default_rng(5)
    scores = rng.normal(-1.0, 0.8, (2, h, w)).astype(np.float32)
    scores[0, 2:4, 5:7] = 0.75  # equal scores: their order must follow the map's
    k, rr, cc = np.nonzero(scores > 0.1)
    got = decode_candidates(k, rr, cc, scores[k, rr, cc], layout, decoding)
    want = decode_output(scores, layout, decoding, 0.1)
    assert len(want[0]) > 10
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_threshold_below_keeps_every_score_above() -> None:
    from openlfr.face.nets.mmod import _threshold_below

    for t in (0.0, 0.1, -0.3, 1e-9, 2.5, 1 / 3):
        lo = _threshold_below(t)
        assert lo <= t and float(np.float32(lo)) == lo
        # every float32 near t that is above it (in float32 or exactly) passes ">= lo"
        grid = np.float32(t) + np.arange(-50, 50, dtype=np.float32) * np.spacing(np.float32(t))
        above = (grid > t) | (grid.astype(np.float64) > t)
        assert np.all(grid[above] >= np.float32(lo))
        assert not np.all(grid >= np.float32(lo))  # and it is a tight bound


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(InputError):
        MMODDetector(backend="tpu")


# ----------------------------------------------------------------------------- with weights


@pytest.fixture(scope="module")
def ours() -> MMODDetector:
    return MMODDetector(backend="cpu")


@pytest.fixture(scope="module")
def reference() -> MMODDetector:
    pytest.importorskip("dlib")
    return MMODDetector(backend="dlib")


def _load(path: Path) -> np.ndarray:
    from openlfr.face.image import load_image

    return load_image(path)


def _street_frame(data: Path) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(str(data / "video" / "street_1080p.mp4"))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, 30)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok:
        pytest.skip("cannot decode street_1080p.mp4 here")
    # half size keeps dlib-bin's run short; the detector is size-agnostic
    frame = cv2.resize(frame, (960, 540), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame[:, :, ::-1])


def _real_images(data: Path, n_lfw: int = 40, misc: tuple[str, ...] = ("two_people.jpg", "multiface.jpg", "obama.jpg"),
                 street: bool = True) -> list[tuple[str, np.ndarray]]:
    people = sorted(p for p in (data / "lfw").iterdir() if p.is_dir())
    step = max(1, len(people) // 40)
    images = []
    for person in people[::step][:n_lfw]:
        first = sorted(person.glob("*.jpg"))[0]
        images.append((first.name, _load(first)))
    for name in misc:
        images.append((name, _load(data / "misc" / name)))
    if street:
        images.append(("street_1080p.mp4@30 (960x540)", _street_frame(data)))
    return images


def _match(ours: list[Detection], ref: list[Detection]) -> float:
    """Assert same count and pairwise boxes within MAX_PX; return the largest deviation."""
    assert len(ours) == len(ref), f"{len(ours)} faces vs dlib's {len(ref)}"
    worst = 0.0
    left = list(ref)
    for d in ours:
        # pair each of ours with dlib's closest box (order can differ on near-equal scores)
        dev = [max(abs(a - b) for a, b in zip(d.box.as_list(), r.box.as_list())) for r in left]
        j = int(np.argmin(dev))
        r = left.pop(j)
        assert dev[j] <= MAX_PX, f"box {d.box} vs dlib {r.box}"
        assert abs(d.score - r.score) <= SCORE_TOL, f"score {d.score} vs dlib {r.score}"
        worst = max(worst, dev[j])
    return worst


def test_same_boxes_as_dlib_on_real_images(data_dir: Path, ours: MMODDetector, reference: MMODDetector) -> None:
    """A fifth of the pixels of the slow test's images: the first 8 LFW photos and the group photo."""
    _same_boxes_as_dlib(_real_images(data_dir, n_lfw=8, misc=("multiface.jpg",), street=False), ours, reference,
                        min_faces=14)


# slow (about 30 s: dlib's MMOD takes 0.2-1.6 s an image); the same check on 9 of these images
# (one face and six) is test_same_boxes_as_dlib_on_real_images in the default run
@pytest.mark.slow
def test_same_boxes_as_dlib_on_all_44_real_images(data_dir: Path, ours: MMODDetector,
                                                   reference: MMODDetector) -> None:
    _same_boxes_as_dlib(_real_images(data_dir), ours, reference, min_faces=40)


def _same_boxes_as_dlib(images: list[tuple[str, np.ndarray]], ours: MMODDetector, reference: MMODDetector,
                        min_faces: int) -> None:
    worst = 0.0
    faces = 0
    failures = []
    for name, img in images:
        mine, ref = ours.detect(img), reference.detect(img)
        faces += len(ref)
        try:
            worst = max(worst, _match(mine, ref))
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    print(f"\nMMOD vs dlib: {faces} faces, max box deviation {worst:.0f} px")
    assert not failures, "\n".join(failures)
    assert faces >= min_faces  # the set really has faces in it


def test_detections_are_best_first_and_typed(data_dir: Path, ours: MMODDetector) -> None:
    img = _load(data_dir / "misc" / "two_people.jpg")
    dets = ours.detect(img)
    assert isinstance(ours, Detector)
    assert len(dets) >= 2
    assert all(isinstance(d, Detection) and d.detector == "mmod" for d in dets)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)


def test_batch_equals_single(data_dir: Path, ours: MMODDetector) -> None:
    people = sorted(p for p in (data_dir / "lfw").iterdir() if p.is_dir())[:3]
    imgs = [_load(sorted(p.glob("*.jpg"))[0]) for p in people]
    batch = ours.detect_batch(imgs)
    for img, dets in zip(imgs, batch):
        single = ours.detect(img)
        assert [d.box for d in dets] == [d.box for d in single]
        np.testing.assert_allclose([d.score for d in dets], [d.score for d in single], atol=1e-4)


def test_grey_and_rgba_inputs(data_dir: Path, ours: MMODDetector) -> None:
    rgb = _load(data_dir / "misc" / "obama_small.jpg")
    grey = rgb.mean(axis=2).astype(np.uint8)
    from_grey = ours.detect(grey)
    assert from_grey == ours.detect(np.repeat(grey[:, :, None], 3, axis=2))
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert [d.box for d in ours.detect(rgba)] == [d.box for d in ours.detect(rgb)]


def test_bad_inputs_are_refused(ours: MMODDetector) -> None:
    with pytest.raises(InputError):
        ours.detect(np.zeros((50, 50, 3), np.float32))
    with pytest.raises(InputError):
        ours.detect(np.zeros((50, 50, 2), np.uint8))


@pytest.mark.parametrize("shape", [(1, 1, 3), (8, 8, 3), (30, 30, 3), (5, 400, 3), (0, 0, 3)])
def test_tiny_images_have_no_faces(ours: MMODDetector, shape: tuple[int, int, int]) -> None:
    assert ours.detect(np.full(shape, 128, np.uint8)) == []


def test_torch_module_matches_onnx(data_dir: Path, ours: MMODDetector) -> None:
    """The PyTorch path (pyramid and network, here on the CPU) gives the ONNX path's scores."""
    pytest.importorskip("torch")
    from openlfr.face.nets.mmod import TorchMMOD, load_spec

    img = _load(data_dir / "misc" / "obama_small.jpg")
    layout = pyramid_layout(*img.shape[:2])
    spec = load_spec()
    onnx_scores = ours._runner.run_images([img], layout, spec.means)
    torch_scores = TorchMMOD(spec, device="cpu").run_images([img], layout, spec.means)
    assert torch_scores.shape == onnx_scores.shape
    np.testing.assert_allclose(torch_scores, onnx_scores, atol=2e-3)
    # and the torch pyramid equals the numpy one (float rounding of the sample positions aside)
    import torch

    tp = TorchMMOD(spec, device="cpu").pyramid(torch.from_numpy(img[None]), layout)[0].numpy()
    np.testing.assert_allclose(tp, tiled_pyramid(img, layout, spec.means)[0], atol=5e-5)


def test_upsampled_same_as_dlib(data_dir: Path, ours: MMODDetector, reference: MMODDetector) -> None:
    """``upsample=1`` (dlib's pyramid_up, then boxes mapped back) gives dlib's boxes too."""
    mine = MMODDetector(backend="cpu", upsample=1)
    ref = MMODDetector(backend="dlib", upsample=1)
    for path in [data_dir / "misc" / "obama_small.jpg", sorted((data_dir / "lfw").glob("A*/*_0001.jpg"))[0]]:
        img = _load(path)
        _match(mine.detect(img), ref.detect(img))


def test_torch_pipelined_path_equals_full_map_path(data_dir: Path) -> None:
    """The cuda backend's fast path (device thresholding, chunked, here on the CPU) gives
    exactly the detections that decoding the whole score map gives, whatever the chunking,
    with mixed image sizes, and when a chunk has more candidates than fetched at once."""
    pytest.importorskip("torch")
    people = sorted(p for p in (data_dir / "lfw").iterdir() if p.is_dir())[:3]
    imgs = [_load(sorted(p.glob("*.jpg"))[0]) for p in people] + [_load(data_dir / "misc" / "obama_small.jpg")]
    det = MMODDetector(backend="cuda", device="cpu", threshold=-0.5, chunk=2)
    full: list[list[Detection]] = []
    for img in imgs:
        layout = pyramid_layout(*img.shape[:2])
        full.append(det._finish(det._runner.run_images([img], layout, det._means)[0], layout))
    assert sum(len(d) for d in full) >= 4
    assert det.detect_batch(imgs) == full
    det._runner.chunk = 1
    det._runner.CANDIDATES_PER_IMAGE = 1  # force the exact fallback
    assert det.detect_batch(imgs) == full


def test_torch_channel_padding_keeps_the_function() -> None:
    """Zero filters added for tensor-core-friendly channel counts change nothing."""
    torch = pytest.importorskip("torch")
    from openlfr.face.nets.mmod import TorchMMOD, load_spec

    spec = load_spec()
    plain = TorchMMOD(spec, device="cpu")
    padded = TorchMMOD(spec, device="cpu", channel_multiple=8, channels_last=True)
    assert [m.out_channels for m in padded.module if hasattr(m, "out_channels")][:-1] == [16, 32, 32, 48, 48, 48]
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 0.3, (1, 3, 100, 120)).astype(np.float32))
    np.testing.assert_allclose(padded.run_tensor(x).numpy(), plain.run_tensor(x).numpy(), atol=1e-5)
