"""OpenCV Zoo's SFace face recogniser on ONNX Runtime: 112x112 ArcFace chips in, 128-D out.

The shipped file (``face_recognition_sface_2021dec_int8bq.onnx``, Apache-2.0) is a
MobileFaceNet-style network: 27 convolutions, each followed by batch normalisation and a
per-channel PReLU, then batch norm, a 50176x128 fully connected layer and batch norm. Its
weights are int8, block-quantised (``DequantizeLinear`` on initialisers), and its graph declares
174 stray inputs left over from quantisation, so ONNX Runtime will not run it as shipped.

Two graphs are built from the checked file, in memory:

* :func:`strip_stray_inputs` — the original graph with only ``data`` as input: the reference,
  exactly the shipped computation;
* :func:`optimised_graph` — the same function, faster, with a symbolic batch dimension:

  - the block-quantised weights dequantised into float32 initialisers;
  - every batch normalisation folded into the convolution before it, and the last two (around
    the fully connected layer) into that layer;
  - each PReLU ``p(y) = s*y + t*relu(y)`` (``t = 1 - s``, per channel) written as
    ``t * (relu(y) + (s/t)*y)``, the factor ``t`` moved into the next layer's weights for that
    input channel (exact for a zero-padded convolution). ONNX Runtime's blocked (NCHWc) CPU
    kernels then run each activation as one ReLU and one per-channel scale fused with the
    addition, instead of a PReLU that forces layout reorders around every convolution.

  Outputs agree with the reference to about 2e-6 (checked by ``tests/face/test_sface.py`` and
  ``tests/face/test_yunet.py``); the builder's version is part of the cache name.

The input is a ``(N, 112, 112, 3)`` uint8 RGB chip aligned by
:func:`openlfr.face.arcface_align.arcface_chip`; the graph subtracts 127.5 and scales by 1/128
itself. The output is the raw 128-D embedding; compare by cosine after L2 normalisation (same
person about 0.7-0.85, different people about 0-0.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from openlfr.errors import InputError, ModelError
from openlfr.face import zoo_files
from openlfr.face.onnx_fold import constant_value
from openlfr.face.zoo_files import SFACE

SFACE_SIZE = 112
SFACE_DIM = 128
INPUT_NAME = "data"
OUTPUT_NAME = "fc1"
BUILDER_VERSION = 1  # bump whenever optimised_graph changes what it builds
_EXPECTED_CONVS = 27


# ----------------------------------------------------------------------------- graphs


def strip_stray_inputs(model: Any) -> Any:
    """A copy of ``model`` whose only graph input is ``data`` (the reference graph)."""
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    keep = [i for i in out.graph.input if i.name == INPUT_NAME]
    if len(keep) != 1:
        raise ModelError(f"the SFace graph has no input named {INPUT_NAME!r}")
    del out.graph.input[:]
    out.graph.input.extend(keep)
    return out


def _bn_affine(consts: dict[str, np.ndarray], node: Any, attrs: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta, mean, var = (consts[x].astype(np.float64) for x in node.input[1:5])
    k = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
    return k, beta - mean * k


def _parse(model: Any) -> dict[str, Any]:
    """The shipped SFace graph as plain arrays (float64 while folding); refuses other shapes."""
    from onnx import helper, numpy_helper

    g = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes: list[tuple[Any, dict[str, Any]]] = []
    for n in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        value = constant_value(consts, n, attrs)
        if value is not None:
            consts[n.output[0]] = value
        elif n.op_type in ("Dropout", "Flatten"):  # identity at inference / implied by the layout
            continue
        else:
            nodes.append((n, attrs))

    ops = [n.op_type for n, _ in nodes]
    expected = ["Sub", "Mul"] + ["Conv", "BatchNormalization", "PRelu"] * _EXPECTED_CONVS
    expected += ["BatchNormalization", "Gemm", "BatchNormalization"]
    if ops != expected:
        raise ModelError("the SFace file does not have the expected graph structure; cannot optimise it")
    try:
        sub = float(np.ravel(consts[nodes[0][0].input[1]])[0])
        mul = float(np.ravel(consts[nodes[1][0].input[1]])[0])
        layers = []
        for j in range(_EXPECTED_CONVS):
            (conv, cattrs), (bn, battrs), (prelu, _) = nodes[2 + 3 * j : 5 + 3 * j]
            k, b = _bn_affine(consts, bn, battrs)
            w = consts[conv.input[1]].astype(np.float64) * k[:, None, None, None]
            if len(conv.input) > 2:
                b = b + consts[conv.input[2]].astype(np.float64) * k
            layers.append({"w": w, "b": b, "attrs": cattrs, "slope": consts[prelu.input[1]].astype(np.float64).ravel()})
        k1, b1 = _bn_affine(consts, *nodes[-3])
        gemm, gattrs = nodes[-2]
        k2, b2 = _bn_affine(consts, *nodes[-1])
        weight = consts[gemm.input[1]].astype(np.float64)
        bias = consts[gemm.input[2]].astype(np.float64)
    except KeyError as exc:
        raise ModelError(f"the SFace file lacks the constant {exc.args[0]!r}; cannot optimise it") from None
    if gattrs.get("transB", 0) != 1 or weight.shape[0] != SFACE_DIM:
        raise ModelError("the SFace file's final layer is not the expected 128-D projection")
    channels = layers[-1]["w"].shape[0]
    spatial, rem = divmod(weight.shape[1], channels)
    if rem:
        raise ModelError("the SFace file's final layer does not match its last convolution")
    # fc1 = k2 * (W @ (k1 * f + b1) + B) + b2, with f the flattened (C, H, W) features
    k1f, b1f = np.repeat(k1, spatial), np.repeat(b1, spatial)
    fc_w = weight * k1f[None, :] * k2[:, None]
    fc_b = (bias + weight @ b1f) * k2 + b2
    return {"sub": sub, "mul": mul, "layers": layers, "fc_w": fc_w, "fc_b": fc_b, "spatial": spatial}


def optimised_graph(model: Any) -> Any:
    """The folded, PReLU-rewritten SFace graph with a symbolic batch size (see the module doc)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    p = _parse(model)
    layers = p["layers"]
    fc_w = p["fc_w"]
    # PReLU(y) = t * (relu(y) + c*y), c = s/t; t goes into the next layer's input channels
    for j, layer in enumerate(layers):
        t = 1.0 - layer["slope"]
        if np.any(np.abs(t) < 1e-4):
            raise ModelError("the SFace file has a PReLU slope of 1; cannot optimise it")
        layer["c"] = layer["slope"] / t
        if j + 1 < len(layers):
            nxt = layers[j + 1]
            if int(nxt["attrs"].get("group", 1)) > 1:  # depthwise: input channel = output channel
                nxt["w"] = nxt["w"] * t[:, None, None, None]
            else:
                nxt["w"] = nxt["w"] * t[None, :, None, None]
        else:
            fc_w = fc_w * np.repeat(t, p["spatial"])[None, :]

    inits: list[Any] = []
    nodes: list[Any] = []
    count = [0]

    def name(prefix: str) -> str:
        count[0] += 1
        return f"{prefix}_{count[0]}"

    def const(value: np.ndarray | list[float]) -> str:
        n = name("w")
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), n))
        return n

    def op(kind: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        out = out or name(kind.lower())
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    x = op("Sub", [INPUT_NAME, const([p["sub"]])])
    x = op("Mul", [x, const([p["mul"]])])
    for layer in layers:
        y = op("Conv", [x, const(layer["w"]), const(layer["b"])], **layer["attrs"])
        r = op("Relu", [y])
        x = op("Add", [r, op("Mul", [y, const(layer["c"].reshape(-1, 1, 1))])])
    f = op("Flatten", [x], axis=1)
    op("Gemm", [f, const(fc_w), const(p["fc_b"])], OUTPUT_NAME, transB=1)

    graph = helper.make_graph(
        nodes,
        "sface_optimised",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, SFACE_SIZE, SFACE_SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", SFACE_DIM])],
        inits,
    )
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="openlfr")
    out.ir_version = 8
    onnx.checker.check_model(out)
    return out


