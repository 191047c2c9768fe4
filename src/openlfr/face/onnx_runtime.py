"""ONNX Runtime sessions and the on-disk cache of converted ONNX graphs.

Graphs built from dlib ``.dat`` files are cached in ``get_settings().model_cache_dir`` under a
name that includes the source file's size and hash and the builder's version, so that a new
model file or a changed builder never reuses a stale graph. Files are written atomically
(temporary file, then rename), so concurrent processes never read a half-written graph.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from openlfr.config import get_settings
from openlfr.errors import ModelError

_BACKENDS = ("cpu", "cuda", "auto")


def available_providers() -> list[str]:
    """ONNX Runtime's execution providers in this installation."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def cuda_available() -> bool:
    """Whether onnxruntime-gpu's CUDA provider is installed."""
    return "CUDAExecutionProvider" in available_providers()


def default_threads() -> int:
    """Intra-op threads: ``OMP_NUM_THREADS`` when set, else the number of cores."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, os.cpu_count() or 1)


def make_session(
    model: bytes | str | Path,
    backend: str = "cpu",
    threads: int | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` for a serialised model or a model file.

    ``backend`` is ``"cpu"``, ``"cuda"`` (CUDA provider, error if missing) or ``"auto"`` (CUDA
    when installed, else CPU). ``threads`` sets the intra-op pool (default
    :func:`default_threads`); graph optimisations are all enabled.
    """
    import onnxruntime as ort

    if backend not in _BACKENDS:
        raise ModelError(f"unknown ONNX Runtime backend {backend!r} (use one of {_BACKENDS})")
    use_cuda = backend == "cuda" or (backend == "auto" and cuda_available())
    if backend == "cuda" and not cuda_available():
        raise ModelError("the CUDA backend needs onnxruntime-gpu, which is not installed")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1  # the graphs are chains: no parallel branches worth a pool
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    # Idle pool threads would otherwise spin for a while after each run, taking the cores
    # from the next network (YuNet and SFace run back to back) and from the other cameras.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"ONNX Runtime cannot load the model: {str(exc).splitlines()[0]}") from exc


def make_runner(
    model: bytes | str | Path,
    backend: str = "cpu",
    threads: int | None = None,
) -> Any:
    """Something with ``run(output_names, feeds)`` that runs a float ONNX graph on ``backend``.

    ``cpu`` (or ``dlib``, which has no meaning for ONNX models): ONNX Runtime on the CPU.
    ``cuda``: ONNX Runtime's CUDA provider when onnxruntime-gpu is installed, else PyTorch on
    the GPU (:class:`openlfr.face.torch_graph.TorchGraph`), else a :class:`ModelError`.
    ``auto``: ``cuda`` where either is available, else ``cpu``.
    """
    from openlfr.face.torch_graph import TorchGraph, torch_cuda_available

    if backend not in (*_BACKENDS, "dlib"):
        raise ModelError(f"unknown backend {backend!r} (use one of {_BACKENDS})")
    if backend == "auto":
        backend = "cuda" if cuda_available() or torch_cuda_available() else "cpu"
    if backend != "cuda":
        return make_session(model, backend="cpu", threads=threads)
    if cuda_available():
        return make_session(model, backend="cuda", threads=threads)
    if torch_cuda_available():
        return TorchGraph(model, device="cuda")
    raise ModelError("no CUDA backend: install onnxruntime-gpu, or PyTorch with CUDA, on a GPU machine")


@lru_cache(maxsize=16)
def _file_fingerprint(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"{size}-{digest.hexdigest()[:16]}"


def source_fingerprint(source: str | Path) -> str:
    """``<size>-<sha256 prefix>`` of a model file (memoised per size and mtime)."""
    path = Path(source)
    try:
        st = path.stat()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from exc
    return _file_fingerprint(str(path.resolve()), st.st_size, st.st_mtime_ns)


def cached_model(
    name: str,
    build: Callable[[], bytes],
    source: str | Path | None = None,
    version: str | int = "",
    cache_dir: Path | None = None,
) -> Path:
    """Path of the cached ONNX graph ``name``, building and saving it on first use.

    The file name holds ``name``, the fingerprint of ``source`` (the ``.dat`` file the graph is
    built from) and the builder ``version``; ``build()`` returns the serialised graph.
    """
    parts = [name]
    if source is not None:
        parts.append(source_fingerprint(source))
    if version != "":
        parts.append(f"v{version}")
    folder = cache_dir or get_settings().model_cache_dir
    path = Path(folder) / ("-".join(parts) + ".onnx")
    if path.is_file() and path.stat().st_size > 0:
        return path
    data = build()
    try:
        # private, like the data folder (mkstemp files are 0600)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ModelError(f"cannot write the model cache in {path.parent}: {exc.strerror}") from exc
    return path
