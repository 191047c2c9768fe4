"""Parser for dlib DNN network files (``.dat`` files written by ``dlib::serialize(net)``).

dlib does not store a network's *type* in the file: tag/skip ids, ``add_prev`` targets and the
nesting of wrapper objects exist only in the C++ template that wrote it. So parsing is driven by
that template, given as a string in dlib's own notation (aliases expanded), e.g.::

    loss_mmod<con<1,9,9,1,1,relu<affine<con<45,5,5,1,1, ... input_rgb_image_pyramid<pyramid_down<6>>>>>>

Every layer's stored version string is checked against the template (``con`` must be ``con_4``/
``con_5``/``con_6`` with the same kernel and stride...), and the whole file must be consumed, so a
wrong template, a truncated or a corrupt file gives a :class:`~openlfr.errors.ModelError`.
The types of the two bundled dlib networks are provided (:data:`RESNET_NET_TYPE`,
:data:`MMOD_HUMAN_FACE_NET_TYPE`); :func:`read_dnn` tries them when no type is given.

Returned structure: a :class:`DnnNet` whose ``layers`` list runs from the input layer (index 0)
to the loss layer (last). Each :class:`DnnLayer` has

* ``kind``: one of ``input_rgb_image_sized``, ``input_rgb_image``, ``input_rgb_image_pyramid``,
  ``con``, ``affine``, ``relu``, ``sig``, ``htan``, ``max_pool``, ``avg_pool``, ``fc``,
  ``multiply``, ``add_prev``, ``mult_prev``, ``tag``, ``skip``, ``loss_metric``, ``loss_mmod``;
* ``inputs``: indices of the layers whose outputs it reads. Normally ``[index - 1]``; the input
  layer has ``[]``; ``add_prev``/``mult_prev`` have ``[index - 1, tag_index]``; a ``skip`` has
  ``[tag_index]`` (its output *is* that tag's output; the layer below it is not used).
  ``tag`` layers are identities kept so that residual connections are explicit;
* ``params``: a dict, by kind:

  - inputs: ``mean`` (R, G, B floats, subtracted, then divided by 256 as dlib does);
    ``input_rgb_image_sized`` adds ``size`` ``(nr, nc)``; ``input_rgb_image_pyramid`` adds
    ``pyramid_down`` (N of ``pyramid_down<N>``), ``pyramid_padding`` and
    ``pyramid_outer_padding``;
  - ``con``: ``num_filters``, ``kernel`` ``(nr, nc)``, ``stride`` ``(sy, sx)``, ``padding``
    ``(py, px)``, ``weights`` float32 ``(out, in, nr, nc)`` (cross-correlation, as dlib and
    ONNX compute it), ``bias`` float32 ``(out,)`` or ``None``, ``fused_relu`` (con_6);
  - ``affine``: ``gamma``, ``beta`` float32 ``(C,)`` (conv mode) or ``(C*H*W,)`` (fc mode),
    ``mode`` ``"conv"``/``"fc"``, ``from_batchnorm`` (a stored ``bn_con2``/``bn_fc2`` converted
    the way dlib's ``affine_(bn_)`` does: ``gamma/sqrt(var+eps)``, ``beta - g*mean``, float32),
    ``disabled``;
  - ``max_pool``/``avg_pool``: ``window`` ``(nr, nc)`` (``(0, 0)`` = the whole input, i.e.
    ``*_pool_everything``), ``stride``, ``padding``;
  - ``fc``: ``num_outputs``, ``num_inputs``, ``weights`` float32 ``(num_inputs, num_outputs)``
    (output = flattened input @ weights), ``bias`` ``(num_outputs,)`` or ``None``;
  - ``multiply``: ``value``; ``add_prev``/``mult_prev``/``tag``/``skip``: ``tag`` (the id);
  - ``loss_metric``: ``margin``, ``distance_threshold``;
  - ``loss_mmod``: ``detector_windows`` (list of ``(width, height, label)``),
    ``loss_per_false_alarm``, ``loss_per_missed_target``, ``truth_match_iou_threshold``,
    ``overlaps_nms`` and ``overlaps_ignore`` (each ``(iou_thresh, percent_covered_thresh)``),
    ``assume_image_pyramid`` (bool), ``use_bounding_box_regression``, ``bbr_lambda``;
* ``version``: the version string stored in the file (``con_4``, ``bn_con2``, ...), ``""`` for
  tag/skip.

:func:`infer_shapes` gives every layer's ``(channels, rows, cols)`` for an input size, with
dlib's size rules (``1 + (in + 2*pad - k) // stride``; ``add_prev`` takes the larger of each
dimension and zero-fills the smaller operand).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from openlfr.errors import ModelError
from openlfr.face.dlib_format import DlibReader

__all__ = [
    "DnnLayer",
    "DnnNet",
    "TypeNode",
    "parse_net_type",
    "parse_dnn",
    "read_dnn",
    "load_network",
    "infer_shapes",
    "resnet_net_type",
    "RESNET_NET_TYPE",
    "MMOD_HUMAN_FACE_NET_TYPE",
    "KNOWN_NET_TYPES",
]


# --------------------------------------------------------------------------------------
# Result objects


@dataclass
class DnnLayer:
    """One layer of a parsed network (see the module docstring for ``params`` by kind)."""

    index: int
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[int] = field(default_factory=list)
    version: str = ""

    def __repr__(self) -> str:
        shown = {
            k: (f"array{tuple(v.shape)}" if isinstance(v, np.ndarray) else v)
            for k, v in self.params.items()
        }
        return f"DnnLayer({self.index}, {self.kind!r}, inputs={self.inputs}, {shown})"


@dataclass
class DnnNet:
    """A parsed dlib network: ``layers[0]`` is the input layer, ``layers[-1]`` the loss."""

    layers: list[DnnLayer]
    net_type: str
    source: str = "<bytes>"

    @property
    def input(self) -> DnnLayer:
        return self.layers[0]

    @property
    def loss(self) -> DnnLayer:
        return self.layers[-1]

    def of_kind(self, kind: str) -> list[DnnLayer]:
        """All layers of one kind, input to output."""
        return [layer for layer in self.layers if layer.kind == kind]

    def summary(self) -> str:
        """One line per layer, for humans."""
        return "\n".join(repr(layer) for layer in self.layers)


# --------------------------------------------------------------------------------------
# Network type strings


@dataclass
class TypeNode:
    """One template in a dlib network type: ``name<nums..., subs...>``."""

    name: str
    nums: list[int] = field(default_factory=list)
    subs: list[TypeNode] = field(default_factory=list)

    @property
    def subnet(self) -> TypeNode | None:
        """The wrapped network (the last template argument), for non-input layers."""
        return self.subs[-1] if self.subs else None


_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(-?\d+)|([<>,]))")


def parse_net_type(text: str) -> TypeNode:
    """Parse a dlib network type string (aliases expanded) into a :class:`TypeNode` tree."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ModelError(f"bad network type near {text[pos:pos + 30]!r}")
        pos = m.end()
        if m.group(1):
            tokens.append(("id", m.group(1)))
        elif m.group(2):
            tokens.append(("num", m.group(2)))
        elif m.group(3):
            tokens.append(("sym", m.group(3)))

    # Iterative parse: the types are chains ~100 templates deep.
    i = 0

    def expect(kind: str, value: str | None = None) -> str:
        nonlocal i
        if i >= len(tokens) or tokens[i][0] != kind or (value is not None and tokens[i][1] != value):
            found = tokens[i][1] if i < len(tokens) else "end of text"
            raise ModelError(f"bad network type: expected {value or kind}, found {found!r}")
        i += 1
        return tokens[i - 1][1]

    root = TypeNode(expect("id"))
    stack = [root]
    if i < len(tokens) and tokens[i] == ("sym", "<"):
        i += 1
    else:
        stack = []
    while stack:
        node = stack[-1]
        tok = tokens[i] if i < len(tokens) else ("end", "")
        if tok == ("sym", ">"):
            i += 1
            stack.pop()
            if stack and i < len(tokens) and tokens[i] == ("sym", ","):
                i += 1
            continue
        if tok[0] == "num":
            node.nums.append(int(tok[1]))
            i += 1
        elif tok[0] == "id":
            child = TypeNode(tok[1])
            node.subs.append(child)
            i += 1
            if i < len(tokens) and tokens[i] == ("sym", "<"):
                i += 1
                stack.append(child)
                continue
        else:
            raise ModelError(f"bad network type: unexpected {tok[1] or 'end of text'!r}")
        if i < len(tokens) and tokens[i] == ("sym", ","):
            i += 1
    if i != len(tokens):
        raise ModelError("bad network type: text after the closing '>'")
    return root


