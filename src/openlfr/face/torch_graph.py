"""Run a small float ONNX graph with PyTorch: the GPU path where onnxruntime-gpu is absent.

openlfr's zoo networks (SFace after :func:`openlfr.face.sface.optimised_graph`, YuNet after
:func:`openlfr.face.yunet_net.yunet_graph`) use a handful of plain operators. This executor
maps each, and the usual operators of other face networks (batch norm, PReLU, MatMul, global
average pooling, Concat), to its ``torch.nn.functional`` equivalent and evaluates the nodes in order, on any
device PyTorch sees. It offers ``run(output_names, feeds)`` like an ONNX Runtime session, so
the callers do not care which engine they hold. An operator or attribute outside the list is
refused at load with a :class:`~openlfr.errors.ModelError`, never approximated.

PyTorch is imported only here, and only when this path is chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from openlfr.errors import ModelError


def _pairs(pads: Sequence[int]) -> tuple[int, int]:
    """ONNX ``[top, left, bottom, right]`` pads as PyTorch's symmetric ``(h, w)`` padding."""
    if not pads:
        return 0, 0
    top, left, bottom, right = (int(p) for p in pads)
    if top != bottom or left != right:
        raise ModelError("asymmetric padding is not supported by the PyTorch path")
    return top, left


def _ops(torch: Any) -> dict[str, Callable[..., Any]]:
    F = torch.nn.functional

    def conv(attrs: dict[str, Any], x: Any, w: Any, b: Any = None) -> Any:
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ModelError("Conv auto_pad is not supported by the PyTorch path")
        return F.conv2d(x, w, b, stride=tuple(attrs.get("strides", (1, 1))), padding=_pairs(attrs.get("pads", ())),
                        dilation=tuple(attrs.get("dilations", (1, 1))), groups=int(attrs.get("group", 1)))

    def maxpool(attrs: dict[str, Any], x: Any) -> Any:
        kernel = tuple(attrs["kernel_shape"])
        return F.max_pool2d(x, kernel, stride=tuple(attrs.get("strides", kernel)),
                            padding=_pairs(attrs.get("pads", ())), ceil_mode=bool(attrs.get("ceil_mode", 0)))

    def resize(attrs: dict[str, Any], x: Any, roi: Any = None, scales: Any = None, sizes: Any = None) -> Any:
        mode = attrs.get("mode", b"nearest")
        transform = attrs.get("coordinate_transformation_mode", b"half_pixel")
        rounding = attrs.get("nearest_mode", b"round_prefer_floor")
        if (mode, transform, rounding) != (b"nearest", b"asymmetric", b"floor"):
            raise ModelError("Resize is supported only as nearest/asymmetric/floor by the PyTorch path")
        if sizes is not None and sizes.numel():
            return F.interpolate(x, size=tuple(int(v) for v in sizes.tolist()[2:]), mode="nearest")
        factors = [float(v) for v in scales.tolist()]
        if factors[:2] != [1.0, 1.0]:
            raise ModelError("Resize over batch or channels is not supported by the PyTorch path")
        return F.interpolate(x, scale_factor=tuple(factors[2:]), mode="nearest")

    def reshape(attrs: dict[str, Any], x: Any, shape: Any) -> Any:
        dims = [int(v) for v in shape.tolist()]
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]  # ONNX: 0 copies the dim
        return x.reshape(dims)

    def flatten(attrs: dict[str, Any], x: Any) -> Any:
        axis = int(attrs.get("axis", 1))
        return x.reshape(int(np.prod(x.shape[:axis])), -1)

    def gemm(attrs: dict[str, Any], a: Any, b: Any, c: Any = None) -> Any:
        a = a.t() if attrs.get("transA", 0) else a
        b = b.t() if attrs.get("transB", 0) else b
        out = float(attrs.get("alpha", 1.0)) * (a @ b)
        return out if c is None else out + float(attrs.get("beta", 1.0)) * c

    def batchnorm(attrs: dict[str, Any], x: Any, scale: Any, bias: Any, mean: Any, var: Any) -> Any:
        return F.batch_norm(x, mean, var, scale, bias, training=False, eps=float(attrs.get("epsilon", 1e-5)))

    def prelu(attrs: dict[str, Any], x: Any, slope: Any) -> Any:
        return torch.where(x >= 0, x, x * slope)  # ONNX broadcasting, whatever the slope's shape

    return {
        "Conv": conv,
        "BatchNormalization": batchnorm,
        "PRelu": prelu,
        "MatMul": lambda attrs, a, b: a @ b,
        "GlobalAveragePool": lambda attrs, x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
        "Concat": lambda attrs, *xs: torch.cat(xs, dim=int(attrs["axis"])),
        "Identity": lambda attrs, x: x,
        "MaxPool": maxpool,
        "Resize": resize,
        "Reshape": reshape,
        "Flatten": flatten,
        "Gemm": gemm,
        "Relu": lambda attrs, x: torch.relu(x),
        "Sigmoid": lambda attrs, x: torch.sigmoid(x),
        "Add": lambda attrs, a, b: a + b,
        "Sub": lambda attrs, a, b: a - b,
        "Mul": lambda attrs, a, b: a * b,
        "Transpose": lambda attrs, x: x.permute(*attrs["perm"]),
    }


def torch_cuda_available() -> bool:
    """Whether PyTorch is installed and sees a CUDA GPU."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


class TorchGraph:
    """A float ONNX graph on a PyTorch device, run like an ONNX Runtime session.

    ``model``: an ``onnx.ModelProto``, serialised bytes or a file path; ``device``: a PyTorch
    device (``"cuda"``, ``"cuda:1"``, ``"cpu"`` for checks without a GPU).
    """

    def __init__(self, model: Any, device: str = "cuda") -> None:
        try:
            import torch
        except ImportError as exc:
            raise ModelError("the PyTorch path needs PyTorch, which is not installed") from exc
        import onnx
        from onnx import helper, numpy_helper

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError("PyTorch cannot see a CUDA GPU")
        if isinstance(model, (str, Path)):
            model = onnx.load(str(model))
        elif isinstance(model, (bytes, bytearray)):
            model = onnx.load_from_string(bytes(model))
        self._torch = torch
        self.device = torch.device(device)
        ops = _ops(torch)
        graph = model.graph
        self._consts: dict[str, Any] = {}
        for init in graph.initializer:
            arr = numpy_helper.to_array(init)
            self._consts[init.name] = torch.from_numpy(np.array(arr)).to(self.device)
        self._nodes: list[tuple[Callable[..., Any], dict[str, Any], list[str], list[str]]] = []
        unknown = sorted({n.op_type for n in graph.node if n.op_type not in ops})
        if unknown:
            raise ModelError(f"the PyTorch path does not implement {', '.join(unknown)}")
        for n in graph.node:
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            self._nodes.append((ops[n.op_type], attrs, list(n.input), list(n.output)))
        self.input_names = [i.name for i in graph.input if i.name not in self._consts]
        self.output_names = [o.name for o in graph.output]

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The named outputs for ``feeds`` (input name -> float32 array), as numpy arrays."""
        torch = self._torch
        with torch.inference_mode():
            env = dict(self._consts)
            for name, value in feeds.items():
                env[name] = torch.from_numpy(np.ascontiguousarray(value, np.float32)).to(self.device, non_blocking=True)
            for fn, attrs, inputs, outputs in self._nodes:
                args = [env[x] if x else None for x in inputs]
                env[outputs[0]] = fn(attrs, *args)
            return [env[name].float().cpu().numpy() for name in (output_names or self.output_names)]


__all__ = ["TorchGraph", "torch_cuda_available"]
