"""Fold weight-only operations of a shipped ONNX graph into plain float32 initialisers.

The zoo files store their weights int8 and block-quantised: each weight is an initialiser
passed through ``DequantizeLinear`` (and sometimes ``Reshape``) inside the graph. Every
runtime would redo that arithmetic on each run, and some (OpenCV's DNN, a PyTorch executor)
do not implement blocked dequantisation at all. :func:`fold_weights` evaluates those nodes once,
in numpy, and returns a graph whose weights are ordinary float32 tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from openlfr.errors import ModelError


def dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int, block: int) -> np.ndarray:
    """ONNX ``DequantizeLinear`` with blocked quantisation (opset 21), in numpy."""
    qf = q.astype(np.float32)
    if block:
        scale = np.repeat(scale, block, axis=axis)
        zero = np.repeat(zero, block, axis=axis)
        index: list[slice] = [slice(None)] * q.ndim
        index[axis] = slice(0, q.shape[axis])
        scale, zero = scale[tuple(index)], zero[tuple(index)]
    elif scale.ndim == 1 and q.ndim > 1:  # per-axis
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((qf - zero.astype(np.float32)) * scale.astype(np.float32)).astype(np.float32)


def constant_value(consts: dict[str, np.ndarray], node: Any, attrs: dict[str, Any]) -> np.ndarray | None:
    """The value of ``node`` when it is a weight-only operation on known constants, else None."""
    from onnx import numpy_helper

    if node.op_type == "Constant":
        return numpy_helper.to_array(node.attribute[0].t)
    if not node.input or not all(x == "" or x in consts for x in node.input):
        return None
    if node.op_type == "DequantizeLinear":
        q, s = consts[node.input[0]], consts[node.input[1]]
        z = consts[node.input[2]] if len(node.input) > 2 and node.input[2] else np.zeros_like(s)
        return dequantize(q, s, z, int(attrs.get("axis", 1)), int(attrs.get("block_size", 0)))
    if node.op_type == "Reshape":
        return consts[node.input[0]].reshape(consts[node.input[1]])
    return None


def fold_weights(model: Any, inputs: Sequence[str], symbolic_dims: dict[str, Sequence[int | str]] | None = None) -> Any:
    """A float32 copy of ``model`` with weight-only nodes folded and only ``inputs`` as inputs.

    ``symbolic_dims`` replaces the declared shape of an input (e.g. ``{"input": ["N", 3, "H",
    "W"]}``) so one graph serves any batch or image size.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    kept: list[Any] = []
    for n in g.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        value = constant_value(consts, n, attrs)
        if value is not None:
            consts[n.output[0]] = value
        else:
            kept.append(n)
    used = {x for n in kept for x in n.input} | {o.name for o in g.output}
    inits = [numpy_helper.from_array(np.asarray(v, np.float32) if v.dtype.kind == "f" else v, k)
             for k, v in consts.items() if k in used]
    declared = {i.name: i for i in g.input}
    missing = [name for name in inputs if name not in declared]
    if missing:
        raise ModelError(f"the graph has no input named {missing[0]!r}")
    new_inputs = []
    for name in inputs:
        dims = (symbolic_dims or {}).get(name)
        if dims is None:
            new_inputs.append(declared[name])
        else:
            new_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(dims)))
    out_graph = helper.make_graph(kept, g.name or "folded", new_inputs, list(g.output), inits)
    out = helper.make_model(out_graph, opset_imports=list(model.opset_import), producer_name="openlfr")
    out.ir_version = model.ir_version
    try:
        onnx.checker.check_model(out)
    except Exception as exc:  # onnx raises ValidationError and friends
        raise ModelError(f"the folded graph is not valid ONNX: {str(exc).splitlines()[0]}") from exc
    return out


__all__ = ["constant_value", "dequantize", "fold_weights"]