def resnet_net_type() -> str:
    """dlib's face recognition ResNet (``dnn_face_recognition_ex.cpp``), aliases expanded."""

    def block(n: int, stride: int, sub: str) -> str:
        return f"affine<con<{n},3,3,1,1,relu<affine<con<{n},3,3,{stride},{stride},{sub}>>>>>"

    def ares(n: int, sub: str) -> str:
        return f"relu<add_prev1<{block(n, 1, f'tag1<{sub}>')}>>"

    def ares_down(n: int, sub: str) -> str:
        return f"relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<{block(n, 2, f'tag1<{sub}>')}>>>>>"

    net = "max_pool<3,3,2,2,relu<affine<con<32,7,7,2,2,input_rgb_image_sized<150>>>>>"
    for n, count in ((32, 3), (64, 4), (128, 3), (256, 3)):  # alevel4 .. alevel1
        if n != 32:
            net = ares_down(n, net)
            count -= 1
        for _ in range(count):
            net = ares(n, net)
    net = ares_down(256, net)  # alevel0
    return f"loss_metric<fc_no_bias<128,avg_pool_everything<{net}>>>"


RESNET_NET_TYPE = resnet_net_type()

#: dlib's CNN face detector (``dnn_mmod_face_detection_ex.cpp``), aliases expanded.
MMOD_HUMAN_FACE_NET_TYPE = (
    "loss_mmod<con<1,9,9,1,1,"
    + "relu<affine<con<45,5,5,1,1," * 3
    + "relu<affine<con<32,5,5,2,2,relu<affine<con<32,5,5,2,2,relu<affine<con<16,5,5,2,2,"
    + "input_rgb_image_pyramid<pyramid_down<6>>"
    + ">>>" * 3
    + ">>>" * 3
    + ">>"
)

