"""Operators' own ONNX embedders, registered without code.

``OPENLFR_MODELS_FILE`` names a JSON file::

    {"embedders": [{"name": "my-arcface-r50", "path": "/models/r50.onnx",
                    "sha256": "<64 hex digits>", "input_size": 112, "landmarks": "arcface5",
                    "dim": 512, "threshold": 0.35, "mean": 127.5, "std": 127.5,
                    "licence": "...", "source": "..."}]}

and detectors in YuNet's ONNX format (the 12 outputs ``cls/obj/bbox/kps`` at strides 8, 16
and 32 that OpenCV's ``FaceDetectorYN`` reads, decoded by :mod:`openlfr.face.yunet_net`), for example a YuNet
retrained or quantised differently::

    {"detectors": [{"name": "my-yunet", "path": "yunet-q.onnx", "sha256": "<64 hex digits>",
                    "format": "yunet", "min_face": 32}]}

Each model is checked when the registry loads, before anything runs: the file exists, its
SHA-256 is the one given, it is an ONNX graph with one ``(N, 3, S, S)`` float input where
``S`` is ``input_size``, and its output has ``dim`` values. Any failure is one
:class:`~openlfr.errors.ModelError` naming the model and the reason, and no model from the
file is registered. The graph reads RGB chips aligned on the given 5 points
(``arcface5``: ArcFace's template; ``dlib5``: dlib's face chip), as float ``(x - mean) / std``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from openlfr.errors import ModelError

if TYPE_CHECKING:
    from openlfr.face.registry import Registry

MODELS_ENV = "OPENLFR_MODELS_FILE"
REQUIRED = ("name", "path", "sha256", "input_size", "landmarks", "dim", "threshold")


class UserOnnxEmbedder:
    """An operator's ONNX embedder, batched, on ``backend`` (see
    :func:`openlfr.face.onnx_runtime.make_runner`: ONNX Runtime on the CPU, or the GPU path)."""

    def __init__(self, path: Path, input_size: int, dim: int, mean: float, std: float, batch: int = 32,
                 backend: str = "cpu") -> None:
        import onnx

        from openlfr.face.onnx_runtime import make_runner

        self.dim, self.input_size, self.mean, self.std, self.batch = dim, input_size, mean, std, batch
        graph = onnx.load(str(path), load_external_data=False).graph
        self.input = next(i.name for i in graph.input if i.name not in {t.name for t in graph.initializer})
        self.session = make_runner(Path(path), backend=backend)

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 RGB chips -> ``(N, dim)`` float32 raw embeddings."""
        chips = np.asarray(chips)
        if chips.ndim != 4 or chips.shape[1:] != (self.input_size, self.input_size, 3):
            raise ModelError(f"chips must be (N, {self.input_size}, {self.input_size}, 3), got {chips.shape}")
        out = []
        for k in range(0, len(chips), self.batch):
            x = (chips[k : k + self.batch].astype(np.float32) - self.mean) / self.std
            out.append(self.session.run(None, {self.input: np.ascontiguousarray(x.transpose(0, 3, 1, 2))})[0])
        emb = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return emb.reshape(len(chips), -1).astype(np.float32)


