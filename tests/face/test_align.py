"""Face chips against ``dlib.get_face_chip``, and end to end through dlib's ResNet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openlfr.errors import InputError
from openlfr.face.align import (
    chip_transform,
    extract_image_chip,
    face_chip,
    face_chip_details,
    face_chips,
    pyramid_down2,
)
from openlfr.face.model_files import RESNET, SHAPE5, model_path
from openlfr.face.shape_predictor import ShapePredictor5
from openlfr.face.types import Box

dlib = pytest.importorskip("dlib")
cv2 = pytest.importorskip("cv2")


def _dlib_shape(box: Box, pts: np.ndarray):  # noqa: ANN202 - a dlib object
    rect = dlib.rectangle(box.left, box.top, box.right, box.bottom)
    return dlib.full_object_detection(rect, [dlib.point(int(x), int(y)) for x, y in pts])


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _pyramid_level(details) -> int:  # noqa: ANN001
    """Which pyramid level dlib samples for these chip details (-1: the image itself)."""
    from openlfr.face.align import _rect_area, _rect_down

    level, rect = -1, details.rect
    while _rect_area(*_rect_down(*rect)) > details.rows * details.cols:
        level, rect = level + 1, _rect_down(*rect)
    return level


# --------------------------------------------------------------------------- building blocks


@pytest.mark.parametrize("shape", [(37, 41, 3), (9, 9, 3), (64, 100, 3), (8, 50, 3), (50, 51)])
def test_pyramid_down_equals_dlib(shape: tuple[int, ...]) -> None:
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    want = dlib.pyramid_down(2)(img)
    got = pyramid_down2(img if img.ndim == 3 else img[:, :, None])
    if img.ndim == 2:
        got = got[:, :, 0]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_chip_details_equal_dlib() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        base = rng.uniform(50, 400, 2)
        pts = np.round(base + rng.normal(0, 1, (5, 2)) * 3 + np.array(
            [[60, 0], [40, 2], [-20, 0], [0, 2], [20, 45]]) * rng.uniform(0.3, 3))
        box = Box(0, 0, 10, 10)
        want = dlib.get_face_chip_details(_dlib_shape(box, pts), 150, 0.25)
        got = face_chip_details(pts, 150, 0.25)
        r = want.rect
        np.testing.assert_allclose(got.rect, (r.left(), r.top(), r.right(), r.bottom()), rtol=0, atol=1e-9)
        assert got.angle == pytest.approx(want.angle, abs=1e-12)
        assert (got.rows, got.cols) == (want.rows, want.cols)


def test_chip_transform_maps_reference_points_near_landmarks() -> None:
    from openlfr.face.align import MEAN_FACE_5

    pts = np.array([[210.0, 120], [190, 122], [140, 121], [160, 122], [175, 165]])
    a = chip_transform(pts)
    ref = (0.25 + MEAN_FACE_5) / 1.5 * 150
    mapped = ref @ a[:, :2].T + a[:, 2]
    # a similarity cannot fit 5 points exactly, but it comes within a few pixels
    assert np.abs(mapped - pts).max() < 4
    assert np.abs(mapped - pts).mean() < 2


def test_bad_arguments_are_refused() -> None:
    img = np.zeros((50, 50, 3), np.uint8)
    pts = np.array([[30.0, 20], [26, 20], [14, 20], [18, 20], [22, 30]])
    with pytest.raises(InputError):
        face_chip(img, pts[:4])
    with pytest.raises(InputError):
        face_chip(img, np.full((5, 2), np.nan))
    with pytest.raises(InputError):
        face_chip(img.astype(np.float32), pts)
    with pytest.raises(InputError):
        face_chip(np.zeros((50, 50, 4), np.uint8), pts)
    with pytest.raises(InputError):
        face_chip(img, pts, size=1)


def test_chip_outside_the_image_is_black() -> None:
    img = np.full((40, 40, 3), 200, np.uint8)
    pts = np.array([[530.0, 520], [526, 520], [514, 520], [518, 520], [522, 530]])
    chip = face_chip(img, pts)
    assert chip.shape == (150, 150, 3) and not chip.any()


# --------------------------------------------------------------------------- real faces


def _lfw_images(data_dir: Path, count: int):  # noqa: ANN202 - generator
    """(name, RGB image, dlib HOG rectangles) for the first image of sorted LFW people."""
    detector = dlib.get_frontal_face_detector()
    faces = 0
    for person in sorted(p for p in (data_dir / "lfw").iterdir() if p.is_dir()):
        files = sorted(person.glob("*.jpg"))
        if not files:
            continue
        img = _read_rgb(files[0])
        rects = list(detector(img, 0))
        if rects:
            yield files[0].name, img, rects
            faces += len(rects)
        if faces >= count:
            return


@pytest.fixture(scope="module")
def resnet():  # noqa: ANN201 - a dlib object
    return dlib.face_recognition_model_v1(str(model_path(RESNET)))


def _cosine(a, b) -> float:  # noqa: ANN001
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.slow
def test_lfw_end_to_end_equals_dlib(data_dir: Path, resnet) -> None:  # noqa: ANN001
    """Our landmarks -> our chip vs dlib's landmarks -> dlib's chip, on 300+ LFW faces.

    The ResNet is deterministic, so faces whose two chips are byte-identical have identical
    descriptors; the descriptor is computed for every face whose chips differ and, as a
    check of the comparison itself, for a sample of the others.
    """
    ours_sp = ShapePredictor5()
    dlib_sp = dlib.shape_predictor(str(model_path(SHAPE5)))
    pairs, diffs = [], []
    for _, img, rects in _lfw_images(data_dir, 300):
        boxes = [Box(r.left(), r.top(), r.right(), r.bottom()) for r in rects]
        marks = ours_sp.landmarks(img, boxes)
        for rect, pts in zip(rects, marks):
            want = dlib.get_face_chip(img, dlib_sp(img, rect), size=150, padding=0.25)
            got = face_chip(img, pts)
            d = np.abs(got.astype(np.int16) - want.astype(np.int16))
            diffs.append((d.mean(), d.max()))
            pairs.append((got, want))
    diffs_a = np.array(diffs)
    differing = [i for i, (m, _) in enumerate(diffs) if m > 0]
    check = sorted(set(differing) | set(range(0, len(pairs), max(1, len(pairs) // 8))))
    cosines = [
        _cosine(resnet.compute_face_descriptor(pairs[i][0]), resnet.compute_face_descriptor(pairs[i][1]))
        for i in check
    ]
    print(
        f"\n{len(pairs)} LFW chips: mean |diff| {diffs_a[:, 0].mean():.4f}, worst face mean "
        f"{diffs_a[:, 0].max():.4f}, max {diffs_a[:, 1].max():.0f} grey levels; "
        f"{len(differing)} chips differ; "
        f"ResNet on {len(check)} faces: min cosine {min(cosines):.6f}"
    )
    assert len(pairs) >= 300
    assert diffs_a[:, 0].max() < 0.5
    assert min(cosines) >= 0.9999


@pytest.mark.slow
def test_large_faces_use_the_pyramid_and_equal_dlib(data_dir: Path, resnet) -> None:  # noqa: ANN001
    """Faces much bigger than the chip (1080p portrait, LFW upscaled x3 and x5)."""
    detector = dlib.get_frontal_face_detector()
    dlib_sp = dlib.shape_predictor(str(model_path(SHAPE5)))
    ours_sp = ShapePredictor5()
    images = [_read_rgb(data_dir / "misc" / "obama-1080p.jpg")]
    images[0] = cv2.resize(images[0], None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR)
    for _, img, _ in list(_lfw_images(data_dir, 3)):
        for k in (3, 5):
            images.append(cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC))
    levels, worst = [], 0
    for img in images:
        small = cv2.resize(img, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
        found = detector(small, 0)
        rects = [dlib.rectangle(4 * r.left(), 4 * r.top(), 4 * r.right(), 4 * r.bottom()) for r in found]
        assert rects
        for rect in rects:
            box = Box(rect.left(), rect.top(), rect.right(), rect.bottom())
            pts = ours_sp.landmarks(img, [box])[0]
            shape = dlib_sp(img, rect)
            np.testing.assert_array_equal(pts, [[p.x, p.y] for p in shape.parts()])
            levels.append(_pyramid_level(face_chip_details(pts)))
            got, want = face_chip(img, pts), dlib.get_face_chip(img, shape, size=150, padding=0.25)
            worst = max(worst, int(np.abs(got.astype(int) - want).max()))
            cos = _cosine(resnet.compute_face_descriptor(got), resnet.compute_face_descriptor(want))
            assert cos >= 0.9999
    print(f"\npyramid levels used: {levels}; max |diff| {worst}")
    assert max(levels) >= 1 and min(levels) <= 0
    assert worst == 0


def test_edges_grey_and_batches_equal_dlib(data_dir: Path) -> None:
    """Faces near the border (zero fill), a grey image, several faces in one call."""
    img = _read_rgb(data_dir / "misc" / "multiface.jpg")
    detector = dlib.get_frontal_face_detector()
    dlib_sp = dlib.shape_predictor(str(model_path(SHAPE5)))
    rects = list(detector(img, 0))
    h, w = img.shape[:2]
    rects += [dlib.rectangle(-60, -40, 100, 120), dlib.rectangle(w - 90, h - 80, w + 70, h + 80)]
    shapes = [dlib_sp(img, r) for r in rects]
    marks = [np.array([[p.x, p.y] for p in s.parts()], float) for s in shapes]
    batch = face_chips(img, marks)
    assert batch.shape == (len(rects), 150, 150, 3)
    for s, got in zip(shapes, batch):
        np.testing.assert_array_equal(got, dlib.get_face_chip(img, s, size=150, padding=0.25))
    # the border faces really are partly outside: part of their chips is black fill
    assert (batch[-1] == 0).all(axis=2).any() and (batch[-2] == 0).all(axis=2).any()

    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    for s, pts in zip(shapes[:3], marks[:3]):
        got = face_chip(grey, pts)
        want = dlib.get_face_chip(grey, s, size=150, padding=0.25)
        assert got.shape == (150, 150, 3)
        for c in range(3):
            np.testing.assert_array_equal(got[:, :, c], want)

    # other sizes and paddings, and the fast path of an unrotated, unscaled chip
    for size, padding in ((200, 0.2), (64, 0.0), (151, 0.5)):
        want = dlib.get_face_chip(img, shapes[0], size=size, padding=padding)
        np.testing.assert_array_equal(face_chip(img, marks[0], size, padding), want)
    from openlfr.face.align import ChipDetails

    straight = ChipDetails(-5.0, 10.0, 94.0, 109.0, 0.0, 100, 100)
    dlib_details = dlib.chip_details(dlib.drectangle(-5, 10, 94, 109), dlib.chip_dims(100, 100), 0)
    want = dlib.extract_image_chip(img, dlib_details)
    np.testing.assert_array_equal(extract_image_chip(img, straight), want)


@pytest.mark.slow
def test_shared_pyramid_equals_dlib_batch(data_dir: Path) -> None:
    """Two large faces: dlib's batched chips differ from its single ones; we match both."""
    small = _read_rgb(data_dir / "misc" / "two_people.jpg")
    img = cv2.resize(small, None, fx=3, fy=3, interpolation=cv2.INTER_LINEAR)
    dlib_sp = dlib.shape_predictor(str(model_path(SHAPE5)))
    shapes = dlib.full_object_detections()
    for r in dlib.get_frontal_face_detector()(small, 0):
        shapes.append(dlib_sp(img, dlib.rectangle(3 * r.left(), 3 * r.top(), 3 * r.right(), 3 * r.bottom())))
    assert len(shapes) >= 2
    marks = [np.array([[p.x, p.y] for p in s.parts()], float) for s in shapes]
    batch = dlib.get_face_chips(img, shapes, size=150, padding=0.25)
    single = [dlib.get_face_chip(img, s, size=150, padding=0.25) for s in shapes]
    assert any(not np.array_equal(a, b) for a, b in zip(batch, single))  # the case is real
    for got, want in zip(face_chips(img, marks, shared_pyramid=True), batch):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(face_chips(img, marks), single):
        np.testing.assert_array_equal(got, want)
