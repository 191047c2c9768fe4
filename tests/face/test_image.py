"""Image loading refuses every kind of bad file with a clear ImageError."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from openlfr.errors import ImageError
from openlfr.face.image import as_rgb, load_image


def _jpeg(w: int = 64, h: int = 48) -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_loads_rgb(tmp_path):
    p = tmp_path / "a.jpg"
    p.write_bytes(_jpeg())
    img = load_image(p)
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert load_image(p.read_bytes()).shape == (48, 64, 3)


def test_grey_and_rgba_become_rgb(tmp_path):
    p = tmp_path / "g.png"
    Image.fromarray(np.full((10, 12), 7, np.uint8)).save(p)
    assert load_image(p).shape == (10, 12, 3)
    assert as_rgb(np.zeros((5, 6, 4), np.uint8)).shape == (5, 6, 3)
    with pytest.raises(ImageError):
        as_rgb(np.zeros((5, 6), np.float32))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"", "empty file"),
        (b"hello, I am text\n" * 10, "not an image"),
        ("truncated", "corrupt or truncated"),
    ],
)
def test_bad_files_are_refused(tmp_path, content, message):
    p = tmp_path / "bad.jpg"
    if content == "truncated":
        p.write_bytes(_jpeg(400, 300)[:600])
    elif content is not None:
        p.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        load_image(p)


def test_huge_image_refused_before_decoding(tmp_path):
    p = tmp_path / "huge.png"
    Image.new("1", (8000, 7000)).save(p)  # 56 megapixels, a few kB on disk
    with pytest.raises(ImageError, match="megapixel"):
        load_image(p)
    assert load_image(p, max_pixels=60_000_000).shape == (7000, 8000, 3)


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)
