"""dlib's face-recognition ResNet as an ONNX graph and as a PyTorch module.

Both are built by walking the layer list that :mod:`openlfr.face.dlib_dnn` parses from
``dlib_face_recognition_resnet_model_v1.dat``; nothing about the architecture is hard-coded
here, so any network made of the supported layers (input_rgb_image_sized, con, affine, relu,
sig, htan, multiply, max/avg pooling, fc, tag/skip/add_prev) converts the same way.

The walk first *lowers* the network to a short list of :class:`Step` s: tags and skips become
aliases, each ``affine`` that directly follows a convolution is folded into its weights and
bias (``W*g``, ``b*g + beta``: the same function, computed in one pass), and an ``add_prev`` of
tensors of different sizes zero-fills the smaller one at the end of each dimension, as dlib's
``tt::add`` does (the ResNet's last two down-sampling blocks need it: 4x4 + 3x3, 2x2 + 1x1).

Both models take ``(N, H, W, 3)`` uint8 RGB chips and return the last layer below the loss
(``(N, 128)`` float32 for the ResNet): the input layer's ``(pixel - mean) / 256`` is inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from openlfr.errors import ModelError
from openlfr.face.dlib_dnn import DnnNet, infer_shapes, read_dnn

ONNX_NAME = "dlib_face_recognition_resnet_model_v1"
BUILDER_VERSION = 1  # bump whenever the graph built here changes
OPSET = 17
INPUT_NAME = "chips"
OUTPUT_NAME = "embeddings"


@dataclass
class Step:
    """One operation of the lowered network.

    ``op`` is ``conv``, ``affine``, ``relu``, ``sig``, ``htan``, ``multiply``, ``max_pool``,
    ``avg_pool``, ``global_avg_pool``, ``global_max_pool``, ``add``, ``mul`` or ``fc``;
    ``src`` are the indices of the steps it reads (``-1``: the normalised input); ``shape`` its
    output ``(C, H, W)``.
    """

    op: str
    src: list[int]
    shape: tuple[int, int, int]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Lowered:
    """A network ready to be emitted: normalisation, steps, and sizes."""

    mean: tuple[float, float, float]
    input_size: tuple[int, int]
    steps: list[Step]
    output: int  # index of the step whose value is the network's output


@lru_cache(maxsize=4)
def load_resnet(path: str | None = None) -> DnnNet:
    """Parse the ResNet ``.dat`` file (the bundled copy by default)."""
    from openlfr.face.model_files import RESNET, model_path

    return read_dnn(Path(path) if path else model_path(RESNET))


def lower(net: DnnNet, input_size: tuple[int, int] | None = None) -> Lowered:
    """Turn the parsed layers into :class:`Step` s (see the module docstring)."""
    inp = net.input
    if inp.kind not in ("input_rgb_image_sized", "input_rgb_image"):
        raise ModelError(f"cannot convert a network whose input layer is {inp.kind}")
    size = input_size or inp.params.get("size")
    if size is None:
        raise ModelError("this network takes images of any size: give input_size")
    rows, cols = int(size[0]), int(size[1])
    shapes = infer_shapes(net, rows, cols)
    layers = net.layers[:-1] if net.loss.kind.startswith("loss_") else net.layers

    consumers = [0] * len(net.layers)
    for layer in net.layers:
        for i in layer.inputs:
            consumers[i] += 1

    steps: list[Step] = []
    value: dict[int, int] = {0: -1}  # layer index -> step index holding its output

    def emit(step: Step, layer_index: int) -> None:
        steps.append(step)
        value[layer_index] = len(steps) - 1

    for layer in layers[1:]:
        p, i = layer.params, layer.index
        src = [value[j] for j in layer.inputs]
        shape = shapes[i]
        kind = layer.kind
        if kind in ("tag", "skip"):
            value[i] = src[0]
        elif kind == "con":
            emit(Step("conv", src, shape, {
                "weight": p["weights"].astype(np.float32),
                "bias": (p["bias"] if p["bias"] is not None else np.zeros(p["num_filters"])).astype(np.float32),
                "stride": p["stride"], "padding": p["padding"],
            }), i)
            if p.get("fused_relu"):
                emit(Step("relu", [len(steps) - 1], shape), i)
        elif kind == "affine":
            if p.get("disabled"):
                value[i] = src[0]
                continue
            prev = layer.inputs[0]
            prev_step = steps[src[0]] if src[0] >= 0 else None
            g, b = p["gamma"].astype(np.float32), p["beta"].astype(np.float32)
            foldable = (
                p["mode"] == "conv" and prev_step is not None and prev_step.op == "conv"
                and consumers[prev] == 1 and not net.layers[prev].params.get("fused_relu")
            )
            if foldable and prev_step is not None:  # (foldable says it; again for the type checker)
                prev_step.params["weight"] = prev_step.params["weight"] * g[:, None, None, None]
                prev_step.params["bias"] = prev_step.params["bias"] * g + b
                value[i] = src[0]
            else:
                emit(Step("affine", src, shape, {"gamma": g, "beta": b, "mode": p["mode"]}), i)
        elif kind in ("relu", "sig", "htan"):
            emit(Step(kind, src, shape), i)
        elif kind == "multiply":
            emit(Step("multiply", src, shape, {"value": float(p["value"])}), i)
        elif kind in ("max_pool", "avg_pool"):
            in_shape = shapes[layer.inputs[0]]
            window = p["window"]
            if window == (0, 0) or tuple(window) == in_shape[1:] and p["padding"] == (0, 0):
                emit(Step(f"global_{kind}", src, shape), i)
            else:
                emit(Step(kind, src, shape, {"window": window, "stride": p["stride"],
                                             "padding": p["padding"]}), i)
        elif kind in ("add_prev", "mult_prev"):
            if kind == "mult_prev" and shapes[layer.inputs[0]] != shapes[layer.inputs[1]]:
                raise ModelError("mult_prev of tensors of different sizes is not supported")
            emit(Step("add" if kind == "add_prev" else "mul", src, shape), i)
        elif kind == "fc":
            bias = p["bias"] if p["bias"] is not None else np.zeros(p["num_outputs"])
            emit(Step("fc", src, shape, {"weight": p["weights"].astype(np.float32),
                                         "bias": bias.astype(np.float32),
                                         "has_bias": p["bias"] is not None}), i)
        else:
            raise ModelError(f"cannot convert layer kind {kind!r}")
    return Lowered(tuple(inp.params["mean"]), (rows, cols), steps, value[layers[-1].index])


# ----------------------------------------------------------------------------- ONNX


def build_onnx(net: DnnNet, input_size: tuple[int, int] | None = None) -> bytes:
    """The network as a serialised ONNX model (opset 17, float32, dynamic batch).

    Input ``chips``: ``(N, H, W, 3)`` uint8 RGB; output ``embeddings``: ``(N, C)`` for a network
    ending in ``fc`` (else ``(N, C, h, w)``).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    low = lower(net, input_size)
    rows, cols = low.input_size
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    # Input layer: (pixel - mean) / 256 in float32, exactly as dlib computes it.
    mean = const("mean", np.asarray(low.mean, np.float32).reshape(1, 3, 1, 1))
    scale = const("scale", np.asarray([1.0 / 256.0], np.float32))
    nodes += [
        helper.make_node("Transpose", [INPUT_NAME], ["nchw_u8"], perm=[0, 3, 1, 2]),
        helper.make_node("Cast", ["nchw_u8"], ["nchw"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["nchw", mean], ["centred"]),
        helper.make_node("Mul", ["centred", scale], ["x"]),
    ]

    def name_of(j: int) -> str:
        return "x" if j < 0 else f"s{j}"

    def padded(j: int, shape: tuple[int, int, int], target: tuple[int, int, int], tag: str) -> str:
        if shape == target:
            return name_of(j)
        pads = [0, 0, 0, 0, 0] + [t - s for s, t in zip(shape, target)]
        p = const(f"pads_{tag}", np.asarray(pads, np.int64))
        nodes.append(helper.make_node("Pad", [name_of(j), p], [f"{name_of(j)}_pad_{tag}"], mode="constant"))
        return f"{name_of(j)}_pad_{tag}"

    def in_shape(j: int) -> tuple[int, int, int]:
        return (3, rows, cols) if j < 0 else low.steps[j].shape

    for k, step in enumerate(low.steps):
        out = name_of(k)
        x = [name_of(j) for j in step.src]
        p = step.params
        if step.op == "conv":
            w = const(f"w{k}", p["weight"])
            b = const(f"b{k}", p["bias"])
            (py, px), (kh, kw) = p["padding"], p["weight"].shape[2:]
            nodes.append(helper.make_node("Conv", [x[0], w, b], [out], kernel_shape=[kh, kw],
                                          strides=list(p["stride"]), pads=[py, px, py, px]))
        elif step.op == "affine":
            c, h, wd = step.shape
            shape = (1, c, 1, 1) if p["mode"] == "conv" else (1, c, h, wd)
            g = const(f"g{k}", p["gamma"].reshape(shape))
            b = const(f"beta{k}", p["beta"].reshape(shape))
            nodes += [helper.make_node("Mul", [x[0], g], [f"{out}_g"]),
                      helper.make_node("Add", [f"{out}_g", b], [out])]
        elif step.op in ("relu", "sig", "htan"):
            onnx_op = {"relu": "Relu", "sig": "Sigmoid", "htan": "Tanh"}[step.op]
            nodes.append(helper.make_node(onnx_op, x, [out]))
        elif step.op == "multiply":
            v = const(f"v{k}", np.asarray([p["value"]], np.float32))
            nodes.append(helper.make_node("Mul", [x[0], v], [out]))
        elif step.op in ("max_pool", "avg_pool"):
            (py, px) = p["padding"]
            attrs: dict[str, Any] = dict(kernel_shape=list(p["window"]), strides=list(p["stride"]),
                                         pads=[py, px, py, px])
            # dlib averages over the in-image part of a window (padding not counted).
            onnx_op = "MaxPool" if step.op == "max_pool" else "AveragePool"
            nodes.append(helper.make_node(onnx_op, x, [out], **attrs))
        elif step.op in ("global_max_pool", "global_avg_pool"):
            onnx_op = "GlobalMaxPool" if step.op == "global_max_pool" else "GlobalAveragePool"
            nodes.append(helper.make_node(onnx_op, x, [out]))
        elif step.op in ("add", "mul"):
            a = padded(step.src[0], in_shape(step.src[0]), step.shape, f"{k}a")
            b = padded(step.src[1], in_shape(step.src[1]), step.shape, f"{k}b")
            nodes.append(helper.make_node("Add" if step.op == "add" else "Mul", [a, b], [out]))
        elif step.op == "fc":
            w = const(f"w{k}", p["weight"])
            nodes.append(helper.make_node("Flatten", x, [f"{out}_flat"], axis=1))
            if p["has_bias"]:
                b = const(f"b{k}", p["bias"])
                nodes.append(helper.make_node("Gemm", [f"{out}_flat", w, b], [out]))
            else:
                nodes.append(helper.make_node("MatMul", [f"{out}_flat", w], [out]))
        else:  # pragma: no cover - lower() only emits the ops above
            raise ModelError(f"no ONNX conversion for {step.op}")

    final = low.steps[low.output]
    nodes.append(helper.make_node("Identity", [name_of(low.output)], [OUTPUT_NAME]))
    out_dims: list[Any] = ["N", final.shape[0]] if final.op == "fc" else ["N", *final.shape]
    graph = helper.make_graph(
        nodes,
        "dlib_dnn",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", rows, cols, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, out_dims)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="openlfr")
    model.ir_version = 8  # readable by every onnxruntime that supports opset 17
    onnx.checker.check_model(model)
    return model.SerializeToString()


def cached_resnet_onnx(path: str | None = None) -> Path:
    """The ResNet's ONNX graph in the model cache (built on first use)."""
    from openlfr.face import onnx_runtime
    from openlfr.face.model_files import RESNET, model_path

    source = Path(path) if path else model_path(RESNET)
    return onnx_runtime.cached_model(
        ONNX_NAME,
        lambda: build_onnx(load_resnet(str(source))),
        source=source,
        version=BUILDER_VERSION,
    )


# ----------------------------------------------------------------------------- PyTorch


def build_torch(net: DnnNet, input_size: tuple[int, int] | None = None) -> Any:
    """The network as a ``torch.nn.Module`` (CPU, float32; ``.to(device)`` it).

    Its ``forward`` takes a ``(N, H, W, 3)`` uint8 tensor and returns what the ONNX graph does.
    torch is imported here, so the rest of openlfr works without it.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    low = lower(net, input_size)

    class DlibNet(nn.Module):
        """A dlib network rebuilt from its lowered steps."""

        def __init__(self) -> None:
            super().__init__()
            self.steps = low.steps
            self.output = low.output
            self.register_buffer("mean", torch.tensor(low.mean, dtype=torch.float32).view(1, 3, 1, 1))
            for k, step in enumerate(low.steps):
                for key in ("weight", "bias", "gamma", "beta"):
                    if key in step.params:
                        t = torch.from_numpy(np.ascontiguousarray(step.params[key]))
                        if step.op == "affine":
                            c, h, w = step.shape
                            t = t.view(1, c, 1, 1) if step.params["mode"] == "conv" else t.view(1, c, h, w)
                        if step.op == "fc" and key == "weight":
                            t = t.t().contiguous()  # F.linear wants (out, in)
                        self.register_buffer(f"{key}{k}", t)

        def forward(self, chips: torch.Tensor) -> torch.Tensor:
            x = chips.permute(0, 3, 1, 2).float()
            x = (x - self.mean) * (1.0 / 256.0)
            vals: list[torch.Tensor] = []

            def get(j: int) -> torch.Tensor:
                return x if j < 0 else vals[j]

            for k, step in enumerate(self.steps):
                p = step.params
                a = get(step.src[0])
                if step.op == "conv":
                    py, px = p["padding"]
                    y = F.conv2d(a, getattr(self, f"weight{k}"), getattr(self, f"bias{k}"),
                                 stride=tuple(p["stride"]), padding=(py, px))
                elif step.op == "affine":
                    y = a * getattr(self, f"gamma{k}") + getattr(self, f"beta{k}")
                elif step.op == "relu":
                    y = F.relu(a)
                elif step.op == "sig":
                    y = torch.sigmoid(a)
                elif step.op == "htan":
                    y = torch.tanh(a)
                elif step.op == "multiply":
                    y = a * p["value"]
                elif step.op == "max_pool":
                    y = F.max_pool2d(a, tuple(p["window"]), tuple(p["stride"]), tuple(p["padding"]))
                elif step.op == "avg_pool":
                    y = F.avg_pool2d(a, tuple(p["window"]), tuple(p["stride"]), tuple(p["padding"]),
                                     count_include_pad=False)
                elif step.op == "global_avg_pool":
                    y = a.mean(dim=(2, 3), keepdim=True)
                elif step.op == "global_max_pool":
                    y = a.amax(dim=(2, 3), keepdim=True)
                elif step.op in ("add", "mul"):
                    b = get(step.src[1])
                    c, h, w = step.shape
                    a = _pad_to(a, c, h, w)
                    b = _pad_to(b, c, h, w)
                    y = a + b if step.op == "add" else a * b
                elif step.op == "fc":
                    bias = getattr(self, f"bias{k}") if p["has_bias"] else None
                    y = F.linear(a.flatten(1), getattr(self, f"weight{k}"), bias)
                else:  # pragma: no cover
                    raise ModelError(f"no torch conversion for {step.op}")
                vals.append(y)
            return vals[self.output]

    def _pad_to(t: torch.Tensor, c: int, h: int, w: int) -> torch.Tensor:
        dc, dh, dw = c - t.shape[1], h - t.shape[2], w - t.shape[3]
        if dc or dh or dw:
            t = F.pad(t, (0, dw, 0, dh, 0, dc))  # zero-fill at the end, like dlib's tt::add
        return t

    return DlibNet().eval()