KNOWN_NET_TYPES: dict[str, str] = {
    "dlib_face_recognition_resnet_model_v1": RESNET_NET_TYPE,
    "mmod_human_face_detector": MMOD_HUMAN_FACE_NET_TYPE,
}


# --------------------------------------------------------------------------------------
# Layer detail readers (one per stored version string)


def _read_alias(r: DlibReader) -> tuple[int, int, int, int]:
    """A dlib ``alias_tensor``: version 1 then (n, k, nr, nc)."""
    version = r.read_int()
    if version != 1:
        raise r._fail(f"unsupported alias_tensor version {version}")
    return tuple(r.read_int() for _ in range(4))  # type: ignore[return-value]


def _take(params: np.ndarray, offset: int, shape: tuple[int, ...], r: DlibReader) -> np.ndarray:
    size = int(np.prod(shape))
    if offset + size > params.size:
        raise r._fail("layer parameters are shorter than their declared shape")
    return params[offset : offset + size].reshape(shape).copy()


def _read_con(r: DlibReader, version: str) -> dict[str, Any]:
    params = r.read_tensor().ravel()
    num_filters = r.read_int()
    nr, nc, sy, sx, py, px = (r.read_int() for _ in range(6))
    filt = _read_alias(r)
    bias_alias = _read_alias(r)
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.read_float()
    use_bias = r.read_bool() if version in ("con_5", "con_6") else True
    fused_relu = r.read_bool() if version == "con_6" else False
    if filt[0] != num_filters or filt[2:] != (nr, nc):
        raise r._fail(f"con filter shape {filt} does not match {num_filters} filters of {nr}x{nc}")
    weights = _take(params, 0, filt, r)
    bias = _take(params, weights.size, (num_filters,), r) if use_bias and bias_alias[1] else None
    return {
        "num_filters": num_filters,
        "kernel": (nr, nc),
        "stride": (sy, sx),
        "padding": (py, px),
        "weights": weights,
        "bias": bias,
        "fused_relu": fused_relu,
    }


def _read_affine(r: DlibReader, version: str) -> dict[str, Any]:
    params = r.read_tensor().ravel()
    g_alias = _read_alias(r)
    _read_alias(r)  # beta has gamma's shape
    mode = r.read_int()
    disabled = r.read_bool() if version == "affine_2" else False
    n = int(np.prod(g_alias))
    return {
        "gamma": _take(params, 0, (n,), r),
        "beta": _take(params, n, (n,), r),
        "mode": "fc" if mode == 1 else "conv",
        "from_batchnorm": False,
        "disabled": disabled,
    }