def _check(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    """The validated spec, or a :class:`ModelError` saying what is wrong."""
    name = str(spec.get("name", "?"))
    missing = [k for k in REQUIRED if k not in spec]
    if missing:
        raise ModelError(f"model {name!r}: missing {', '.join(missing)}")
    path = Path(spec["path"]).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise ModelError(f"model {name!r}: file {path} not found")
    from openlfr.face.registry import ARCFACE5, DLIB5, file_digest

    digest = file_digest(str(path))
    if digest != str(spec["sha256"]).lower():
        raise ModelError(f"model {name!r}: {path} has SHA-256 {digest[:16]}..., not the registered "
                         f"{str(spec['sha256'])[:16]}...")
    if spec["landmarks"] not in (ARCFACE5, DLIB5):
        raise ModelError(f"model {name!r}: landmarks must be {ARCFACE5} or {DLIB5}")
    size, dim = int(spec["input_size"]), int(spec["dim"])
    chip = 150 if spec["landmarks"] == DLIB5 else 112  # the chips openlfr's aligners make
    if size != chip:
        raise ModelError(f"model {name!r}: {spec['landmarks']} chips are {chip}x{chip}, not {size}x{size}")
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as err:  # noqa: BLE001 - any parse failure means "not ONNX"
        raise ModelError(f"model {name!r}: {path} is not an ONNX model ({type(err).__name__})") from None
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if len(inputs) != 1:
        raise ModelError(f"model {name!r}: expected one graph input, found {len(inputs)}")
    dims = [d.dim_value or d.dim_param for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1:] != [3, size, size]:
        raise ModelError(f"model {name!r}: input shape {dims}, expected [N, 3, {size}, {size}]")
    out = [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] if graph.output else []
    if out and out[-1] and out[-1] != dim:
        raise ModelError(f"model {name!r}: output has {out[-1]} values, registered dim is {dim}")
    return spec | {"path": path, "input_size": size, "dim": dim, "sha256": digest}


def _check_detector(spec: dict[str, Any], base: Path) -> dict[str, Any]:
    """A YuNet-format detector spec, loaded once to check it (digest, ONNX, input shape)."""
    name = str(spec.get("name", "?"))
    missing = [k for k in ("name", "path", "sha256") if k not in spec]
    if missing:
        raise ModelError(f"detector {name!r}: missing {', '.join(missing)}")
    if spec.get("format", "yunet") != "yunet":
        raise ModelError(f"detector {name!r}: format must be 'yunet' (OpenCV FaceDetectorYN's)")
    path = Path(spec["path"]).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise ModelError(f"detector {name!r}: file {path} not found")
    from openlfr.face.yunet import YuNetDetector

    YuNetDetector(model_path=path, sha256=str(spec["sha256"]).lower())  # raises ModelError on any bad file
    return spec | {"path": path, "sha256": str(spec["sha256"]).lower(), "min_face": int(spec.get("min_face", 32))}


def _read(path: str | Path) -> tuple[Path, dict[str, Any]]:
    file = Path(path).expanduser()
    try:
        doc = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise ModelError(f"{MODELS_ENV}: cannot read {file}: {err}") from None
    if not isinstance(doc, dict):
        raise ModelError(f"{MODELS_ENV}: {file} is not a JSON object with 'embedders' and 'detectors'")
    return file, doc


def declared_names(path: str | Path) -> tuple[list[str], list[str]]:
    """The names of the embedders and detectors the models file declares, unchecked (the
    settings accept them by name; :func:`load_user_models` checks each file)."""
    _, doc = _read(path)
    return ([str(s.get("name")) for s in doc.get("embedders", []) if isinstance(s, dict)],
            [str(s.get("name")) for s in doc.get("detectors", []) if isinstance(s, dict)])


def load_user_models(reg: Registry, path: str | Path | None = None) -> list[str]:
    """Add the embedders and detectors of the settings' models file (``OPENLFR_MODELS_FILE``)
    or ``path`` to ``reg``: all or none."""
    from openlfr.config import get_settings
    from openlfr.face.registry import DLIB5, EmbedderEntry, _arcface_chip, _dlib_chip

    path = path or get_settings().models.models_file
    if not path:
        return []
    file, doc = _read(path)
    specs = [_check(s, file.parent) for s in doc.get("embedders", [])]
    detectors = [_check_detector(s, file.parent) for s in doc.get("detectors", [])]
    names = []
    for s in specs:
        if s["name"] in reg.embedders:
            raise ModelError(f"model {s['name']!r}: the name is already registered")
    for d in detectors:
        if d["name"] in reg.detectors:
            raise ModelError(f"detector {d['name']!r}: the name is already registered")
    from openlfr.face.registry import ARCFACE5, DetectorEntry

    for d in detectors:
        def make(backend: str, d: dict[str, Any] = d) -> Any:
            from openlfr.face.yunet import YuNetDetector

            return YuNetDetector(model_path=d["path"], sha256=d["sha256"], backend=backend)

        reg.detectors[d["name"]] = DetectorEntry(d["name"], make, ARCFACE5, d["min_face"])
        names.append(d["name"])

    for s in specs:
        def factory(backend: str, s: dict[str, Any] = s) -> UserOnnxEmbedder:
            return UserOnnxEmbedder(s["path"], s["input_size"], s["dim"], float(s.get("mean", 0.0)),
                                    float(s.get("std", 1.0)), backend=backend)

        reg.embedders[s["name"]] = EmbedderEntry(
            name=s["name"], dim=s["dim"], chip_size=s["input_size"], landmarks=s["landmarks"],
            default_threshold=float(s["threshold"]), weights=functools.partial(Path, s["path"]), factory=factory,
            align=_dlib_chip if s["landmarks"] == DLIB5 else _arcface_chip,
            licence=str(s.get("licence", "")), source=str(s.get("source", str(s["path"]))))
        names.append(s["name"])
    return names
