"""Face embedders: aligned 150x150 RGB chips in, dlib's raw 128-D ResNet descriptors out.

* :class:`OnnxEmbedder`: the ResNet rebuilt from the ``.dat`` weights, run by ONNX Runtime
  (CPU, or CUDA with onnxruntime-gpu), batched; the default.
* :class:`TorchEmbedder`: the same network as a PyTorch module, for GPUs.
* :class:`DlibEmbedder`: dlib itself (``face_recognition_model_v1``), the reference.

All three implement :class:`openlfr.face.types.Embedder` and agree to cosine >= 0.9999
(checked on LFW faces by ``tests/face/test_embedder_onnx.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from openlfr.errors import InputError, ModelError
from openlfr.face.types import CHIP_SIZE, Embedder

EMBEDDING_DIM = 128
BACKENDS = ("auto", "cpu", "cuda", "dlib")


def check_chips(chips: np.ndarray) -> np.ndarray:
    """Validate a ``(N, 150, 150, 3)`` uint8 batch of chips; returns it C-contiguous."""
    if not isinstance(chips, np.ndarray):
        raise InputError("face chips must be a numpy array")
    if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
        raise InputError(
            f"face chips must have shape (N, {CHIP_SIZE}, {CHIP_SIZE}, 3), got {tuple(chips.shape)}"
        )
    if chips.dtype != np.uint8:
        raise InputError(f"face chips must be uint8 RGB, got {chips.dtype}")
    return np.ascontiguousarray(chips)


def _resnet_path(model_path: str | Path | None) -> Path:
    from openlfr.face.model_files import RESNET
    from openlfr.face.model_files import model_path as bundled

    return Path(model_path) if model_path else bundled(RESNET)


class OnnxEmbedder:
    """The ResNet on ONNX Runtime; the graph is built from the ``.dat`` file and cached."""

    dim = EMBEDDING_DIM

    def __init__(
        self,
        backend: str = "cpu",
        batch_size: int = 32,
        threads: int | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        from openlfr.face import onnx_runtime
        from openlfr.face.nets import resnet

        if batch_size < 1:
            raise InputError("batch_size must be at least 1")
        self.name = f"onnx-{backend}"
        self.backend = backend
        self.batch_size = batch_size
        graph = resnet.cached_resnet_onnx(str(_resnet_path(model_path)))
        self.session = onnx_runtime.make_session(graph, backend=backend, threads=threads)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """``(N, 150, 150, 3)`` uint8 RGB chips -> ``(N, 128)`` float32 raw embeddings."""
        from openlfr.face.nets.resnet import INPUT_NAME, OUTPUT_NAME

        chips = check_chips(chips)
        out = np.empty((len(chips), self.dim), np.float32)
        for start in range(0, len(chips), self.batch_size):
            batch = chips[start : start + self.batch_size]
            out[start : start + len(batch)] = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        return out


class TorchEmbedder:
    """The ResNet as a PyTorch module (for GPUs; torch is imported only here)."""

    dim = EMBEDDING_DIM

    def __init__(
        self,
        device: str = "cuda",
        batch_size: int = 256,
        model_path: str | Path | None = None,
        allow_tf32: bool = False,
    ) -> None:
        try:
            import torch
        except ImportError as exc:
            raise ModelError("the torch backend needs PyTorch, which is not installed") from exc
        from openlfr.face.nets import resnet

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError("PyTorch cannot see a CUDA GPU")
        if batch_size < 1:
            raise InputError("batch_size must be at least 1")
        if device.startswith("cuda"):
            # TF32 would make the GPU faster but drift from dlib's float32 results.
            torch.backends.cudnn.allow_tf32 = allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        self.name = f"torch-{device}"
        self.device = torch.device(device)
        self.batch_size = batch_size
        net = resnet.load_resnet(str(_resnet_path(model_path)))
        self.module = resnet.build_torch(net).to(self.device)
        self._torch = torch

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """``(N, 150, 150, 3)`` uint8 RGB chips -> ``(N, 128)`` float32 raw embeddings."""
        torch = self._torch
        chips = check_chips(chips)
        out = np.empty((len(chips), self.dim), np.float32)
        with torch.inference_mode():
            for start in range(0, len(chips), self.batch_size):
                batch = torch.from_numpy(chips[start : start + self.batch_size]).to(self.device)
                out[start : start + len(batch)] = self.module(batch).float().cpu().numpy()
        return out


class DlibEmbedder:
    """dlib's own ``face_recognition_model_v1`` (the reference; slow without BLAS)."""

    dim = EMBEDDING_DIM
    name = "dlib"

    def __init__(self, model_path: str | Path | None = None) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise ModelError("the dlib backend needs the dlib package, which is not installed") from exc
        self._model: Any = dlib.face_recognition_model_v1(str(_resnet_path(model_path)))

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """``(N, 150, 150, 3)`` uint8 RGB chips -> ``(N, 128)`` float32, one dlib call per chip."""
        chips = check_chips(chips)
        out = np.empty((len(chips), self.dim), np.float32)
        for i, chip in enumerate(chips):
            out[i] = np.asarray(self._model.compute_face_descriptor(chip), np.float32)
        return out


def make_embedder(backend: str = "auto", **kwargs: Any) -> Embedder:
    """An embedder for ``backend``: ``"dlib"``, ``"cpu"`` (ONNX Runtime), ``"cuda"``
    (onnxruntime-gpu if installed, else PyTorch on CUDA) or ``"auto"`` (cuda if available,
    else cpu). ``kwargs`` go to the embedder's constructor (``batch_size``, ``model_path``...).
    """
    from openlfr.face.onnx_runtime import cuda_available
    from openlfr.face.torch_graph import torch_cuda_available

    if backend not in BACKENDS:
        raise InputError(f"unknown embedding backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "dlib":
        return DlibEmbedder(**kwargs)
    if backend == "auto":
        backend = "cuda" if cuda_available() or torch_cuda_available() else "cpu"
    if backend == "cpu":
        return OnnxEmbedder("cpu", **kwargs)
    if cuda_available():
        return OnnxEmbedder("cuda", **kwargs)
    if torch_cuda_available():
        return TorchEmbedder("cuda", **kwargs)
    raise ModelError("no CUDA backend: install onnxruntime-gpu, or PyTorch with CUDA, on a GPU machine")