def _read_bn(r: DlibReader, version: str) -> dict[str, Any]:
    params = r.read_tensor().ravel()
    g_alias = _read_alias(r)
    _read_alias(r)
    r.read_tensor()  # means (training state)
    r.read_tensor()  # invstds (training state)
    running_means = r.read_tensor().ravel()
    running_vars = r.read_tensor().ravel()
    r.read_int()  # num_updates
    r.read_int()  # running_stats_window_size
    for _ in range(4):
        r.read_float()
    eps = r.read_float()
    n = int(np.prod(g_alias))
    if running_means.size != n or running_vars.size != n:
        raise r._fail("batch-norm running statistics do not match its channels")
    gamma = _take(params, 0, (n,), r)
    beta = _take(params, n, (n,), r)
    # Same arithmetic (float32) as dlib's affine_(const bn_&) conversion.
    g = gamma / np.sqrt(running_vars + np.float32(eps))
    b = beta - g * running_means
    return {
        "gamma": g.astype(np.float32),
        "beta": b.astype(np.float32),
        "mode": "conv" if version == "bn_con2" else "fc",
        "from_batchnorm": True,
        "disabled": False,
        "eps": eps,
    }


def _read_pool(r: DlibReader, version: str) -> dict[str, Any]:
    nr, nc, sy, sx, py, px = (r.read_int() for _ in range(6))
    return {"window": (nr, nc), "stride": (sy, sx), "padding": (py, px)}


def _read_fc(r: DlibReader, version: str) -> dict[str, Any]:
    num_outputs = r.read_int()
    num_inputs = r.read_int()
    params = r.read_tensor().ravel()
    w_alias = _read_alias(r)
    b_alias = _read_alias(r)
    bias_mode = r.read_int()
    for _ in range(4):
        r.read_float()
    use_bias = r.read_bool() if version == "fc_3" else True
    if w_alias[:2] != (num_inputs, num_outputs):
        raise r._fail(f"fc weight shape {w_alias} does not match {num_inputs}x{num_outputs}")
    weights = _take(params, 0, (num_inputs, num_outputs), r)
    has_bias = bias_mode == 0 and use_bias and b_alias[1] > 0
    bias = _take(params, weights.size, (num_outputs,), r) if has_bias else None
    return {"num_outputs": num_outputs, "num_inputs": num_inputs, "weights": weights, "bias": bias}


def _read_nothing(r: DlibReader, version: str) -> dict[str, Any]:
    return {}


def _read_multiply(r: DlibReader, version: str) -> dict[str, Any]:
    return {"value": r.read_float()}


def _read_dropout(r: DlibReader, version: str) -> dict[str, Any]:
    rate = r.read_float()
    r.read_tensor()  # mask
    return {"value": 1.0 - rate}  # dlib evaluates a dropout as multiply_(1 - rate)


def _read_mean(r: DlibReader) -> tuple[float, float, float]:
    return (r.read_float(), r.read_float(), r.read_float())


def _read_input_sized(r: DlibReader, version: str) -> dict[str, Any]:
    mean = _read_mean(r)
    return {"mean": mean, "size": (r.read_int(), r.read_int())}


def _read_input_rgb(r: DlibReader, version: str) -> dict[str, Any]:
    return {"mean": _read_mean(r)}


def _read_input_pyramid(r: DlibReader, version: str) -> dict[str, Any]:
    mean = _read_mean(r)
    if version == "input_rgb_image_pyramid2":
        padding, outer = r.read_int(), r.read_int()
    else:  # older files: dlib's defaults
        padding, outer = 10, 11
    return {"mean": mean, "pyramid_padding": padding, "pyramid_outer_padding": outer}


def _read_loss_metric(r: DlibReader, version: str) -> dict[str, Any]:
    return {"margin": r.read_float(), "distance_threshold": r.read_float()}


def _read_overlap(r: DlibReader) -> tuple[float, float]:
    return (r.read_float(), r.read_float())


