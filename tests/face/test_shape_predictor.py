"""The numpy shape predictor against dlib's own, on synthetic models and on real faces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from openlfr.errors import InputError, ModelError
from openlfr.face.model_files import SHAPE5, model_path
from openlfr.face.shape_predictor import (
    DlibLandmarker,
    ShapePredictor,
    ShapePredictor5,
    parse_shape_predictor,
)
from openlfr.face.types import Box, Landmarker

dlib = pytest.importorskip("dlib")


# --------------------------------------------------------------------------- a dlib writer
# A minimal serialiser of dlib's format, to build small models that dlib itself can load.


def _int(v: int) -> bytes:
    mag = abs(int(v))
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def _float(v: float) -> bytes:
    v = float(np.float32(v))
    if v == 0:
        return _int(0) + _int(0)
    frac, exp = math.frexp(v)
    return _int(int(frac * (1 << 24))) + _int(exp - 24)


def _matrix_col(values: np.ndarray) -> bytes:
    return _int(-len(values)) + _int(-1) + b"".join(_float(x) for x in values)


def synthetic_model_bytes(
    rng: np.random.Generator, parts: int, levels: int, trees: int, depth: int, feats: int
) -> bytes:
    """A random but valid shape predictor (dlib's serialisation, version 1)."""
    nsplit = 2**depth - 1
    out = [_int(1), _matrix_col(rng.uniform(0.2, 0.8, 2 * parts))]
    out.append(_int(levels))
    for _ in range(levels):
        out.append(_int(trees))
        for _ in range(trees):
            out.append(_int(nsplit))
            for _ in range(nsplit):
                a, b = rng.integers(0, feats, 2)
                out.append(_int(a) + _int(b) + _float(rng.uniform(-60, 60)))
            out.append(_int(nsplit + 1))
            for _ in range(nsplit + 1):
                out.append(_matrix_col(rng.normal(0, 0.01, 2 * parts)))
    out.append(_int(levels))
    for _ in range(levels):
        out.append(_int(feats) + b"".join(_int(i) for i in rng.integers(0, parts, feats)))
    out.append(_int(levels))
    for _ in range(levels):
        out.append(_int(feats) + b"".join(_float(x) for x in rng.uniform(-0.3, 0.3, 2 * feats)))
    return b"".join(out)


def _textured_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth random colour texture, so that nearby feature pixels differ a little."""
    import cv2

    small = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-20, 21, (h, w, 3))
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- synthetic models


@pytest.mark.parametrize(("depth", "parts"), [(2, 3), (3, 3), (4, 3), (5, 3), (3, 1), (4, 7)])
def test_synthetic_models_match_dlib(tmp_path: Path, depth: int, parts: int) -> None:
    """Every tree depth (table and level-by-level walks), any number of parts, boxes anywhere."""
    rng = np.random.default_rng(depth * 10 + parts)
    path = tmp_path / f"sp{depth}.dat"
    path.write_bytes(synthetic_model_bytes(rng, parts=parts, levels=4, trees=25, depth=depth, feats=60))
    ours = ShapePredictor(path, cache_dir=tmp_path / "cache")
    ref = DlibLandmarker(path)
    assert ours.num_parts == parts and ours.model.tree_depth == depth
    img = _textured_image(rng, 120, 160)
    boxes = [Box(20, 10, 90, 80), Box(-30, -20, 40, 50), Box(100, 60, 190, 150), Box(5, 5, 6, 6)]
    for got, want in zip(ours.landmarks(img, boxes), ref.landmarks(img, boxes)):
        np.testing.assert_array_equal(got, want)


def test_cache_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    path = tmp_path / "sp.dat"
    path.write_bytes(synthetic_model_bytes(rng, parts=2, levels=2, trees=5, depth=3, feats=20))
    first = ShapePredictor(path, cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("*.npz"))) == 1
    second = ShapePredictor(path, cache_dir=tmp_path / "c")
    for name in first.model.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(first.model, name), getattr(second.model, name))


def test_trees_are_summed_in_order() -> None:
    """dlib adds tree outputs one by one in float32; the vectorised sum must do the same."""
    rng = np.random.default_rng(0)
    buf = (rng.normal(0, 0.01, (3, 501, 10))).astype(np.float32)
    buf[:, 0] = rng.uniform(0, 1, (3, 10)).astype(np.float32)
    seq = buf[:, 0].copy()
    for i in range(1, buf.shape[1]):
        seq = seq + buf[:, i]
    np.testing.assert_array_equal(np.add.reduce(buf, axis=1), seq)


# --------------------------------------------------------------------------- bad input


def test_bundled_model_structure() -> None:
    sp = ShapePredictor5()
    m = sp.model
    assert isinstance(sp, Landmarker)
    assert sp.num_parts == 5
    assert m.split_thresh.shape == (15, 500, 15) and m.tree_depth == 4
    assert m.deltas.shape == (15, 800, 2)


def test_truncated_and_corrupt_files_raise_model_error(tmp_path: Path) -> None:
    cut = tmp_path / "cut.dat"
    cut.write_bytes(model_path(SHAPE5).read_bytes()[:200_000])  # the real model, truncated
    with pytest.raises(ModelError):
        ShapePredictor5(cut, cache_dir=tmp_path)
    with pytest.raises(ModelError):
        ShapePredictor5(tmp_path / "missing.dat", cache_dir=tmp_path)

    rng = np.random.default_rng(1)
    data = synthetic_model_bytes(rng, parts=5, levels=3, trees=10, depth=4, feats=40)
    parse_shape_predictor(data)  # the intact model parses
    for bad in (
        data[:-1],  # truncated
        data + b"\x00",  # trailing bytes
        b"\x01\x02" + data[2:],  # version 2
        b"",
        rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        _int(1) + _matrix_col(np.zeros(10)) + _int(1 << 40),  # a huge count: refused, not allocated
        _int(1) + _int(-10) + _int(-1) + _int(1) + _int(30000) + data[20:],  # a float overflows
    ):
        with pytest.raises(ModelError):
            parse_shape_predictor(bad)
    for start in range(1, len(data), len(data) // 25):  # a valid beginning, then garbage
        with pytest.raises(ModelError):
            parse_shape_predictor(data[:start] + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())


def test_wrong_number_of_parts_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "three.dat"
    rng = np.random.default_rng(2)
    path.write_bytes(synthetic_model_bytes(rng, parts=3, levels=1, trees=2, depth=2, feats=5))
    with pytest.raises(ModelError, match="5-point"):
        ShapePredictor5(path, cache_dir=tmp_path)


def test_bad_images_are_refused() -> None:
    sp = ShapePredictor5()
    box = [Box(0, 0, 10, 10)]
    with pytest.raises(InputError):
        sp.landmarks(np.zeros((20, 20, 3), np.float32), box)
    with pytest.raises(InputError):
        sp.landmarks(np.zeros((20, 20, 4), np.uint8), box)
    with pytest.raises(InputError):
        sp.landmarks(np.zeros((0, 20, 3), np.uint8), box)
    with pytest.raises(InputError):
        sp.landmarks(np.zeros((20, 20, 3), np.uint8), [Box(0, 0, 10**7, 10**7)])
    assert sp.landmarks(np.zeros((20, 20, 3), np.uint8), []) == []


# --------------------------------------------------------------------------- real faces


def lfw_faces(data_dir: Path, count: int, upsample: int = 0) -> list[tuple[str, np.ndarray, list[Box]]]:
    """(name, RGB image, dlib HOG boxes) for the first image of sorted LFW people with a face."""
    import cv2

    detector = dlib.get_frontal_face_detector()
    out, faces = [], 0
    for person in sorted(p for p in (data_dir / "lfw").iterdir() if p.is_dir()):
        files = sorted(person.glob("*.jpg"))
        if not files:
            continue
        img = cv2.cvtColor(cv2.imread(str(files[0])), cv2.COLOR_BGR2RGB)
        boxes = [Box(r.left(), r.top(), r.right(), r.bottom()) for r in detector(img, upsample)]
        if boxes:
            out.append((files[0].name, img, boxes))
            faces += len(boxes)
        if faces >= count:
            break
    return out


@pytest.mark.slow
def test_lfw_landmarks_equal_dlib(data_dir: Path) -> None:
    sp, ref = ShapePredictor5(), DlibLandmarker()
    faces, worst = 0, 0.0
    for _name, img, boxes in lfw_faces(data_dir, 300):
        for got, want in zip(sp.landmarks(img, boxes), ref.landmarks(img, boxes)):
            worst = max(worst, float(np.abs(got - want).max()))
            faces += 1
    print(f"\n{faces} LFW faces: max |ours - dlib| = {worst} px")
    assert faces >= 300
    assert worst == 0.0


def test_real_edge_cases_equal_dlib(data_dir: Path) -> None:
    """Several faces at once, boxes hanging off every edge, a grey image."""
    import cv2

    sp, ref = ShapePredictor5(), DlibLandmarker()
    img = cv2.cvtColor(cv2.imread(str(data_dir / "misc" / "multiface.jpg")), cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    boxes = [Box(r.left(), r.top(), r.right(), r.bottom()) for r in dlib.get_frontal_face_detector()(img, 0)]
    assert len(boxes) >= 4
    boxes += [Box(-60, -40, 100, 120), Box(w - 90, h - 80, w + 70, h + 80)]
    boxes += [Box(-30, h // 3, 140, h // 3 + 170)]
    ours = sp.landmarks(img, boxes)
    for got, want in zip(ours, ref.landmarks(img, boxes)):
        np.testing.assert_array_equal(got, want)
    # one box at a time gives the same as the batch
    np.testing.assert_array_equal(sp.landmarks(img, boxes[-1:])[0], ours[-1])

    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    predictor = dlib.shape_predictor(str(model_path(SHAPE5)))
    for got, b in zip(sp.landmarks(grey, boxes), boxes):
        det = predictor(grey, dlib.rectangle(b.left, b.top, b.right, b.bottom))
        np.testing.assert_array_equal(got, [[p.x, p.y] for p in det.parts()])


def test_subpixel_option_rounds_to_dlib(data_dir: Path) -> None:
    import cv2

    img = cv2.cvtColor(cv2.imread(str(data_dir / "misc" / "obama.jpg")), cv2.COLOR_BGR2RGB)
    boxes = [Box(r.left(), r.top(), r.right(), r.bottom()) for r in dlib.get_frontal_face_detector()(img, 0)]
    fine = ShapePredictor5(subpixel=True).landmarks(img, boxes)
    whole = ShapePredictor5().landmarks(img, boxes)
    for f, w in zip(fine, whole):
        np.testing.assert_array_equal(np.floor(f + 0.5), w)
        assert np.abs(f - w).max() <= 0.5
        assert not np.array_equal(f, w)