# ----------------------------------------------------------------------------- embedder


def check_sface_chips(chips: np.ndarray) -> np.ndarray:
    """Validate a ``(N, 112, 112, 3)`` uint8 batch of chips; returns it C-contiguous."""
    if not isinstance(chips, np.ndarray):
        raise InputError("face chips must be a numpy array")
    if chips.ndim != 4 or chips.shape[1:] != (SFACE_SIZE, SFACE_SIZE, 3):
        raise InputError(f"SFace chips must have shape (N, {SFACE_SIZE}, {SFACE_SIZE}, 3), got {tuple(chips.shape)}")
    if chips.dtype != np.uint8:
        raise InputError(f"face chips must be uint8 RGB, got {chips.dtype}")
    return np.ascontiguousarray(chips)


class SFaceEmbedder:
    """SFace on ONNX Runtime: ``(N, 112, 112, 3)`` uint8 RGB ArcFace chips -> ``(N, 128)`` float32.

    ``threads``: intra-op threads (default: ``OMP_NUM_THREADS`` or the number of cores);
    ``batch``: chips per network run; ``backend``: ``cpu``, ``cuda`` or ``auto`` (see
    :func:`openlfr.face.onnx_runtime.make_runner`); ``model_path``/``sha256``: another copy of
    the file (the digest defaults to the pinned one; a different digest is for an operator's own
    file); ``optimise=False`` runs the reference graph (stray inputs dropped, nothing else).
    The file is refused with a :class:`ModelError` before anything loads if it is missing, has
    another digest, is not ONNX or has another input shape.
    """

    dim = SFACE_DIM
    input_size = SFACE_SIZE
    name = "sface"

    def __init__(
        self,
        threads: int | None = None,
        batch: int = 32,
        *,
        backend: str = "cpu",
        model_path: str | Path | None = None,
        sha256: str | None = None,
        optimise: bool = True,
    ) -> None:
        from openlfr.face import onnx_runtime

        if batch < 1:
            raise InputError("batch must be at least 1")
        checked = zoo_files.load_zoo(SFACE, model_path, sha256)
        self.batch = int(batch)
        self.backend = backend
        self.optimised = bool(optimise)
        self.sha256 = checked.sha256
        self._model_id = checked.model_id
        if optimise:
            graph: Path | bytes = zoo_files.cached_graph(
                "sface-opt", checked.sha256, BUILDER_VERSION, lambda: optimised_graph(checked.model).SerializeToString()
            )
        else:
            graph = strip_stray_inputs(checked.model).SerializeToString()
        try:
            self.session = onnx_runtime.make_runner(graph, backend=backend, threads=threads)
        except ModelError:
            if not isinstance(graph, Path):
                raise
            # an unreadable cache entry: build again in memory (the cache is only a speed-up)
            self.session = onnx_runtime.make_runner(
                optimised_graph(checked.model).SerializeToString(), backend=backend, threads=threads
            )

    @property
    def model_id(self) -> str:
        """``sface-2021dec-int8bq:<first 8 hex digits of the file's SHA-256>``."""
        return self._model_id

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """``(N, 112, 112, 3)`` uint8 RGB chips -> ``(N, 128)`` float32 raw embeddings."""
        chips = check_sface_chips(chips)
        out = np.empty((len(chips), self.dim), np.float32)
        step = self.batch if self.optimised else 1  # the reference graph has a fixed batch of 1
        for start in range(0, len(chips), step):
            part = chips[start : start + step]
            blob = np.ascontiguousarray(part.transpose(0, 3, 1, 2), dtype=np.float32)
            out[start : start + len(part)] = self.session.run([OUTPUT_NAME], {INPUT_NAME: blob})[0]
        return out


def l2_normalise(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine similarity is then a dot product)."""
    emb = np.asarray(embeddings, np.float32)
    norms = np.linalg.norm(emb, axis=-1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)


__all__ = [
    "BUILDER_VERSION",
    "SFACE_DIM",
    "SFACE_SIZE",
    "SFaceEmbedder",
    "check_sface_chips",
    "l2_normalise",
    "optimised_graph",
    "strip_stray_inputs",
]