def _read_loss_mmod(r: DlibReader, version: str) -> dict[str, Any]:
    opt_version = r.read_int()
    if not 1 <= opt_version <= 4:
        raise r._fail(f"unsupported mmod_options version {opt_version}")
    windows: list[tuple[int, int, str]] = []
    if opt_version == 1:
        windows.append((r.read_int(), r.read_int(), ""))
    else:
        for _ in range(r.read_int()):
            wv = r.read_int()
            if wv not in (1, 2):
                raise r._fail(f"unsupported detector window version {wv}")
            w, h = r.read_int(), r.read_int()
            windows.append((w, h, r.read_str() if wv == 2 else ""))
    out: dict[str, Any] = {
        "detector_windows": windows,
        "loss_per_false_alarm": r.read_float(),
        "loss_per_missed_target": r.read_float(),
        "truth_match_iou_threshold": r.read_float(),
        "overlaps_nms": _read_overlap(r),
        "overlaps_ignore": _read_overlap(r),
        "assume_image_pyramid": True,
        "use_bounding_box_regression": False,
        "bbr_lambda": 100.0,
    }
    if opt_version >= 3:
        out["assume_image_pyramid"] = bool(r.read_int())
    if opt_version >= 4:
        out["use_bounding_box_regression"] = r.read_bool()
        out["bbr_lambda"] = r.read_float()
    return out


_Reader = Callable[[DlibReader, str], dict[str, Any]]

# template name -> (layer kind, {stored version string: reader})
_LAYERS: dict[str, tuple[str, dict[str, _Reader]]] = {
    "con": ("con", {v: _read_con for v in ("con_4", "con_5", "con_6")}),
    "affine": ("affine", {"affine_": _read_affine, "affine_2": _read_affine,
                          "bn_con2": _read_bn, "bn_fc2": _read_bn}),
    "bn_con": ("affine", {"bn_con2": _read_bn}),
    "bn_fc": ("affine", {"bn_fc2": _read_bn}),
    "relu": ("relu", {"relu_": _read_nothing}),
    "sig": ("sig", {"sig_": _read_nothing}),
    "htan": ("htan", {"htan_": _read_nothing}),
    "max_pool": ("max_pool", {"max_pool_2": _read_pool}),
    "avg_pool": ("avg_pool", {"avg_pool_2": _read_pool}),
    "max_pool_everything": ("max_pool", {"max_pool_2": _read_pool}),
    "avg_pool_everything": ("avg_pool", {"avg_pool_2": _read_pool}),
    "fc": ("fc", {"fc_2": _read_fc, "fc_3": _read_fc}),
    "fc_no_bias": ("fc", {"fc_2": _read_fc, "fc_3": _read_fc}),
    "multiply": ("multiply", {"multiply_": _read_multiply, "dropout_": _read_dropout}),
    "add_prev": ("add_prev", {"add_prev_": _read_nothing}),
    "mult_prev": ("mult_prev", {"mult_prev_": _read_nothing}),
}
_INPUTS: dict[str, dict[str, _Reader]] = {
    "input_rgb_image_sized": {"input_rgb_image_sized": _read_input_sized},
    "input_rgb_image": {"input_rgb_image": _read_input_rgb},
    "input_rgb_image_pyramid": {
        "input_rgb_image_pyramid": _read_input_pyramid,
        "input_rgb_image_pyramid2": _read_input_pyramid,
    },
}
_LOSSES: dict[str, dict[str, _Reader]] = {
    "loss_metric": {"loss_metric_2": _read_loss_metric},
    "loss_mmod": {"loss_mmod_": _read_loss_mmod},
}
_NUMBERED = re.compile(r"^(tag|skip|add_prev|mult_prev)(\d+)$")


def _read_details(r: DlibReader, readers: dict[str, _Reader], what: str) -> tuple[str, dict[str, Any]]:
    start = r.pos
    version = r.read_str() if not r.at_end else ""
    reader = readers.get(version)
    if reader is None:
        r.pos = start
        shown = version if version.isprintable() and len(version) < 40 else "unreadable data"
        raise r._fail(f"expected a {what} layer ({'/'.join(readers)}), found {shown!r}")
    return version, reader(r, version)


def _check_template(node: TypeNode, kind: str, p: dict[str, Any], r: DlibReader) -> None:
    """Check a layer's stored settings against its template arguments (as dlib does)."""
    nums = node.nums
    name = node.name
    if kind == "con" and len(nums) == 5:
        want_con = (nums[0], (nums[1], nums[2]), (nums[3], nums[4]))
        got = (p["num_filters"], p["kernel"], p["stride"])
        if want_con != got:
            raise r._fail(f"con layer is {got}, the network type says {want_con}")
    elif kind in ("max_pool", "avg_pool"):
        if name.endswith("_everything"):
            want = ((0, 0), (1, 1))
        elif len(nums) == 4:
            want = ((nums[0], nums[1]), (nums[2], nums[3]))
        else:
            return
        if (p["window"], p["stride"]) != want:
            raise r._fail(f"{name} layer is {(p['window'], p['stride'])}, the type says {want}")
    elif kind == "fc" and nums:
        if p["num_outputs"] != nums[0]:
            raise r._fail(f"fc layer has {p['num_outputs']} outputs, the type says {nums[0]}")
        if (name == "fc_no_bias") != (p["bias"] is None):
            raise r._fail(f"fc layer bias does not match the type {name}")


