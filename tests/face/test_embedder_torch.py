"""The ResNet as a PyTorch module: same results as the ONNX graph (CPU here, CUDA if present)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from openlfr.errors import ModelError  # noqa: E402
from openlfr.face.embedders import OnnxEmbedder, TorchEmbedder  # noqa: E402
from openlfr.face.nets.resnet import build_torch, load_resnet  # noqa: E402


def synthetic_chips(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random images (noise alone would be an unusually easy input)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(n, 10, 10, 3)).astype(np.float32)
    big = small.repeat(15, axis=1).repeat(15, axis=2)
    big += rng.normal(0, 12, size=big.shape)
    return np.clip(big, 0, 255).astype(np.uint8)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, np.ndarray]:
    chips = synthetic_chips(12)
    return chips, OnnxEmbedder("cpu", threads=2).embed(chips)


def test_torch_cpu_matches_onnx(reference: tuple[np.ndarray, np.ndarray]) -> None:
    chips, want = reference
    torch.set_num_threads(2)
    module = build_torch(load_resnet())
    with torch.inference_mode():
        got = module(torch.from_numpy(chips)).numpy()
    assert got.shape == (12, 128)
    assert cosine(got, want).min() >= 0.99999
    np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_torch_cuda_matches_onnx(reference: tuple[np.ndarray, np.ndarray]) -> None:
    chips, want = reference
    got = TorchEmbedder("cuda", batch_size=5).embed(chips)
    assert cosine(got, want).min() >= 0.9999


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_torch_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="CUDA"):
        TorchEmbedder("cuda")