def parse_dnn(data: bytes, net_type: str, name: str = "<bytes>") -> DnnNet:
    """Parse the bytes of a dlib network file of the given type (see the module docstring)."""
    root = parse_net_type(net_type)
    r = DlibReader(data, name)
    layers: list[DnnLayer] = []
    pending: list[Callable[[], None]] = []  # readers of details stored after their subnet
    loss: DnnLayer | None = None

    def add(kind: str, params: dict[str, Any], version: str = "") -> None:
        layers.append(DnnLayer(len(layers), kind, params, [], version))

    def expect_version(allowed: tuple[int, ...], what: str) -> int:
        v = r.read_int()
        if v not in allowed:
            raise r._fail(f"unexpected {what} version {v} (network type mismatch or corrupt file)")
        return v

    def read_state_after_layer(v: int, input_below: bool) -> None:
        # Training state dlib stores with each layer; not needed for inference.
        for _ in range(3):
            r.read_bool()
        for _ in range(3 if (input_below or v >= 2) else 2):
            r.read_tensor()
        if input_below and v >= 3:
            r.read_int()  # sample expansion factor

    node: TypeNode | None = root
    if root.name.startswith("loss_"):
        readers = _LOSSES.get(root.name)
        if readers is None:
            raise ModelError(f"unsupported loss layer {root.name!r}")
        expect_version((1,), "add_loss_layer")
        version, params = _read_details(r, readers, root.name)
        loss = DnnLayer(-1, root.name, params, [], version)
        node = root.subnet

    while True:
        if node is None:
            raise ModelError("bad network type: a layer has no subnetwork")
        if node.name in _INPUTS:
            raise ModelError("bad network type: an input layer must be wrapped by a layer")
        m = _NUMBERED.match(node.name)
        base, tag_id = (m.group(1), int(m.group(2))) if m else (node.name, 0)
        child = node.subnet
        input_below = child is not None and child.name in _INPUTS
        if base in ("tag", "skip"):
            if input_below and base == "tag":
                v = expect_version((1, 2), "add_tag_layer")
                ver, params = _read_details(r, _INPUTS[child.name], "input")  # type: ignore[union-attr]
                _input_extras(child, params)  # type: ignore[arg-type]
                add(child.name, params, ver)  # type: ignore[union-attr]
                r.read_tensor()
                r.read_tensor()
                r.read_bool()
                if v >= 2:
                    r.read_int()
                add(base, {"tag": tag_id})
                break
            expect_version((1,), f"add_{base}_layer")
            pending.append(partial(add, base, {"tag": tag_id}))
            node = child
            continue
        if base not in _LAYERS:
            raise ModelError(f"unsupported layer type {node.name!r} in the network type")
        kind, readers = _LAYERS[base]

        def finish(n: TypeNode = node, k: str = kind, rd: dict[str, _Reader] = readers,
                   t: int = tag_id) -> None:
            version, params = _read_details(r, rd, n.name)
            _check_template(n, k, params, r)
            if k in ("add_prev", "mult_prev"):
                params["tag"] = t
            add(k, params, version)

        if input_below:
            v = expect_version((2, 3), "add_layer")
            ver, params = _read_details(r, _INPUTS[child.name], "input")  # type: ignore[union-attr]
            _input_extras(child, params)  # type: ignore[arg-type]
            add(child.name, params, ver)  # type: ignore[union-attr]
            finish()
            read_state_after_layer(v, True)
            break
        v = expect_version((1, 2), "add_layer")

        def finish_later(f: Callable[[], None] = finish, v: int = v) -> None:
            f()
            read_state_after_layer(v, False)

        pending.append(finish_later)
        node = child

    while pending:
        pending.pop()()
    if loss is not None:
        loss.index = len(layers)
        layers.append(loss)
    if not r.at_end:
        raise ModelError(f"{name}: {len(data) - r.pos} unexpected bytes after the network "
                         "(network type mismatch or corrupt file)")
    _link(layers, name)
    return DnnNet(layers, net_type, name)


def _input_extras(node: TypeNode, params: dict[str, Any]) -> None:
    """Template-only settings of an input layer (not stored in the file)."""
    if node.name == "input_rgb_image_pyramid":
        sub = node.subs[0] if node.subs else None
        if sub is None or sub.name != "pyramid_down" or len(sub.nums) != 1:
            raise ModelError("bad network type: input_rgb_image_pyramid needs pyramid_down<N>")
        params["pyramid_down"] = sub.nums[0]
    elif node.name == "input_rgb_image_sized" and node.nums:
        want = (node.nums[0], node.nums[-1])
        if params["size"] != want:
            raise ModelError(f"input size {params['size']} does not match the type's {want}")


def _link(layers: list[DnnLayer], name: str) -> None:
    """Fill every layer's ``inputs``, resolving tag ids the way dlib's ``layer<tagN>`` does."""
    last_tag: dict[int, int] = {}
    for layer in layers:
        i = layer.index
        if i == 0:
            layer.inputs = []
        elif layer.kind == "skip":
            layer.inputs = [_tag_index(last_tag, layer, name)]
        elif layer.kind in ("add_prev", "mult_prev"):
            layer.inputs = [i - 1, _tag_index(last_tag, layer, name)]
        else:
            layer.inputs = [i - 1]
        if layer.kind == "tag":
            last_tag[layer.params["tag"]] = i


def _tag_index(last_tag: dict[int, int], layer: DnnLayer, name: str) -> int:
    tag = layer.params["tag"]
    if tag not in last_tag:
        raise ModelError(f"{name}: {layer.kind}{tag} refers to a tag{tag} that is not below it")
    return last_tag[tag]


def read_dnn(path: str | Path, net_type: str | None = None) -> DnnNet:
    """Parse a dlib network file. Without ``net_type``, the known bundled types are tried."""
    reader = DlibReader.open(path)
    if net_type is not None:
        return parse_dnn(reader.data, net_type, reader.name)
    stem = Path(path).stem
    candidates = [KNOWN_NET_TYPES[stem]] if stem in KNOWN_NET_TYPES else []
    candidates += [t for t in KNOWN_NET_TYPES.values() if t not in candidates]
    first_error: ModelError | None = None
    for candidate in candidates:
        try:
            return parse_dnn(reader.data, candidate, reader.name)
        except ModelError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise ModelError(f"{reader.name} is not a dlib network this version can read "
                     f"({first_error}); pass its network type") from first_error


# --------------------------------------------------------------------------------------
# Shapes


def _pool_or_conv_size(size: int, k: int, stride: int, pad: int) -> int:
    return 1 + (size + 2 * pad - k) // stride


def infer_shapes(net: DnnNet, rows: int, cols: int) -> list[tuple[int, int, int]]:
    """Each layer's output ``(channels, rows, cols)`` for one input image of that size."""
    shapes: list[tuple[int, int, int]] = []
    for layer in net.layers:
        p = layer.params
        if layer.index == 0:
            shapes.append((3, rows, cols))
            continue
        c, h, w = shapes[layer.inputs[0]]
        if layer.kind == "con":
            (kh, kw), (sy, sx), (py, px) = p["kernel"], p["stride"], p["padding"]
            shape = (p["num_filters"], _pool_or_conv_size(h, kh, sy, py),
                     _pool_or_conv_size(w, kw, sx, px))
        elif layer.kind in ("max_pool", "avg_pool"):
            (kh, kw), (sy, sx), (py, px) = p["window"], p["stride"], p["padding"]
            kh, kw = kh or h, kw or w
            shape = (c, _pool_or_conv_size(h, kh, sy, py), _pool_or_conv_size(w, kw, sx, px))
        elif layer.kind == "fc":
            shape = (p["num_outputs"], 1, 1)
        elif layer.kind in ("add_prev", "mult_prev"):
            c2, h2, w2 = shapes[layer.inputs[1]]
            shape = (max(c, c2), max(h, h2), max(w, w2))
        else:
            shape = (c, h, w)
        if min(shape) < 1:
            raise ModelError(f"input {rows}x{cols} is too small for layer {layer.index} ({layer.kind})")
        shapes.append(shape)
    return shapes


def load_network(path: str | Path, net_type: str | None = None) -> DnnNet:
    """Alias of :func:`read_dnn` (the name other modules use)."""
    return read_dnn(path, net_type)
